"""How long near-duplicate detection (`keras_adamixup.duplicates`) takes, by rows.

`SplitTeachers` groups near-duplicates before drawing which teachers leave
each row out. This times `near_duplicate_groups` on the first n rows of
MNIST (train + test pooled, 784 pixels in [0, 1]) with 1 % of them replaced by
noisy copies of others (σ = 0.05 × each pixel's std), and says how many
copies it found (all of them, when the filter works) and how many other rows
it grouped. Median of `--repeats` runs per size.

    python -m benchmarks.duplicates_time --sizes 5000,20000,70000
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


def main(argv=None):
    parser = common.parser(__doc__, "repeats")
    parser.add_argument("--sizes", default="5000,20000,70000")
    args = parser.parse_args(argv)
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
