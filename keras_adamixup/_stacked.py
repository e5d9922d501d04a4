"""K models trained together: one compiled step updates all of them.

Used by the audit (LiRA's shadows, `keras_adamixup.audit.shadow_stack`) and by
training (`keras_adamixup.SplitTeachers`' teachers): K copies of one recipe
that differ only in which subset of the data each trains on. A neutral
module: it imports nothing of the defence or of the audit. The text below
says "shadows"; teachers are trained the same way.

LiRA's shadows share the population and differ only in which half they train
on. Trained one after another, K shadows cost K full training runs, and on
small models most of that is per-step overhead, not arithmetic. Here every
step draws one batch *of its own members* for each shadow, runs the K models
on their K batches inside one compiled function and applies each model's own
optimizer to its own gradients. Nothing is shared between the shadows but the
function call: no weights, no optimizer state, no batch statistics, and a
shadow never sees an example outside its training half.

Same recipe as the sequential path (`lira.shadow_outputs` with
``together=False``): the same factory, called under the same per-shadow seed
(so the same initial weights), the same loss (`compute_loss`, regularization
losses included), optimizer and loss scaling (`optimizer.scale_loss`), the
same number of epochs, and every member seen exactly once per epoch. The
documented differences:

- **Batches.** Shadows hold slightly different numbers of members (each
  example is in exactly half of the shadows, so shadow sizes vary around
  half the population). Every shadow takes the same number of steps per
  epoch, ``ceil(largest shadow / batch_size)``, and splits its shuffled
  members into that many near-equal batches (sizes differ by at most one), so
  a smaller shadow's batches are a little smaller than ``batch_size`` instead
  of full batches and one short remainder. Batches are padded to a fixed
  shape with repeats of the shadow's own members at sample weight 0 (they do
  enter batch-normalization statistics, as members); the loss of a batch is
  the mean over its real members, as in a partial batch of `fit`.
- **Shuffling** uses NumPy's generator seeded per shadow, not Keras' data
  adapter's.
- **No metrics or callbacks.** Shadows only need their predictions; a recipe
  with callbacks (monitors, checkpoints, early stopping), validation data,
  class or sample weights in its fit arguments needs `fit` and trains
  sequentially. (`train_together` itself takes per-example weights:
  `SplitTeachers` passes the student's.)

**Vectorized when it can be.** When the K models are copies of one
architecture (same layers, configurations and variable shapes), compiled with
one loss and an element-wise optimizer (no ``clipnorm``, ``global_clipnorm``,
weight decay, gradient accumulation or loss-scale wrapper), and the step is
not XLA-compiled, the K models' variables are stacked along a new first axis
and the step runs the first model's graph on all K at once
(``tf.vectorized_map`` over `keras.Model.stateless_call`; the loss is the
compiled loss plus regularization, as in `compute_loss`). The gradient of the
sum of the K losses with respect to the stacked variables is each model's own
gradient, and one optimizer over the stacked variables is K independent ones
(Adam, SGD with momentum, RMSprop... update element by element, with a shared
step count). One trace instead of K and batched arithmetic: on 16 teachers of
the benchmarks' two-layer MLP on digits, the first epoch (tracing included)
takes 0.8 s instead of 3.6 s (`benchmarks/stack_time.py`, docs/BENCHMARKS.md).
The models' weights (trainable and not) are written back after every epoch;
their own optimizers are not advanced.
`vector_reason` says why a stack is not vectorized (it then runs the loop
below, one model after another inside the compiled step). ``vectorize="auto"``
also keeps the loop for convolutional models (`convolves`) on a machine
without a GPU: there the arithmetic, not the step overhead, sets the time, and
the vectorized convolutions ran 1.7–1.8 times slower than the loop.

**From a dataset read in passes** (`train_streamed`: random augmentation in
the pipeline, or too large to hold): one pass per epoch for all K models;
each steps on its own members of every batch, gathered and padded with
repeats of its own members at weight 0, so that, as above, none sees a row
it does not train on. The batches are shared, so the K models see the same
order and the same augmented draw of an example in a pass.

What can be stacked (`stack_reason` says why not): a model built by the
factory that is a plain Keras model (its class keeps Keras' own
``train_step``; an `AdaMixupModel` or DP-SGD model does not), compiled with an
optimizer and a loss, a single input array and single output; fit arguments
limited to ``epochs``, ``batch_size``, ``shuffle`` and ``verbose``.
"""

