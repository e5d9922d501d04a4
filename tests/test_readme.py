"""Every ```python snippet of the README runs, as a user would copy it (`snippets.py`).

The audit snippet runs LiRA and TF Privacy's attacks: marked slow. The guide
pages' snippets are `test_docs.py`'s.
"""

import pathlib

import pytest

from tests import snippets

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = snippets.blocks(README)


def test_readme_training_snippet_runs_and_learns(digits, tmp_path, monkeypatch):
    blocks = [b for b in BLOCKS if not snippets.is_audit(b)]
    assert len(blocks) == 1, "README keeps the recommended setting as one block"
    ns = snippets.run(blocks, digits, tmp_path, monkeypatch)
    assert (tmp_path / "serving.keras").exists()
    assert "monitor_auc" in ns["history"].history
    assert ns["model"].holdout_callbacks[1].best_epoch is not None  # the checkpoint kept one


@pytest.mark.slow
def test_readme_audit_snippet_runs(digits, tmp_path, monkeypatch):
    blocks = [b for b in BLOCKS if snippets.is_audit(b)]
    ns = snippets.run(BLOCKS[:1] + blocks, digits, tmp_path, monkeypatch)
    attacks = {r["attack"] for r in ns["report"].attacks}
    assert {"lira_online", "rmia_online", "lira_online_plain", "rmia_online_plain"} <= attacks
    assert (tmp_path / "audit_out" / "report.md").exists()


def test_readme_is_short_and_says_what_to_run_first():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README has {len(lines)} lines; the guide is in docs/"
    first_screen = "\n".join(lines[:60])
    assert "make demo" in first_screen and "make test" in first_screen
    assert "recommended" in first_screen
