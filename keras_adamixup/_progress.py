"""Progress bars: tqdm when it is installed, nothing otherwise. One helper for the package.

Example:

```python
with Bar(total=len(tasks), desc="LiRA shadow models", unit="model") as bar:
    for task in tasks:
        run(task)
        bar.update(task.name)
```
"""


class Bar:
    """A tqdm bar of `total` steps, or a no-op (disabled, nothing to do, no tqdm).

    Args:
        total: the number of steps.
        desc, unit: as in tqdm.
        enabled: `False` makes a no-op bar.
    """

    def __init__(self, total, desc, unit, enabled=True):
        self._bar = None
        if not enabled or not total:  # nothing to wait for: no bar
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, desc=desc, unit=unit)

    def update(self, label=None):
        """One step done; `label` is shown beside the bar."""
        if self._bar is not None:
            if label:
                self._bar.set_postfix_str(label, refresh=False)
            self._bar.update(1)

    def close(self):
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
