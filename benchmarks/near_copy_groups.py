"""Near-copies the audit does not make (issue 40): which grouping finds them.

A split-teacher defence protects a record stored twice only if its copies are
grouped (left out together). This measures, for each kind of near-copy that
`audit.canaries.NearCopy` makes (relative and absolute noise, a shift, a
crop, a JPEG re-encoding for images; a few features from another row), how
many true copies three groupings find and how many unrelated rows they group:

- ``raw``: `keras_adamixup.duplicates.near_duplicate_groups` at its `RADIUS`
  on the inputs (what the defence does today);
- ``aligned`` (images): what `SplitTeachers` does on image arrays
  (``near_duplicate_groups(images, **settings_for(images))``: radius 0.15, at
  the best translation by up to 2 pixels and against every crop of up to 3
  pixels resized back), at the same radius as the others;
- ``embedding``: the same on the penultimate layer of the benchmarks' model
  (`benchmarks.data.base_model`: the MLP, the CNN for CIFAR-10) trained a few
  epochs on rows that are not among the measured ones;
- ``dhash`` / ``ahash``: perceptual hashes of images (a difference hash and an
  average hash of 64 bits on a downscaled grey image, written here with
  NumPy), rows within `--hash-bits` differing bits grouped;
- ``raw+embedding``: the union of the first two.

`--rows` random rows of the data set (at most half of it; the rest trains the
embedding), then per kind `--copies` near-copies of distinct random rows among
them are added (the ``zoom`` kind of images: crops made another way than the
audit's ``crop`` and the grouping's, boxes of 89 to 98 % of each side between
pixels resized by TensorFlow's ``crop_and_resize``; until 2026-12-06 this
benchmark made them itself as ``crop_other``). Per kind and method: ``recall``
(share of the copies grouped
with their source), ``false_rows`` (rows whose group holds a row that is
neither itself nor its own copy or source: the rows a false group costs) and
the largest group; and per method the rows grouped on the measured rows
before any copy was added (``clean``). The JSON also holds a sweep of radii
and hash thresholds. Writes ``benchmarks/results/near_copy_groups_<data>.json``
(or `--out`).

    python -m benchmarks.near_copy_groups --data digits
    python -m benchmarks.near_copy_groups --data mnist
    python -m benchmarks.near_copy_groups --data adult
    python -m benchmarks.near_copy_groups --data cifar10
    python -m benchmarks.near_copy_groups --quick --out /tmp/ncg.json   # smoke test

``--halved 0,1,2`` measures instead what a dataset too large to keep whole
gets (`keras_adamixup._fit_dataset.SEARCH_BYTES`): per kind, the images with
their copies halved that many times (2 x 2 means, `_image_ops.halved`), then
grouped as `SplitTeachers` groups them (``aligned`` at radius 0.15, the
shifts and crops `settings_for` gives that size, shifts in half pixels when
halved), images only, no embedding:

    python -m benchmarks.near_copy_groups --data cifar10 --halved 0,1,2 --out ncg_halved.json
"""

import datetime
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy.sparse import coo_matrix  # noqa: E402
from scipy.sparse.csgraph import connected_components  # noqa: E402

from keras_adamixup import _image_ops, _io, audit, duplicates  # noqa: E402

from benchmarks import common, data  # noqa: E402
from benchmarks.canary_audit import near_copy  # noqa: E402

METHODS = ("raw", "aligned", "embedding", "dhash", "ahash", "raw+embedding")
RADII = (0.05, 0.1, 0.15, 0.2, 0.3)
HASH_BITS = (0, 2, 4, 6, 8, 10, 12)
DHASH_MARGIN = 0.02


# -- perceptual hashes ------------------------------------------------------------

def _grey_resized(images, height, width):
    """Grey images (the channels' mean) resized by area averaging to (height, width)."""
    grey = images.mean(axis=-1)
    for axis, size in ((1, height), (2, width)):
        n = grey.shape[axis]
        # each output cell averages the input pixels it covers (fractional edges weighted)
        edges = np.linspace(0.0, n, size + 1)
        weights = np.clip(np.minimum(edges[1:, None], np.arange(1, n + 1)[None, :])
                          - np.maximum(edges[:-1, None], np.arange(n)[None, :]), 0.0, None)
        weights /= weights.sum(axis=1, keepdims=True)
        grey = np.moveaxis(np.tensordot(grey, weights, axes=([axis], [1])), -1, axis)
    return grey


