#!/usr/bin/env bash
# Sets everything up, then runs the main job: the first end-to-end run of TinyFormer-JAX with
# the `cpu` budget of configs/hybrid_cifar10_320kb.py (about 15 minutes on 2 CPU cores):
# CIFAR-10 -> float training -> BatchNorm folding, calibration, QAT -> QDQ ONNX export ->
# SparseEngine C for the STM32F746, verified on the host and on a Cortex-M7 in QEMU -> int8
# accuracy on all 10,000 test images. Rerunning resumes from the newest checkpoint.
# Extra flags go to launch/run_hybrid.py (e.g. --data_dir=DIR, --workdir=DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python launch/run_hybrid.py --config=configs/hybrid_cifar10_320kb.py:cpu --workdir=build/main "$@"
