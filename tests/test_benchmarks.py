import importlib.util
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_overhead_summary_on_synthetic_timings():
    overhead = load("overhead")
    table = overhead.summarize({
        "plain": [2.0, 2.2, 1.9, 2.1, 5.0],          # one noisy outlier: the median ignores it
        "adamixup_model": [2.1, 2.05, 2.15],
        "keras_mixup": [1.8, 1.9, 2.0, 2.2],
    })
    assert table["plain"]["median_s"] == pytest.approx(2.1)
    assert table["plain"]["ratio"] == pytest.approx(1.0)
    assert table["adamixup_model"]["ratio"] == pytest.approx(2.1 / 2.1)
    assert table["keras_mixup"]["ratio"] == pytest.approx(1.95 / 2.1)
    assert table["plain"]["max_s"] == 5.0 and table["keras_mixup"]["epochs"] == 4
    with pytest.raises(ValueError, match="baseline"):
        overhead.summarize({"adamixup_model": [1.0]})
    with pytest.raises(ValueError, match="No timings for 'x'"):
        overhead.summarize({"plain": [1.0], "x": []})


def test_overhead_quick_run(tmp_path, capsys):
    overhead = load("overhead")
    out = tmp_path / "overhead.json"
    assert overhead.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["summary"]) == set(overhead.VARIANTS)
    for row in result["summary"].values():
        assert row["median_s"] > 0 and row["ratio"] > 0
    assert "ratio" in capsys.readouterr().out


def test_audit_time_skips_without_mnist(tmp_path, capsys):
    audit_time = load("audit_time")
    assert audit_time.main(["--mnist", str(tmp_path / "none.npz")]) == 0
    assert "skipped" in capsys.readouterr().out