import math

import numpy as np

from keras_adamixup import _checks

# layers whose vectorized form (one convolution over K stacked kernels) trained slower
# than the loop on a CPU: 1.7 to 1.8 times on the benchmarks' CIFAR-10 CNN, with or
# without its augmentation layers (docs/BENCHMARKS.md, "vectorized convolutions")
CONVOLUTIONS = ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D",
                "DepthwiseConv1D", "DepthwiseConv2D", "Conv1DTranspose", "Conv2DTranspose",
                "Conv3DTranspose")


def convolves(model):
    """True when `model` (nested models and layers included) has a layer of
    `CONVOLUTIONS`: compute-bound, where stacking saves no step overhead."""
    from keras_adamixup import _batch_norm

    return _batch_norm.has_layers(model, CONVOLUTIONS)


def _gpu_visible():
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


FIT_KEYS = frozenset({"epochs", "batch_size", "shuffle", "verbose"})


def stack_reason(models, fit_kwargs, x):
    """`None` when these models (shadows or teachers) can train together, else why not
    (a sentence in words that fit both)."""
    import keras

    if not isinstance(x, np.ndarray):
        return "the training inputs are not a single array (a dict, tuple or list of inputs)"
    extra = sorted(set(fit_kwargs) - FIT_KEYS)
    if extra:
        return (f"the fit arguments {extra} need Keras' `fit` (only "
                f"{sorted(FIT_KEYS)} can be stacked)")
    optimizers = set()
    for model in models:
        if type(model).train_step is not keras.Model.train_step:
            return (f"{type(model).__name__} has its own `train_step`, which the "
                    "stacked step would bypass")
        if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
            return "a model is not compiled with an optimizer"
        if getattr(model, "loss", None) is None:
            return "a model is compiled without a loss"
        if len(getattr(model, "inputs", None) or [None, None]) != 1 or len(model.outputs) != 1:
            return "the model does not have exactly one input and one output"
        optimizers.add(id(model.optimizer))
    if len(optimizers) != len(models):
        return "the models share one optimizer object (each needs its own)"
    return None


def steps_reason(masks, batch_size):
    """`None` when every model of `masks` (`(K, n)` bool) can take the steps per epoch of
    the largest (`train_together`: ``ceil(largest / batch_size)``, each on rows of its
    own), else why not (tiny batches: one model's rows run out first)."""
    counts = np.asarray(masks, dtype=bool).sum(axis=1)
    steps = math.ceil(counts.max() / batch_size)
    if counts.min() >= steps:
        return None
    return (f"with batches of {batch_size} row(s), a model of {counts.min()} rows cannot take "
            f"the {steps} steps per epoch of the largest ({counts.max()} rows)")


def _layout(model):
    """What makes two models copies of one architecture: the class, each layer's
    class and configuration (without its per-copy name), the variables' shapes."""
    layers = []
    for layer in model.layers:
        config = dict(layer.get_config())
        config.pop("name", None)
        layers.append((type(layer), config))
    return [type(model), layers,
            [(tuple(v.shape), v.dtype) for v in model.trainable_variables],
            [(tuple(v.shape), v.dtype) for v in model.non_trainable_variables]]


def _optimizer_settings(optimizer):
    """An optimizer's class and configuration, without its name."""
    config = dict(optimizer.get_config())
    config.pop("name", None)
    return type(optimizer), config


def _compile_settings(model):
    """The model's compile configuration, without the optimizer."""
    return {k: v for k, v in model.get_compile_config().items() if k != "optimizer"}