def image_hashes(images, kind, margin=DHASH_MARGIN):
    """64-bit perceptual hashes of images ``(n, H, W, C)`` as bool ``(n, 64)``.

    Args:
        images: the images, values in [0, 1].
        kind: ``"dhash"`` (each pixel brighter than its right neighbour by
            more than `margin`, on a 9x8 grey image: without a margin, the
            flat background's ties flip with any noise) or ``"ahash"`` (each
            pixel brighter than the image's mean, on an 8x8 grey image).
        margin: dHash's margin.

    Example:

    ```python
    bits = image_hashes(x.reshape(-1, 28, 28, 1), "dhash")
    ```
    """
    if kind == "dhash":
        small = _grey_resized(images, 8, 9)
        bits = small[:, :, 1:] > small[:, :, :-1] + margin
    else:
        small = _grey_resized(images, 8, 8)
        bits = small > small.mean(axis=(1, 2), keepdims=True)
    return bits.reshape(len(images), -1)


def hash_groups(bits, threshold):
    """Each row's group: the connected components of rows within `threshold` differing bits.

    Example:

    ```python
    groups = hash_groups(image_hashes(images, "dhash"), 4)
    ```
    """
    b = bits.astype("float32")
    differ = b @ (1.0 - b).T + (1.0 - b) @ b.T
    i, j = np.nonzero(np.triu(differ <= threshold + 0.5, k=1))
    return _components(len(bits), i, j)


def _components(n, i, j):
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def union_groups(*labellings):
    """The groups of several labellings joined (rows grouped by any of them).

    Example:

    ```python
    joined = union_groups(raw_groups, embedding_groups)
    ```
    """
    n = len(labellings[0])
    rows = np.concatenate([np.arange(n)] * len(labellings))
    # row r joined to a node of its group in each labelling
    nodes = np.concatenate([np.asarray(lab) + (k + 1) * n for k, lab in enumerate(labellings)])
    return _components(n * (len(labellings) + 1), rows, nodes)[:n]


# -- measuring -----------------------------------------------------------------

def measure(labels, family, n_clean):
    """Recall and false rows of a grouping of ``n_clean`` rows plus their copies.

    Args:
        labels: each row's group.
        family: each row's family (a source row and its copy share one).
        n_clean: the rows before the copies (the copies follow).

    Example:

    ```python
    measure(groups, np.concatenate([np.arange(n), sources]), n)
    ```
    """
    labels, family = np.asarray(labels), np.asarray(family)
    copies = len(labels) - n_clean
    found = int(np.sum(labels[n_clean:] == labels[family[n_clean:]]))
    _, group_of_pair = np.unique(np.stack([labels, family], axis=1), axis=0, return_index=True)
    families = np.bincount(labels[group_of_pair], minlength=labels.max() + 1)
    mixed = families[labels] > 1
    sizes = np.bincount(labels)
    return {"found": found, "copies": copies, "recall": found / copies if copies else None,
            "false_rows": int(mixed.sum()), "false_groups": int(np.sum(families > 1)),
            "largest": int(sizes.max())}


def aligned_groups(images, radius, shift_step=1):
    """`near_duplicate_groups` of `images` as `SplitTeachers` searches them
    (`duplicates.settings_for`: shifts and crops), at `radius` (`shift_step` 0.5:
    as it searches images kept at half their sides)."""
    settings = {**duplicates.settings_for(images), "radius": radius}
    if settings["shift"]:  # as SplitTeachers.groups: images too small to shift take none
        settings["shift_step"] = shift_step
    return duplicates.near_duplicate_groups(images, **settings)


