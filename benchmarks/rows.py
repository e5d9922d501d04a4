"""Benchmark result rows (the `runs.json` a benchmark writes): merged and averaged.

Plain Python, no TensorFlow: `render_results.py` reads result rows with it
as well as the benchmarks that write them (`privacy_utility.py`,
`canary_audit.py`).
"""

import json
import os
import statistics


def merged_rows(folders):
    """The rows of each folder's runs.json, merged (`merge`: a later folder's
    (defence, seed) replaces the earlier row, e.g. re-run with a newer audit).
    Check the result with `one_data_set`."""
    runs = []
    for folder in folders:
        with open(os.path.join(folder, "runs.json"), encoding="utf-8") as f:
            runs.append(json.load(f))
    return merge(runs)


def merge(runs):
    """Lists of rows as one: a (defence, seed) found again in a later list replaces
    the earlier row; rows keep the order in which they were first found."""
    merged = {}
    for rows in runs:
        for row in rows:
            merged[(row["defence"], row["seed"])] = row
    return list(merged.values())


def one_data_set(rows):
    """The data set all `rows` ran on; runs on different data sets are refused."""
    data = {row["data"] for row in rows}
    if len(data) > 1:
        raise ValueError(f"Cannot merge runs on different data sets: {sorted(data)}.")
    return data.pop() if data else None


def mean(values):
    """The mean of the values that are not None, or None when there are none."""
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None