def vector_reason(models, jit_compile=False):
    """`None` when a stack of models (`stack_reason` passed) can run vectorized,
    else why not (a sentence). See the module docstring."""
    import keras

    if jit_compile:
        return "the step is XLA-compiled (the loop is kept for XLA)"
    first = models[0]
    compiled = _compile_settings(first)
    loss = first.loss
    if compiled.get("loss_weights") is not None or not (isinstance(loss, str)
                                                        or callable(loss)):
        return "the model's loss is not one loss without loss weights"
    if hasattr(first.optimizer, "inner_optimizer"):
        return "the optimizer is a loss-scale wrapper"
    optimizer = _optimizer_settings(first.optimizer)
    mixing = [k for k in ("clipnorm", "global_clipnorm", "weight_decay",
                          "gradient_accumulation_steps") if optimizer[1].get(k)]
    if mixing:
        return (f"the optimizer's {mixing} would not act per model on stacked "
                "variables")
    layout = _layout(first)
    for model in models[1:]:
        if _layout(model) != layout:
            return "the models are not copies of one architecture"
        if _optimizer_settings(model.optimizer) != optimizer:
            return "the models' optimizers differ"
        if _compile_settings(model) != compiled:
            return "the models are compiled differently"
    if any(not isinstance(v, keras.Variable) for v in first.trainable_variables):
        return "the model has variables that are not Keras variables"
    return None


def _loss_function(loss):
    """The compiled loss as ``f(y, y_pred, sample_weight)`` → scalar, reduced
    as Keras reduces it (``sum_over_batch_size`` for a function or a name)."""
    import keras

    if isinstance(loss, keras.losses.Loss):
        return loss
    fn = keras.losses.get(loss)
    if isinstance(fn, keras.losses.Loss):
        return fn

    def reduced(y, y_pred, sample_weight):
        if not _is_sparse(fn):  # as Keras' Loss: float targets of the outputs' rank
            y = keras.ops.cast(y, y_pred.dtype)
            if len(y.shape) == len(y_pred.shape) - 1:
                y = keras.ops.expand_dims(y, -1)
        values = fn(y, y_pred)
        weights = keras.ops.cast(sample_weight, values.dtype)
        while len(weights.shape) < len(values.shape):
            weights = keras.ops.expand_dims(weights, -1)
        size = keras.ops.cast(keras.ops.size(values), values.dtype)
        return keras.ops.sum(values * weights) / keras.ops.maximum(size, 1.0)

    return reduced


def _is_sparse(fn):
    return "sparse" in getattr(fn, "__name__", "")


