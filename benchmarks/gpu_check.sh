#!/usr/bin/env bash
# The prepared GPU check (issue 22): on a machine with CUDA, in under 5 minutes,
#   1. the service tests (tests/backend) with DEVICE=cuda, on the venv's onnxruntime-gpu,
#   2. the serving benchmark, short (serve_latency.py --wrk --device cuda: 32 clients against the bare floor),
#   3. a short training run: infogan train mnist --device cuda --max-steps 200,
# printing PASS/FAIL with figures for each step; exit 0 only if every step passed.
# Without CUDA it stops at once with one line and exit 1.
#
#   benchmarks/gpu_check.sh            (or: make gpu-check)
#   PY=path/to/python MNIST_DIR=folder/with/the/IDX/files benchmarks/gpu_check.sh
# MNIST_DIR defaults to shared/data/mnist, ../shared/data/mnist or ../../shared/data/mnist (the first that exists);
# with none (or MNIST_DIR=generated), a tiny generated IDX set (random pixels, MD5 check off) stands in: step 3
# checks that training runs on the GPU, not what it learns. Dry run without a GPU (tests this script):
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_STEPS=5 MNIST_DIR=generated benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=${PY:-.venv/bin/python}
# GPU_CHECK_DEVICE=cpu: a dry run of the same steps on the CPU (no CUDA gate), to test this script without a GPU
DEV=${GPU_CHECK_DEVICE:-cuda}
STEPS=${GPU_CHECK_STEPS:-200}  # training steps of step 3
T0=$SECONDS
fail_all() { echo "gpu_check: FAIL: $*"; exit 1; }
[ -x "$PY" ] || fail_all "no $PY (run make install first)"

# CUDA usable by both torch (training) and ONNX Runtime (the service), else one line and out
[ "$DEV" = cuda ] || echo "gpu_check: dry run on $DEV (GPU_CHECK_DEVICE): nothing here is verified on a GPU"
[ "$DEV" != cuda ] || why=$("$PY" - 2>&1 <<'PYEOF'
import sys
from pathlib import Path

from backend.core.cuda_probe import nvidia_present, probe_cuda

if not nvidia_present():
    sys.exit("no NVIDIA GPU (no /dev/nvidia0, no nvidia-smi)")
import torch

if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device")
model = next(iter(sorted(Path("models").glob("*/generator.onnx"))), None)
ok, reason = probe_cuda(model)
if not ok:
    sys.exit(f"ONNX Runtime cannot run on CUDA: {reason}")
print(torch.cuda.get_device_name(0))
PYEOF
) || fail_all "no CUDA on this machine: $(echo "$why" | tail -1)"
[ "$DEV" != cuda ] || echo "gpu_check: CUDA device: $why"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
status=0
report() {  # step name, exit code, figures
    if [ "$2" -eq 0 ]; then echo "gpu_check: PASS $1: $3"; else echo "gpu_check: FAIL $1 (exit $2): $3"; status=1; fi
}

# 1. service tests on CUDA
t=$SECONDS
DEVICE=$DEV timeout 150 "$PY" -m pytest -q -x -p no:cacheprovider tests/backend >"$WORK/tests.log" 2>&1
rc=$?
report "service tests (DEVICE=$DEV, tests/backend)" $rc \
    "$(grep -E '[0-9]+ (passed|failed|error)' "$WORK/tests.log" | tail -1) [$((SECONDS - t)) s]"
[ $rc -eq 0 ] || tail -20 "$WORK/tests.log"

# 2. serving benchmark on CUDA, short: passes when every request succeeded and the models were served on cuda
t=$SECONDS
timeout 120 "$PY" benchmarks/serve_latency.py --wrk --device "$DEV" --model mnist --seconds 5 --wrk-runs 1 \
    --requests 100 >"$WORK/bench.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && ! grep -q "served on $DEV" "$WORK/bench.log"; then rc=2; fi
report "serving benchmark (DEVICE=$DEV)" $rc "$(grep -E 'served on|sequential p50|ceiling|clients: service' \
    "$WORK/bench.log" | sed 's/^ *//' | paste -sd'|' | sed 's/|/; /g') [$((SECONDS - t)) s]"
[ $rc -eq 0 ] || tail -20 "$WORK/bench.log"

# 3. short training run on CUDA
data=${MNIST_DIR:-}  # MNIST_DIR=generated: the tiny generated set even where MNIST is at hand
[ "$data" = generated ] && data=none
for d in shared/data/mnist ../shared/data/mnist ../../shared/data/mnist; do
    if [ -z "$data" ] && [ -e "$d/train-images-idx3-ubyte.gz" ]; then data=$d; fi
done
extra=()
if [ -z "$data" ] || [ "$data" = none ]; then
    data="$WORK/mnist"
    "$PY" - "$data" <<'PYEOF'
import gzip
import struct
import sys
from pathlib import Path

import numpy as np

root = Path(sys.argv[1])
root.mkdir(parents=True)
rng = np.random.default_rng(0)
for split, n in (("train", 2048), ("t10k", 512)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    head = struct.pack(">IIII", 2051, n, 28, 28)
    (root / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + images.tobytes()))
    (root / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">II", 2049, n) + labels.tobytes()))
PYEOF
    extra=(--set data.verify=false --set data.download=false)
    echo "gpu_check: no MNIST files found: training on a tiny generated set ($data)"
fi
t=$SECONDS
timeout 150 "$PY" -m training.cli train mnist --device "$DEV" --max-steps "$STEPS" --data-dir "$data" \
    --runs-dir "$WORK/runs" --no-progress "${extra[@]}" >"$WORK/train.log" 2>&1
rc=$?
ckpt=$(find "$WORK/runs" -name checkpoint.pt 2>/dev/null | head -1)
# passes when it exits 0, wrote its checkpoint and says it trained on $DEV
if [ $rc -eq 0 ] && { [ -z "$ckpt" ] || ! grep -q "device $DEV" "$WORK/train.log"; }; then rc=2; fi
report "training (infogan train mnist --device $DEV --max-steps $STEPS)" $rc \
    "$(grep -o "device $DEV; precision [^;]*" "$WORK/train.log" | head -1); $STEPS steps and the checkpoint \
$([ -n "$ckpt" ] && echo written || echo missing) in $((SECONDS - t)) s (start-up included)"
[ $rc -eq 0 ] || tail -20 "$WORK/train.log"

echo "gpu_check: $([ $status -eq 0 ] && echo PASS || echo FAIL) overall in $((SECONDS - T0)) s"
exit $status
