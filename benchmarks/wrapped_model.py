"""The base of the benchmarks' baselines that train a classifier by another rule.

`benchmarks.relaxloss.RelaxLossModel` and
`benchmarks.self_adaptive.SelfAdaptiveModel` wrap a Keras classifier and
replace its `train_step`; what they share (the forward pass, Keras' loss
tracker, a config that carries the wrapped model) is here. Benchmark code:
the package never depends on it.
"""

import keras


class WrappedModel(keras.Model):
    """A classifier wrapped so that `fit` trains it by the subclass's `train_step`.

    Subclasses name the attributes their config carries in ``OPTIONS``;
    `get_config` / `from_config` round-trip them with the wrapped model.

    Args:
        model: the Keras classifier, logits out.

    Example:

    ```python
    class Plain(WrappedModel):
        OPTIONS = ()
    Plain(cnn).compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ```
    """

    OPTIONS = ()

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def track_loss(self, loss, rows):
        """Keras' own loss tracker (the ``loss`` of the history) updated with `loss` of
        `rows` examples, for a `train_step` that does not go through `compute_loss`."""
        next(m for m in self.metrics if m.name == "loss").update_state(loss, sample_weight=rows)

    def get_config(self):
        return {**super().get_config(), **{key: getattr(self, key) for key in self.OPTIONS},
                "model": keras.saving.serialize_keras_object(self.model)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)