class _VectorStep:
    """One step of K copies of one model, vectorized (module docstring).

    Holds the stacked variables (``(K, *shape)``) and one optimizer over them;
    `write_back` copies them into the models."""

    def __init__(self, models, x_pop, y_pop):
        import tensorflow as tf

        self.models, self.x_pop, self.y_pop = models, x_pop, y_pop
        self.template = models[0]
        self.loss = _loss_function(self.template.loss)
        self.trainable = [tf.Variable(tf.stack([m.trainable_variables[i].value
                                                for m in models]), trainable=True)
                          for i in range(len(self.template.trainable_variables))]
        self.non_trainable = [tf.Variable(tf.stack([m.non_trainable_variables[i].value
                                                    for m in models]), trainable=False)
                              for i in range(len(self.template.non_trainable_variables))]
        optimizer = self.template.optimizer
        self.optimizer = type(optimizer).from_config(optimizer.get_config())
        self.optimizer.build(self.trainable)
        self._predict = tf.function(_Call(self._forward_rows))

    def _one(self, elems):
        import keras

        trainable, non_trainable, x, y, w = elems
        y_pred, non_trainable, losses = self.template.stateless_call(
            list(trainable), list(non_trainable), x, training=True, return_losses=True)
        loss = self.loss(y, y_pred, sample_weight=w)
        if losses:
            loss = loss + keras.ops.cast(keras.ops.sum(keras.ops.stack(losses)), loss.dtype)
        return loss, non_trainable

    def __call__(self, indices, weights):
        return self.on(self.x_pop, self.y_pop, indices, weights)

    def on(self, x, y, indices, weights):
        """One step: model k on rows ``indices[k]`` of ``(x, y)`` (a population or a batch)."""
        import tensorflow as tf

        x = tf.gather(x, indices)  # (K, batch, ...)
        y = tf.gather(y, indices)
        with tf.GradientTape() as tape:
            # warn=False: random ops (dropout) have no vectorized form and run
            # in a loop over the K models, which TensorFlow would warn about
            losses, non_trainable = tf.vectorized_map(
                self._one, ([v.value() for v in self.trainable],
                            [v.value() for v in self.non_trainable], x, y, weights),
                warn=False)
            total = self.optimizer.scale_loss(tf.reduce_sum(losses))
        grads = tape.gradient(total, self.trainable)
        self.optimizer.apply_gradients(zip(grads, self.trainable))
        for variable, value in zip(self.non_trainable, non_trainable):
            variable.assign(value)
        return losses

    def _forward_rows(self, idx):
        """`(K, rows, ...)` outputs (``training=False``) of model k on ``x_pop[idx[k]]``."""
        return self.forward_on(self.x_pop, idx)

    def forward_on(self, x, idx):
        """`(K, rows, ...)` outputs (``training=False``) of model k on ``x[idx[k]]``."""
        import tensorflow as tf

        def forward(elems):
            trainable, non_trainable, inputs = elems
            return self.template.stateless_call(list(trainable), list(non_trainable), inputs,
                                                training=False)[0]

        return tf.vectorized_map(forward, ([v.value() for v in self.trainable],
                                           [v.value() for v in self.non_trainable],
                                           tf.gather(x, idx)), warn=False)

    def outputs(self, rows, chunk=1024):
        """Each model's outputs (``training=False``) on ``x_pop[rows[k]]``: a list of
        K arrays, from one vectorized call per chunk of rows."""
        import tensorflow as tf

        longest = max(len(r) for r in rows)
        parts = [[] for _ in rows]
        for start in range(0, longest, chunk):
            size = min(chunk, longest - start)
            # rows padded with the model's own first row (discarded below)
            idx = np.stack([np.resize(r[start:start + size], size) if len(r) > start
                            else np.resize(r[:1], size) for r in rows])
            out = np.asarray(self._predict(tf.constant(idx, dtype="int64")))
            for k, r in enumerate(rows):
                parts[k].append(out[k, :max(0, min(size, len(r) - start))])
        return [np.concatenate(p) for p in parts]

    def write_back(self):
        for k, model in enumerate(self.models):
            for source, target in ((self.trainable, model.trainable_variables),
                                   (self.non_trainable, model.non_trainable_variables)):
                for stacked, variable in zip(source, target):
                    variable.assign(stacked[k])


def batch_plan(member_indices, steps, batch_size, rng, shuffle=True):
    """One epoch of one shadow: `(indices, weights)`, both `(steps, batch_size)`.

    The shadow's members (shuffled by `rng` when `shuffle`) are split into
    `steps` near-equal batches, each padded to `batch_size` with repeats of
    its own first members at weight 0. Every member appears exactly once with
    weight 1.
    """
    members = np.asarray(member_indices)
    if shuffle:
        members = members[rng.permutation(len(members))]
    if steps * batch_size < len(members):
        raise ValueError(f"{len(members)} members do not fit in {steps} batches of "
                         f"{batch_size}.")
    indices = np.empty((steps, batch_size), dtype="int64")
    weights = np.zeros((steps, batch_size), dtype="float32")
    for step, chunk in enumerate(np.array_split(members, steps)):
        if len(chunk) == 0:
            raise ValueError("One of the models trained together (a teacher or a shadow) has "
                             "fewer training rows than steps per epoch.")
        indices[step] = np.resize(chunk, batch_size)  # repeats its own members
        weights[step, :len(chunk)] = 1.0
    return indices, weights


def _normalized(weights):
    """Weights scaled so `compute_loss`'s mean over the padded batch is the mean
    over real members (Keras reduces ``sum_over_batch_size``)."""
    size = weights.shape[-1]
    return weights * (size / np.maximum(weights.sum(axis=-1, keepdims=True), 1.0))


