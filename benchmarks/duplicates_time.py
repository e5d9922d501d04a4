"""How long near-duplicate detection (`keras_adamixup.duplicates`) takes, by rows.

`SplitTeachers` groups near-duplicates before drawing which teachers leave
each row out. This times `near_duplicate_groups` on the first n rows of
MNIST (train + test pooled, 784 pixels in [0, 1]) with 1 % of them replaced by
noisy copies of others (σ = 0.05 × each pixel's std), and says how many
copies it found (all of them, when the filter works) and how many other rows
it grouped. Median of `--repeats` runs per size.

With ``--as-images`` it times the search `SplitTeachers` runs on images
(`duplicates.settings_for`: a radius of 0.15, translations and crops) on the
first n images of ``--data`` (mnist or cifar10), with ``--copies`` near-copies
of each kind of the near-copy benchmark added (the audit's `NearCopy` kinds
and crops made by TensorFlow, `near_copy_groups`), once per ``--candidates``
setting: ``none`` (every pair), or ``k`` nearest by the descriptors. It says
how many copies of each kind were found with their source, how many other
rows were grouped, and whether the groups are the same as the first setting's.

    python -m benchmarks.duplicates_time --sizes 5000,20000,70000
    python -m benchmarks.duplicates_time --as-images --data cifar10 --sizes 10000 \
        --candidates none,32 --repeats 1
"""

import os
import statistics
import sys
import time

import numpy as np

from keras_adamixup import duplicates

from benchmarks import common
from benchmarks.common import SHARED


def with_copies(x, fraction=0.01, noise=0.05, seed=0):
    """`x` with `fraction` of its rows replaced by noisy copies of other rows:
    `(x, originals, copies)` (row indices)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    k = max(1, int(n * fraction))
    rows = rng.permutation(n)[:2 * k]
    originals, copies = rows[:k], rows[k:]
    x = x.copy()
    x[copies] = np.clip(x[originals] + rng.normal(0, noise, (k, x.shape[1])).astype("float32")
                        * x.std(axis=0), x.min(), x.max())
    return x, originals, copies


def planted(name, n, copies, seed=0):
    """The first `n` images of data `name` (shuffled), then `copies` near-copies of
    distinct rows of each `near_copy_groups` kind: ``(images, sources, kinds)``, where
    ``sources[i]`` is the row image ``n + i`` copies and ``kinds[i]`` its kind."""
    from keras_adamixup import audit

    from benchmarks import data, near_copy_groups

    x, _ = data.load_pool(name)
    x = np.asarray(x, "float32")[np.random.default_rng(seed).permutation(len(x))[:n]]
    kinds = near_copy_groups.kinds_for(name, x)
    kinds.pop("features", None)  # a feature change is not an image edit
    parts, sources, kind_of = [x], [], []
    for index, (kind, near) in enumerate(kinds.items()):
        rows = np.sort(np.random.default_rng([seed, index]).choice(n, copies, replace=False))
        parts.append(audit.canaries.near_copies(x, rows, near, seed=seed))
        sources.append(rows)
        kind_of += [kind] * copies
    images = near_copy_groups._images(name, np.concatenate(parts))
    return images, np.concatenate(sources), np.array(kind_of)


def images_table(args):
    """``--as-images``: the image search per size and `candidates` setting."""
    print("| rows | candidates | median s | found with their source, per kind | other rows "
          "grouped | same groups as the first |")
    print("|---|---|---|---|---|---|")
    for n in common.integers(args.sizes):
        images, sources, kinds = planted(args.data, n, args.copies)
        settings = duplicates.settings_for(images)
        first = None
        for word in args.candidates.split(","):
            candidates = None if word == "none" else int(word)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                groups = duplicates.near_duplicate_groups(images, candidates=candidates,
                                                          **settings)
                times.append(time.perf_counter() - start)
            copies = np.arange(n, len(images))
            together = groups[copies] == groups[sources]
            found = ", ".join(f"{kind} {together[kinds == kind].mean():.0%}"
                              for kind in dict.fromkeys(kinds))
            sizes = np.bincount(groups, minlength=len(groups))
            other = int(np.sum((sizes[groups[:n]] > 1) & ~np.isin(np.arange(n), sources)))
            first = groups if first is None else first
            same = "yes" if np.array_equal(groups, first) else \
                f"no ({int(np.sum(groups != first))} rows differ)"
            print(f"| {len(images)} | {word} | {statistics.median(times):.1f} | {found} | "
                  f"{other} | {same} |", flush=True)
    return 0


def main(argv=None):
    parser = common.parser(__doc__, "repeats", data="mnist")
    parser.add_argument("--sizes", default="5000,20000,70000")
    parser.add_argument("--as-images", action="store_true",
                        help="the image search (translations, crops) with planted near-copies")
    parser.add_argument("--copies", type=int, default=100,
                        help="--as-images: near-copies of each kind")
    parser.add_argument("--candidates", default="none,32",
                        help="--as-images: comma-separated candidates settings (none or k)")
    args = parser.parse_args(argv)
    if args.as_images:
        from benchmarks import data

        if data.pool_or_skip(args.data) is None:
            return 0
        return images_table(args)
    path = os.path.join(SHARED, "mnist.npz")
    if not os.path.exists(path):
        print(f"skipped: {path} not found (it lives in ../shared/data on the project's "
              "machines).")
        return 0
    data = np.load(path)
    pool = np.concatenate([data["x_train"], data["x_test"]]).reshape(-1, 784)
    pool = pool.astype("float32") / 255.0
    print("| rows | median s | copies found | other rows grouped |")
    print("|---|---|---|---|")
    for n in common.integers(args.sizes):
        x, originals, copies = with_copies(pool[:n])
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            groups = duplicates.near_duplicate_groups(x)
            times.append(time.perf_counter() - start)
        found = int(np.sum(groups[copies] == groups[originals]))
        planted = np.zeros(n, dtype=bool)
        planted[np.r_[originals, copies]] = True
        other = int(np.sum(np.bincount(groups, minlength=n)[groups][~planted] > 1))
        print(f"| {n} | {statistics.median(times):.2f} | {found} of {len(copies)} | {other} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
