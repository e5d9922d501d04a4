"""A training job killed mid-way resumes with BackupAndRestore exactly where it stopped."""

import json
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import subprocess_result as result_of

SCRIPT = pathlib.Path(__file__).resolve().parent / "scripts" / "resume.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=False)


def test_killed_job_resumes_with_same_schedule_controller_and_mixing_stream(tmp_path):
    reference = result_of(run(tmp_path / "ref", 5))
    killed = run(tmp_path / "job", 5, 2)  # dies right after epoch 2 (0-based)
    assert killed.returncode == 17 and "RESULT" not in killed.stdout
    resumed = result_of(run(tmp_path / "job", 5))
    assert resumed["epochs_run_here"] == [3, 4]  # not from scratch
    assert reference["epochs_run_here"] == [0, 1, 2, 3, 4]
    # Same schedule position, controller state and mixing stream → same model.
    assert resumed["mixup_step"] == reference["mixup_step"]
    assert resumed["seed_state"] == reference["seed_state"]
    assert resumed["controller"] == pytest.approx(reference["controller"], rel=1e-6, nan_ok=True)
    assert resumed["controller"]["controller_updates"] == 5
    assert resumed["weights"] == pytest.approx(reference["weights"], rel=1e-5)


def test_interrupted_report_write_leaves_the_old_file_whole(tmp_path):
    from keras_adamixup import _io

    path = tmp_path / "report.json"
    _io.write_text(path, '{"complete": true}')
    with pytest.raises(KeyboardInterrupt):
        with _io.atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write('{"half": ')  # interrupted mid-write
            raise KeyboardInterrupt
    assert json.loads(path.read_text()) == {"complete": True}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left
