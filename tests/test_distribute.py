"""tf.distribute: MirroredStrategy on two logical CPUs, MultiWorkerMirroredStrategy on loopback.

Each case runs in a fresh Python process (logical devices and TF_CONFIG must
be set before TensorFlow starts) and reports a JSON line.
"""

import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import subprocess_result as result_of

SCRIPTS = pathlib.Path(__file__).resolve().parent / "scripts"


def run_mirrored(mode):
    proc = subprocess.run([sys.executable, str(SCRIPTS / "mirrored.py"), mode],
                          capture_output=True, text=True, timeout=300, check=False)
    return result_of(proc)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["train_step", "tf_data_op"])
def test_mirrored_strategy_two_replicas(mode):
    r = run_mirrored(mode)
    assert r["replicas"] == 2
    steps = r["steps_per_epoch"] * r["epochs"]
    # One schedule position per global step, the same on every replica.
    assert r["mixup_step"] == [steps, steps]
    assert r["strength"][0] == r["strength"][1]
    # Linear 0.4 → 0 over the planned steps: the last step of epoch k.
    expected = [0.4 * (1 - (r["steps_per_epoch"] * (k + 1) - 1) / steps) for k in range(3)]
    np.testing.assert_allclose(r["mixup_strength_log"], expected, atol=1e-5)
    assert all(np.isfinite(r["loss"])) and r["loss"][-1] < r["loss"][0]
    assert r["accuracy"] > 0.5
    if mode == "train_step":  # the audit predicts through the strategy
        assert r["audit_predict_rows"] == 300 and r["audit_predict_max_diff"] < 1e-4


def test_mirrored_strategy_with_privacy_target():
    r = run_mirrored("controller")
    assert r["replicas"] == 2
    assert r["controller_strength"][0] == r["controller_strength"][1]
    assert r["controller_strength"][0] == pytest.approx(r["controller_log"][-1], abs=1e-6)
    assert r["mixup_step"][0] == r["mixup_step"][1]


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_two_workers(kind):
    ports = [str(p) for p in free_ports(2)]
    procs = [subprocess.Popen([sys.executable, str(SCRIPTS / "multi_worker.py"), *ports,
                               str(i), kind], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"multi-worker job ({kind}) did not finish in 180 s")
        outs.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return outs


def test_multi_worker_mirrored_strategy_on_loopback():
    """Two worker processes on 127.0.0.1; fit, validation and evaluate.

    Keras 3.15's own `fit` fails under MultiWorkerMirroredStrategy for plain
    models (keras-team/keras#20585); AdaMixupModel works around it.
    """
    workers = [result_of(p) for p in run_two_workers("adamixup")]
    assert [w["replicas"] for w in workers] == [2, 2]
    steps = 2 * (512 // 64)  # epochs × global steps per epoch
    assert workers[0]["mixup_step"] == workers[1]["mixup_step"] == steps
    expected = [0.4 * (1 - (8 * (k + 1) - 1) / steps) for k in range(2)]
    for w in workers:
        np.testing.assert_allclose(w["mixup_strength_log"], expected, atol=1e-5)
        assert np.isfinite(w["val_loss"]).all() and np.isfinite(w["evaluate_loss"])
    # Both workers hold the same model after synchronous training.
    assert workers[0]["kernel_sum"] == pytest.approx(workers[1]["kernel_sum"], rel=1e-6)
    assert workers[0]["loss"] == pytest.approx(workers[1]["loss"])