def _outputs_each(models, x, rows, chunk=1024):
    """Each model's outputs (``training=False``) on ``x[rows[k]]``, model by model."""
    import keras

    return [np.concatenate([keras.ops.convert_to_numpy(model(x[r[i:i + chunk]], training=False))
                            for i in range(0, len(r), chunk)])
            for model, r in zip(models, rows)]


class _Step:
    """One step of every shadow on its own batch (a callable object, not a
    closure: TensorFlow counts traces per function code, see `_predict`)."""

    def __init__(self, models, x_pop, y_pop):
        self.models, self.x_pop, self.y_pop = models, x_pop, y_pop

    @staticmethod
    def _one(model, x, y, w):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=w,
                                      training=True)
            scaled = model.optimizer.scale_loss(loss)
        variables = model.trainable_variables
        model.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return loss

    def __call__(self, indices, weights):
        return self.on(self.x_pop, self.y_pop, indices, weights)

    def on(self, x, y, indices, weights):
        """One step: model k on rows ``indices[k]`` of ``(x, y)`` (a population or a batch)."""
        import tensorflow as tf

        return tf.stack([self._one(model, tf.gather(x, indices[k]), tf.gather(y, indices[k]),
                                   weights[k]) for k, model in enumerate(self.models)])

    def forward_on(self, x, idx):
        """`(K, rows, ...)` outputs (``training=False``) of model k on ``x[idx[k]]``."""
        import tensorflow as tf

        return tf.stack([model(tf.gather(x, idx[k]), training=False)
                         for k, model in enumerate(self.models)])


def train_together(models, x, y, masks, *, epochs=1, batch_size=32, shuffle=True,
                   seed=0, shadow_ids=None, steps_per_epoch=None, progress=None,
                   jit_compile="auto", sample_weight=None, vectorize="auto", watch=None):
    """Trains `models[k]` on ``x[masks[k]]`` (all at once); returns the models.

    Args:
        models: compiled models, one per shadow (see `stack_reason`).
        x, y: the population (arrays).
        masks: `(len(models), len(x))` bool, the shadows' training halves.
        epochs, batch_size, shuffle: as in `fit`.
        seed: shuffling seed; shadow `i` shuffles with ``(seed, i)``.
        shadow_ids: the shadows' numbers `i` (default ``0 … K−1``): a
            shadow's shuffling depends on its number only, not on which
            other shadows train beside it.
        steps_per_epoch: default ``ceil(largest shadow / batch_size)``.
        progress: a callable ``progress(epoch)`` called after every epoch;
            when it returns `True`, training ends there (early stopping).
            With `watch`, it is called as ``progress(epoch, outputs)``.
        watch: `None`, or K arrays of row indices: after every epoch, model
            k's outputs (``training=False``) on ``x[watch[k]]`` are computed
            (vectorized with the step) and given to `progress`.
        jit_compile: XLA-compile the step; ``"auto"``: when every model was
            compiled with XLA on (Keras' default where supported).
        sample_weight: `None` or `(len(x),)` weights of the examples, as
            `fit`'s: each batch's loss is ``sum(weight × loss) / members in
            the batch`` (Keras' ``sum_over_batch_size``).
        vectorize: run the K models as one vectorized model (module
            docstring): ``"auto"`` when `vector_reason` allows it and the
            model does not convolve on a CPU (`convolves`: the loop is faster),
            `True` (require it: `ValueError` says why not), `False` (the loop).

    Returns:
        `models`, trained.

    Example:

    ```python
    models = [make_model() for _ in range(4)]
    masks = keras_adamixup.audit.lira.shadow_masks(4, len(x), seed=0)
    train_together(models, x, y, masks, epochs=20, batch_size=64)
    ```
    """
    masks = _checked_masks(models, x, masks, epochs, batch_size)
    steps = steps_per_epoch or math.ceil(masks.sum(axis=1).max() / batch_size)
    if jit_compile == "auto":
        jit_compile = all(getattr(m, "jit_compile", False) is True for m in models)
    sample_weight = _example_weights(sample_weight, len(x))
    vectorize, body, step, write_back = _compiled_step(models, x, y, vectorize, jit_compile)
    ids = range(len(models)) if shadow_ids is None else shadow_ids
    rngs = [np.random.default_rng([seed, i]) for i in ids]
    members = [np.flatnonzero(mask) for mask in masks]
    watch = _watched_rows(watch)
    for epoch in range(epochs):
        _train_epoch(step, members, rngs, steps, batch_size, shuffle, sample_weight)
        if vectorize:
            write_back()
        if progress is not None and _report_epoch(progress, epoch, watch, body, models, x,
                                                  vectorize) is True:
            break
    return models


