#!/usr/bin/env bash
# The prepared device check (issue 14): one script, one table, ≤ 8 minutes on one GPU.
#
#   bash benchmarks/device_check.sh            # on the GPU machine (needs `make setup`)
#   bash benchmarks/device_check.sh --dry-run  # tiny sizes, every code path, any machine
#
# Prints the measurement table of `python -m benchmarks.device_check` (AdaMixup and the
# tf.data op vs plain fit, float32 and mixed_bfloat16; 8 shadows together vs
# one after another; the default audit on 10k + 10k; the recommended setting's whole fit,
# budget 2, vs a plain fit of the CNN), then runs the
# accelerator-relevant tests (`pytest -m gpu`: XLA mixing, tiny α, mixed
# precision, distribution over the visible devices) unless --dry-run (the test
# suite already runs them on the CPU). Results: $OUT/device_check.json when
# OUT is set, else ./device_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
DRY=""
if [ "${1:-}" = "--dry-run" ]; then
  DRY="--dry-run"
  # On the CPU, TF 2.21's oneDNN kernels corrupt memory on some batch shapes
  # (the CNN with batch norm, non-XLA, a last batch of 1 or 15 examples:
  # "double free or corruption"; cf. tensorflow/tensorflow#117700, #123109).
  export TF_ENABLE_ONEDNN_OPTS=0
fi
OUT_DIR="${OUT:-.}"
mkdir -p "$OUT_DIR"
start=$(date +%s)
# A full run means nothing without a GPU that TensorFlow sees: say so and stop (exit 3).
# (2026-12-04: the lent H200 image had no TensorFlow and CUDA 13 only; TF 2.21 needs
# its CUDA 12 wheels, `pip install "tensorflow[and-cuda]"`, several GB.)
if ! "$PY" -c "import tensorflow as tf; gpus = tf.config.list_physical_devices('GPU'); print('visible GPUs:', gpus); raise SystemExit(0 if gpus or '$DRY' else 3)"; then
  if [ -n "$DRY" ]; then
    echo "device check: TensorFlow does not import with $PY; run 'make setup' first" >&2
  else
    echo "device check: TensorFlow is missing or sees no GPU with $PY; install TensorFlow" \
         "with CUDA (pip install 'tensorflow[and-cuda]'), or use --dry-run" >&2
  fi
  exit 3
fi
"$PY" -m benchmarks.device_check $DRY --out "$OUT_DIR/device_check.json"
if [ -z "$DRY" ]; then
  "$PY" -m pytest -q -m gpu tests
fi
echo "device check: $(( $(date +%s) - start )) s in all"
