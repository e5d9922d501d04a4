import pathlib
import runpy
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_quickstart_quick(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["quickstart.py", "--quick"])
    namespace = runpy.run_path(str(ROOT / "examples" / "quickstart.py"))
    plain, defended = namespace["main"](["--quick"])
    out = capsys.readouterr().out
    assert "undefended" in out and "AdaMixup" in out
    assert 0.5 < plain["test_acc"] <= 1.0 and 0.5 < defended["test_acc"] <= 1.0
    strengths = defended["history"]["mixup_strength"]
    assert len(strengths) == 5 and strengths[0] > strengths[-1]
