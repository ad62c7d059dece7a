#!/usr/bin/env bash
# Sets everything up, then runs the main job. Until the JAX half lands this is the bundled
# example: a MobileNetV2-style CNN with one attention block, quantized to QDQ int8 by
# onnxruntime, compiled to C and verified on the host and on a Cortex-M7 in QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/hybrid_example.py --out build/example/hybrid_qdq.onnx
exec .venv/bin/python -m sparse_engine compile build/example/hybrid_qdq.onnx --out build/example/c \
    --target cortex-m7 --verify --input build/example/inputs.npy