def _checked_masks(models, x, masks, epochs, batch_size):
    """Checks the training settings; returns `masks` as a bool array."""
    masks = np.asarray(masks, dtype=bool)
    _checks.positive_int("epochs", epochs)
    _checks.positive_int("batch_size", batch_size)
    if masks.shape != (len(models), len(x)):
        raise ValueError(f"`masks` must have shape {(len(models), len(x))}, got {masks.shape}.")
    if masks.sum(axis=1).min() == 0:
        raise ValueError("One of the models trained together (a teacher or a shadow) has no "
                         "training rows.")
    return masks


def _example_weights(sample_weight, n):
    """`sample_weight` as `(n,)` float32 (or `None`), checked against `n`."""
    if sample_weight is None:
        return None
    sample_weight = np.asarray(sample_weight, dtype="float32").reshape(-1)
    if len(sample_weight) != n:
        raise ValueError(f"`sample_weight` has {len(sample_weight)} entries for "
                         f"{n} examples.")
    return sample_weight


def _use_vectorized(models, vectorize, jit_compile):
    """Resolves ``vectorize="auto"`` (not for convolutional models on a machine
    without a GPU: the loop is faster there); `True` raises when the stack cannot be."""
    if vectorize == "auto":
        if convolves(models[0]) and not _gpu_visible():
            return False
        return vector_reason(models, jit_compile) is None
    if vectorize:
        reason = vector_reason(models, jit_compile)
        if reason is not None:
            raise ValueError(f"The models cannot train vectorized: {reason}.")
    return vectorize


def _build_variables(models, x, y, vectorize):
    """Creates the variables the step needs, eagerly; makes no update.

    Optimizer slots and the compiled loss's trackers cannot be created inside
    the compiled step, so they are built here, outside it.
    """
    for model in models:
        if not vectorize:
            model.optimizer.build(model.trainable_variables)
            model.compute_loss(x=x[:2], y=y[:2], y_pred=model(x[:2], training=False),
                               training=False)
        elif not model.built:
            model(x[:2], training=False)


def _compiled_step(models, x, y, vectorize, jit_compile):
    """The compiled training step of the K models.

    Returns:
        ``(vectorize, body, step, write_back)``: whether the step is
        vectorized, the step's Python object, its `tf.function`, and the
        function writing the stacked weights back (`None` for the loop).
    """
    import tensorflow as tf

    x_pop = tf.constant(x)
    y_pop = tf.constant(y)
    vectorize = _use_vectorized(models, vectorize, jit_compile)
    _build_variables(models, x, y, vectorize)
    body = (_VectorStep if vectorize else _Step)(models, x_pop, y_pop)
    step = tf.function(body, jit_compile=bool(jit_compile))
    write_back = tf.function(_Call(body.write_back)) if vectorize else None
    return vectorize, body, step, write_back


def _watched_rows(watch):
    """`watch` as K arrays of row indices (bool masks become indices)."""
    if watch is None:
        return None
    return [np.flatnonzero(w) if np.asarray(w).dtype == bool else np.asarray(w, "int64")
            for w in watch]