def groupings(x_rows, embedded, images, radius=duplicates.RADIUS, hash_bits=4):
    """``{method: labels}`` of `METHODS` (the translations and hashes only for images).

    Example:

    ```python
    labels = groupings(x, embed(x), x.reshape(-1, 28, 28, 1))
    ```
    """
    out = {"raw": duplicates.near_duplicate_groups(x_rows, radius=radius)}
    if images is not None:
        out["aligned"] = aligned_groups(images, radius)
    out["embedding"] = duplicates.near_duplicate_groups(embedded, radius=radius)
    if images is not None:
        for kind in ("dhash", "ahash"):
            out[kind] = hash_groups(image_hashes(images, kind), hash_bits)
    out["raw+embedding"] = union_groups(out["raw"], out["embedding"])
    return out


def sweep(x_rows, embedded, images, family, n_clean):
    """Recall and false rows at each radius of `RADII` and hash threshold of `HASH_BITS`."""
    out = {}
    for radius in RADII:
        for name, rows in (("raw", x_rows), ("embedding", embedded)):
            labels = duplicates.near_duplicate_groups(rows, radius=radius)
            out[f"{name}@{radius}"] = _short(measure(labels, family, n_clean))
        if images is not None:
            labels = aligned_groups(images, radius)
            out[f"aligned@{radius}"] = _short(measure(labels, family, n_clean))
    if images is not None:
        for kind in ("dhash", "ahash"):
            bits = image_hashes(images, kind)
            for t in HASH_BITS:
                out[f"{kind}<={t}"] = _short(measure(hash_groups(bits, t), family, n_clean))
    return out


def _short(m):
    recall = None if m["recall"] is None else round(m["recall"], 3)
    return {"recall": recall, "false_rows": m["false_rows"]}


# -- the embedding -------------------------------------------------------------

def embedder(x_train, y_train, args):
    """The penultimate layer of the benchmarks' model trained on `x_train` (a function).

    Example:

    ```python
    embed = embedder(x_other, y_other, args)
    features = embed(x_rows)
    ```
    """
    keras.utils.set_random_seed(args.seed)
    classes = int(y_train.max()) + 1
    model = data.base_model(x_train.shape[1:], classes, args.width)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=128, verbose=0)
    features = keras.Model(model.inputs, model.layers[-2].output)

    def embed(x):
        return np.asarray(features.predict(x, batch_size=512, verbose=0), dtype="float32")

    embed.train_accuracy = float(history.history["accuracy"][-1])
    return embed


# -- the run -------------------------------------------------------------------

def kinds_for(name, x):
    """The near-copy kinds this data set can have, each as a one-kind `NearCopy`
    (image kinds for images only; Adult's features change one-hot blocks whole)."""
    out = {}
    for kind in audit.canaries.NEAR_COPY_KINDS:
        try:
            near = near_copy(name, x, (kind,))
            near.image_of(x.shape[1:])
        except ValueError:
            continue
        if kind == "features" and data.FEATURE_GROUPS.get(name):
            near = audit.canaries.NearCopy(kinds=("features",),
                                           feature_groups=data.FEATURE_GROUPS[name])
        out[kind] = near
    return out


def _images(name, x):
    """`x` as images ``(n, H, W, C)``, or `None` for tabular data."""
    shape = near_copy(name, x, ("shift",)).image_shape
    if shape is not None:
        return x.reshape((len(x),) + tuple(shape) + ((1,) if len(shape) == 2 else ()))
    return x if x.ndim == 4 else None


def with_copies(x_rows, near, seed, copies):
    """``(rows, family)``: `x_rows` and, for a one-kind `NearCopy` `near`, `copies`
    near-copies of distinct random rows after them (`None`: the rows alone); each
    row's family is its source row's index."""
    n = len(x_rows)
    if near is None:
        return x_rows, np.arange(n)
    index = audit.canaries.NEAR_COPY_KINDS.index(near.kinds[0])
    rng = np.random.default_rng([seed, index])
    sources = np.sort(rng.choice(n, size=min(copies, n), replace=False))
    made = audit.canaries.near_copies(x_rows, sources, near, seed=seed)
    return np.concatenate([x_rows, made]), np.concatenate([np.arange(n), sources])


