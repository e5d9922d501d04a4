"""The documentation: the guide's snippets run, the site's structure holds,
every public name is documented, and the results page is current.

- Every ```python block of each guide page runs (`snippets.py`), page by page;
  pages whose blocks run the audit's shadows are marked slow.
- Every guide page is in mkdocs.yml's navigation, and every public name (the
  `__all__` of each public module) has a docstring with ``Args:`` (when it
  takes arguments) and an ``Example:``, and appears in the API reference.
- docs/results.md and README's results block are what
  `python -m benchmarks.render_results` renders from `benchmarks/results/`.
- Every option the command-line page names exists.

`make docs` (mkdocs --strict) is run by CI, not here.
"""

import importlib
import inspect
import pathlib
import re
import subprocess
import sys

import pytest

from tests import snippets

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide"
PAGES = sorted(GUIDE.glob("*.md"))
# pages whose snippets train shadows for an audit: slow
SLOW_PAGES = {"audit.md"}

PUBLIC_MODULES = (
    "keras_adamixup", "keras_adamixup.schedules", "keras_adamixup.mixing",
    "keras_adamixup.monitor", "keras_adamixup.duplicates", "keras_adamixup.losses",
    "keras_adamixup.metrics", "keras_adamixup.recommended", "keras_adamixup.experiment",
    "keras_adamixup.recipes",
    "keras_adamixup.audit", "keras_adamixup.audit.canaries", "keras_adamixup.audit.epsilon",
    "keras_adamixup.audit.data", "keras_adamixup.audit.saved_model",
)


def _page_params():
    for page in PAGES:
        marks = [pytest.mark.slow] if page.name in SLOW_PAGES else []
        yield pytest.param(page, marks=marks, id=page.stem)


@pytest.mark.parametrize("page", list(_page_params()))
def test_guide_snippets_run(page, digits, tmp_path, monkeypatch):
    blocks = snippets.blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no Python block")
    snippets.run(blocks, digits, tmp_path, monkeypatch, source=str(page.relative_to(ROOT)))


def test_every_guide_page_is_in_the_site_and_starts_with_an_example():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"guide/{page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"
        text = page.read_text(encoding="utf-8")
        first_block = re.search(r"^```", text, flags=re.M)
        first_section = re.search(r"^## ", text, flags=re.M)
        assert first_block, f"{page.name} has no example"
        assert first_section is None or first_block.start() < first_section.start(), \
            f"{page.name} does not start with an example"


def _public_objects():
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), f"{name} has no __all__"
        for attr in module.__all__:
            obj = getattr(module, attr)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and \
                    obj.__module__.startswith("keras_adamixup"):
                yield name, attr, obj


def test_every_public_name_has_args_and_an_example():
    missing = []
    for module, attr, obj in _public_objects():
        doc = inspect.getdoc(obj) or ""
        target = obj.__init__ if inspect.isclass(obj) else obj
        try:
            params = [p for p in inspect.signature(target).parameters
                      if p not in ("self", "args", "kwargs")]
        except (TypeError, ValueError):
            params = []
        lacks = [what for what, ok in (("Example:", "Example:" in doc),
                                       ("Args:", not params or "Args:" in doc
                                        or "Attributes:" in doc)) if not ok]
        if lacks:
            missing.append(f"{module}.{attr}: no {' / '.join(lacks)}")
    assert not missing, "\n".join(missing)


def test_every_public_name_is_in_the_api_reference():
    reference = "\n".join(p.read_text(encoding="utf-8")
                          for p in (ROOT / "docs" / "reference").glob("*.md"))
    shown = set(re.findall(r"^::: ([\w.]+)", reference, flags=re.M))
    rendered = set()  # the objects the reference renders: named, or members of a module named
    for path in shown:
        try:
            rendered.add(id(importlib.import_module(path)))
            continue
        except ImportError:
            pass
        parent, _, attr = path.rpartition(".")
        rendered.add(id(getattr(importlib.import_module(parent), attr)))

    def covered(module, obj):
        return (id(obj) in rendered or id(sys.modules[obj.__module__]) in rendered
                or (module != "keras_adamixup"
                    and id(importlib.import_module(module)) in rendered))

    absent = [f"{module}.{attr}" for module, attr, obj in _public_objects()
              if not covered(module, obj)]
    assert not absent, "not in docs/reference/: " + ", ".join(absent)


def test_results_page_is_current():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.render_results", "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_results_page_notices_a_changed_result(tmp_path, monkeypatch):
    from benchmarks import render_results
    results = render_results.load()
    assert results, "no result files in benchmarks/results/"
    assert render_results.stale(results) == []
    key = next(k for k in results if k[0] == "canary_audit")
    results[key]["rows"][0]["test_accuracy"] += 0.1
    assert "docs/results.md" in render_results.stale(results)


def test_cli_page_names_only_real_options():
    import keras_adamixup_cli

    parser = keras_adamixup_cli.build_parser()
    known = {"--help", "--traceback"}
    for action in parser._subparsers._group_actions[0].choices.values():
        known |= {o for a in action._actions for o in a.option_strings}
    text = (GUIDE / "cli.md").read_text(encoding="utf-8")
    text = re.sub(r"#[^\n]*", "", text)  # comments: other programs' options (sbatch)
    named = set(re.findall(r"(--[a-z][a-z-]+)", text))
    assert named - known == set(), f"docs/guide/cli.md names unknown options {named - known}"


def test_duplicate_lines_pool_the_seeds_and_test_the_difference():
    from benchmarks import render_results

    def row(seed, dup, single):  # (found, in) per kind
        return {"defence": "none", "seed": seed, "kinds": {
            "duplicate": {"tpr": dup[0] / dup[1], "in": dup[1]},
            "mislabelled": {"tpr": single[0] / single[1], "in": single[1]}}}

    same = render_results.duplicate_lines([row(0, (5, 25), (5, 25)), row(1, (6, 25), (4, 25))])
    assert same == ["- none (2 seeds): duplicated 11/50 (22%), single 9/50 (18%); p = 0.80"]
    apart = render_results.duplicate_lines([row(0, (24, 25), (3, 25)), row(1, (23, 25), (2, 25))])
    assert apart[0].endswith("p = 0.00")
    # near-copy kinds planted side by side: a line and a canary-table column each
    kinds = row(0, (5, 25), (5, 25))
    kinds["kinds"]["duplicate:shift"] = {"tpr": 0.8, "in": 10, "auc": 0.9, "tpr_ci": [0.4, 1.0],
                                         "epsilon_one_run": 0.5}
    lines = render_results.duplicate_lines([kinds])  # per kind only: the pooled entry's
    assert len(lines) == 1  # bar (all kinds' out-units) is higher
    assert lines[0] == "- none (1 seed): duplicated (shift) 8/10 (80%), single 5/25 (20%); " \
        f"p = {__import__('scipy').stats.fisher_exact([[8, 2], [5, 20]])[1]:.2f}"
    assert render_results._kinds_of([kinds]) == ["mislabelled", "duplicate", "duplicate:shift"]


DOCTESTED = sorted(p for p in (ROOT / "keras_adamixup").rglob("*.py")
                   if ">>> " in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", DOCTESTED, ids=lambda p: p.stem)
def test_docstring_examples_run_as_written(path, tmp_path, monkeypatch):
    """The ``>>>`` examples of the package's docstrings give what they show (one of
    CosineDecay's showed 0.2... where the code gives 0.19999998...)."""
    import doctest

    monkeypatch.chdir(tmp_path)  # examples that write a file write it here
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, name