def _train_epoch(step, members, rngs, steps, batch_size, shuffle, sample_weight):
    """Runs one epoch: `steps` steps, each on one batch per model."""
    import tensorflow as tf

    plans = [batch_plan(m, steps, batch_size, rng, shuffle) for m, rng in zip(members, rngs)]
    indices = np.stack([p[0] for p in plans], axis=1)  # (steps, K, batch)
    weights = _normalized(np.stack([p[1] for p in plans], axis=1))
    if sample_weight is not None:
        weights = (weights * sample_weight[indices]).astype("float32")
    for s in range(steps):
        step(tf.constant(indices[s]), tf.constant(weights[s]))


def _report_epoch(progress, epoch, watch, body, models, x, vectorize):
    """Calls `progress` after an epoch (with the watched outputs); returns its answer."""
    if watch is None:
        return progress(epoch)
    seen = body.outputs(watch) if vectorize else _outputs_each(models, x, watch)
    return progress(epoch, seen)


def train_streamed(models, batches, masks, *, epochs=1, progress=None, jit_compile="auto",
                   sample_weight=None, vectorize="auto", watch=None, first=None):
    """Trains `models[k]` on the examples of `batches` where `masks[k]`, all at once, from
    one pass of `batches` per epoch (a dataset not held in memory: too large, or with
    random augmentation in its pipeline).

    Every model steps on its own members of each batch, gathered from it and
    padded to a common size (a multiple of `_PAD`) with repeats of its own
    members at weight 0: as in `train_together`, a model never sees a row it
    does not train on, batch-normalization statistics included. All models read
    the same batches, so a pipeline's augmentation is drawn once per example and
    pass for all of them. A batch in which some model has no member is joined to
    the next one (`_complete_batches`).

    Args:
        models: compiled models (see `stack_reason`).
        batches: an iterable of ``(i, x, y)`` batches (`i` int64 example
            indices, `x` one input), iterated once per epoch (a
            `tf.data.Dataset` reshuffled at every pass).
        masks: `(len(models), n)` bool, the examples each model trains on.
        epochs: passes over `batches`.
        progress, jit_compile, vectorize: as `train_together`'s.
        sample_weight: `None` or `(n,)` weights of the examples, by index.
        watch: `None`, or ``(rows, inputs)``: `(len(models), n)` bool and an
            iterable of ``(i, x)`` batches of the examples: after every epoch,
            model k's outputs (``training=False``) on its rows, in the order
            `inputs` yields them, are given to ``progress(epoch, outputs)``.
        first: `(x, y)` of a few examples, which build the models' variables
            (default: the first batch of `batches`, one more read).

    Returns:
        `models`, trained.

    Example:

    ```python
    stream = keras_adamixup._fit_dataset.joint_batches(dataset, 64, seed=0, count=n)
    train_streamed(models, stream, masks, epochs=20)
    ```
    """
    import tensorflow as tf

    masks = _checked_masks(models, range(np.shape(masks)[-1]), masks, epochs, 1)
    sample_weight = _example_weights(sample_weight, masks.shape[1])
    if first is None:
        first = next(iter(batches))[1:]
    step, forward, write_back = _streamed_step(models, first, jit_compile, vectorize)
    for epoch in range(epochs):
        for i, x, y in _complete_batches(batches, masks):
            indices, weights = _stream_plan(i, masks, sample_weight)
            step(x, y, tf.constant(indices), tf.constant(weights))
        if write_back is not None:
            write_back()
        if progress is None:
            continue
        answer = (progress(epoch) if watch is None
                  else progress(epoch, _outputs_by_rows(forward, *watch)))
        if answer is True:
            break
    return models


def _streamed_step(models, first, jit_compile, vectorize):
    """`(step, forward, write_back)` of `train_streamed`: the compiled step and forward
    pass on a batch's rows, and the vectorized weights' write-back (or `None`)."""
    import tensorflow as tf

    x0, y0 = (np.asarray(part) for part in first)
    if jit_compile == "auto":
        jit_compile = all(getattr(m, "jit_compile", False) is True for m in models)
    vectorize = _use_vectorized(models, vectorize, jit_compile)
    _build_variables(models, x0, y0, vectorize)
    body = (_VectorStep if vectorize else _Step)(models, None, None)
    return (tf.function(_Call(body.on), jit_compile=bool(jit_compile), reduce_retracing=True),
            tf.function(_Call(body.forward_on), reduce_retracing=True),
            tf.function(_Call(body.write_back)) if vectorize else None)