def run_kind(x_rows, near, embed, name, seed, copies):
    """One near-copy kind (`near`: `copies` near-copies of distinct rows of `x_rows`
    added; `None`: the rows alone), then every method's `measure` and the `sweep`."""
    n = len(x_rows)
    x_all, family = with_copies(x_rows, near, seed, copies)
    embedded, images = embed(x_all), _images(name, x_all)
    methods = {m: measure(labels, family, n)
               for m, labels in groupings(x_all, embedded, images).items()}
    return {"methods": methods, "sweep": sweep(x_all, embedded, images, family, n)}


def arguments(argv):
    """The command line, with --quick's sizes applied."""
    parser = common.parser(__doc__, "data", "seed", "width", epochs=5, out=None,
                           quick="digits, 300 rows, 30 copies, 1 epoch")
    parser.add_argument("--rows", type=int, default=2000, help="measured rows (at most "
                        "half of the data set)")
    parser.add_argument("--copies", type=int, default=200, help="near-copies per kind")
    parser.add_argument("--train-rows", type=int, default=8000,
                        help="rows (not measured) that train the embedding's model")
    parser.add_argument("--halved", default=None,
                        help="comma-separated times the images are halved before an aligned "
                             "search (the dataset path over SEARCH_BYTES), e.g. 0,1,2")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.copies, args.epochs, args.train_rows = 300, 30, 1, 500
    if args.out is None:
        args.out = os.path.join(common.ROOT, "benchmarks", "results",
                                f"near_copy_groups_{args.data}.json")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = arguments(argv)
    pool = data.pool_or_skip(args.data)
    if pool is None:
        return 0
    start = time.perf_counter()
    x, y = pool
    order = np.random.default_rng(args.seed).permutation(len(x))
    n = min(args.rows, len(x) // 2)
    measured, other = order[:n], order[n:n + args.train_rows]
    if args.halved is not None:
        return halved_main(x[measured], args, argv, start)
    embed = embedder(x[other], y[other], args)
    trained = time.perf_counter() - start
    clean = run_kind(x[measured], None, embed, args.data, args.seed, 0)
    result = {"benchmark": "near_copy_groups", "data": args.data,
              "commands": ["python -m benchmarks.near_copy_groups " + " ".join(argv)],
              "commit": _commit(), "date": datetime.date.today().isoformat(),
              "settings": {"rows": int(n), "copies": args.copies, "train_rows": len(other),
                           "epochs": args.epochs, "seed": args.seed,
                           "radius": duplicates.RADIUS, "hash_bits": 4,
                           "embedding_train_accuracy": round(embed.train_accuracy, 4)},
              "clean": {m: v["false_rows"] for m, v in clean["methods"].items()},
              "clean_sweep": {k: v["false_rows"] for k, v in clean["sweep"].items()},
              "kinds": {}}
    kinds = kinds_for(args.data, x)
    for kind, near in kinds.items():
        result["kinds"][kind] = run_kind(x[measured], near, embed, args.data, args.seed,
                                         args.copies)
    result["seconds"] = {"embedding": round(trained, 1),
                         "total": round(time.perf_counter() - start, 1)}
    _io.write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    return 0


def halved_main(x_rows, args, argv, start):
    """``--halved``: per kind and halving, the aligned search's recall and false rows."""
    times = [int(t) for t in args.halved.split(",")]
    if _images(args.data, x_rows[:1]) is None:
        raise SystemExit(f"--halved needs images; {args.data} is tabular.")
    result = {"benchmark": "near_copy_groups_halved", "data": args.data,
              "commands": ["python -m benchmarks.near_copy_groups " + " ".join(argv)],
              "commit": _commit(), "date": datetime.date.today().isoformat(),
              "settings": {"rows": len(x_rows), "copies": args.copies, "seed": args.seed,
                           "radius": duplicates.IMAGE_RADIUS, "halved": times},
              "kinds": {}}
    kinds = {"none": None, **kinds_for(args.data, x_rows)}
    for kind, near in kinds.items():
        n = len(x_rows)
        x_all, family = with_copies(x_rows, near, args.seed, args.copies)
        images, row = _images(args.data, x_all), {}
        for t in times:
            small = images
            for _ in range(t):
                small = _image_ops.halved(small)
            began = time.perf_counter()
            m = measure(aligned_groups(small, duplicates.IMAGE_RADIUS,
                                       duplicates.CROP_STEP if t else 1), family, n)
            row[str(t)] = {**_short(m), "side": int(small.shape[1]),
                           "seconds": round(time.perf_counter() - began, 1)}
        result["kinds"][kind] = row
        print(kind, json.dumps(row), flush=True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    _io.write_text(args.out, json.dumps(result, indent=1) + "\n")
    lines = [f"{args.data}: {len(x_rows)} rows + {args.copies} near-copies per kind, searched "
             "as SplitTeachers searches images (radius 0.15, shifts, crops) after halving the "
             "images k times. Cells: copies found (recall) / rows grouped with an unrelated "
             "row.", "",
             "| near-copy |" + "".join(f" halved {t}x ({row[str(t)]['side']} px) |"
                                        for t in times), "|---|" + "---|" * len(times)]
    for kind, row in result["kinds"].items():
        cells = [(f"{row[str(t)]['recall']:.0%} / " if row[str(t)]["recall"] is not None
                  else "(no copies) ") + str(row[str(t)]["false_rows"]) for t in times]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    return 0


def markdown(result):
    """The table of one data set: per kind, each method's recall and false rows.

    Example:

    ```python
    print(markdown(json.load(open("benchmarks/results/near_copy_groups_mnist.json"))))
    ```
    """
    s = result["settings"]
    methods = [m for m in METHODS if m in result["clean"]]
    names = {"raw": f"raw (radius {s['radius']})",
             "aligned": f"raw, best shift ≤ 2 px or crop ≤ 3 px (radius {s['radius']})",
             "embedding": f"embedding (radius {s['radius']})",
             "dhash": f"dHash ≤ {s['hash_bits']} bits",
             "ahash": f"aHash ≤ {s['hash_bits']} bits", "raw+embedding": "raw ∪ embedding"}
    lines = [f"{result['data']}: {s['rows']} rows + {s['copies']} near-copies per kind; "
             f"embedding trained on {s['train_rows']} other rows, {s['epochs']} epochs "
             f"(train accuracy {s['embedding_train_accuracy']:.3f}); "
             f"{result['seconds']['total']:.0f} s. Cells: copies found (recall) / rows "
             "grouped with an unrelated row.", "",
             "| near-copy |" + "".join(f" {names[m]} |" for m in methods),
             "|---|" + "---|" * len(methods)]
    for kind, entry in result["kinds"].items():
        cells = [f"{entry['methods'][m]['recall']:.0%} / {entry['methods'][m]['false_rows']}"
                 for m in methods]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append(f"| (no copies: rows grouped of {s['rows']}) | "
                 + " | ".join(str(result["clean"][m]) for m in methods) + " |")
    return "\n".join(lines + [""] + sweep_markdown(result)) + "\n"


# the settings of the sweep that the second table shows
SWEEP_SHOWN = ("raw@0.15", "aligned@0.15", "raw@0.2", "aligned@0.2", "embedding@0.05",
               "embedding@0.15", "dhash<=0", "dhash<=2")


def sweep_markdown(result):
    """Lines: the second table, some other radii and hash thresholds (`SWEEP_SHOWN`).

    Example:

    ```python
    print("\n".join(sweep_markdown(result)))
    ```
    """
    keys = [k for k in SWEEP_SHOWN if k in result["clean_sweep"]]
    lines = ["Other radii and hash thresholds (same cells):", "",
             "| near-copy |" + "".join(f" {k} |" for k in keys), "|---|" + "---|" * len(keys)]
    for kind, entry in result["kinds"].items():
        cells = [f"{entry['sweep'][k]['recall']:.0%} / {entry['sweep'][k]['false_rows']}"
                 for k in keys]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("| (no copies: rows grouped) | "
                 + " | ".join(str(result["clean_sweep"][k]) for k in keys) + " |")
    return lines


def _commit():
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=common.ROOT,
                           capture_output=True, text=True)
    return found.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