class _Call:
    """A bound method as a callable object: TensorFlow counts traces per function
    *code*, so `tf.function(body.on)` in every `fit` would add up, over fits, to
    "excessive retracing" warnings (as `keras_adamixup.audit._predict` explains)."""

    def __init__(self, method):
        self.method = method

    def __call__(self, *args):
        return self.method(*args)


# a model's rows of a streamed batch are padded to a multiple of this many (fewer shapes
# to trace, and none of the odd sizes oneDNN has failed on)
_PAD = 8


def _complete_batches(batches, masks):
    """`batches` as ``(i (NumPy), x, y)``, a batch in which some model has no member
    joined to the next one (the last to the one before): each model's step then has
    rows of its own (a step on none would move its optimizer and statistics)."""
    import tensorflow as tf

    def complete(i):
        return bool(masks[:, i].any(axis=1).all())

    pending = None
    for i, x, y in batches:
        batch = (np.asarray(i), x, y)
        if pending is None:
            pending = batch
        elif complete(pending[0]) and complete(batch[0]):
            yield pending
            pending = batch
        else:
            pending = (np.concatenate([pending[0], batch[0]]), tf.concat([pending[1], x], 0),
                       tf.concat([pending[2], y], 0))
    if pending is not None:
        yield pending


def _padded_rows(member):
    """`(indices, counts)`: each row of `member` (bool, `(K, b)`)'s true positions,
    padded by repeats to a common length, a multiple of `_PAD` (also for a short
    last batch: TensorFlow's oneDNN kernels on a CPU have failed on batches of 1 or
    15 rows of a CNN with batch normalization, see benchmarks/device_check.sh)."""
    counts = member.sum(axis=1)
    size = max(1, -(-int(counts.max()) // _PAD)) * _PAD
    indices = np.stack([np.resize(np.flatnonzero(row), size) if row.any()
                        else np.zeros(size, dtype="int64") for row in member])
    return indices.astype("int64"), counts


def _stream_plan(i, masks, sample_weight):
    """One streamed batch's `(indices, weights)`, `(K, size)`: each model's members of
    the batch (`i`: its examples' indices), weighted as `train_together` weighs them."""
    indices, counts = _padded_rows(masks[:, i])
    weights = (np.arange(indices.shape[1])[None, :] < counts[:, None]).astype("float32")
    weights = _normalized(weights)
    if sample_weight is not None:
        weights = (weights * sample_weight[i[indices]]).astype("float32")
    return indices, weights


def _outputs_by_rows(forward, rows, inputs):
    """Model k's outputs on the examples where ``rows[k]``, from one pass of `inputs`
    (``(i, x)`` batches), in the order they come; `forward(x, indices)` gives the K
    models' outputs on their rows of a batch."""
    import tensorflow as tf

    rows = np.asarray(rows, dtype=bool)
    parts = [[] for _ in rows]
    for i, x in inputs:
        member = rows[:, np.asarray(i)]
        if not member.any():
            continue
        indices, counts = _padded_rows(member)
        out = np.asarray(forward(x, tf.constant(indices)))
        for k, count in enumerate(counts):
            parts[k].append(out[k, :count])
    return [np.concatenate(part) for part in parts]


def outputs_streamed(models, rows, inputs):
    """Each model's outputs (``training=False``) on the examples where ``rows[k]``, from
    one pass of `inputs` (``(i, x)`` batches): a list of K arrays.

    Example:

    ```python
    outputs = outputs_streamed(models, left_out, _fit_dataset.indexed_inputs(dataset))
    ```
    """
    import tensorflow as tf

    step = _Step(models, None, None)
    return _outputs_by_rows(tf.function(_Call(step.forward_on), reduce_retracing=True), rows,
                            inputs)
