#!/usr/bin/env bash
# Rehearses the GPU lease recipe (docs/decisions.md D36) without a GPU, so that a lent machine's 30 minutes
# are not spent on a kit that does not import. A Python 3.12 virtual environment (.devsim/,
# git-ignored) holds what the device image holds at its versions (jax 0.11.2, numpy 2.5.2, onnx
# 1.23.1, onnxruntime 1.30.0, ...; KINDS.md's pip list) on CPU, and nothing of the JAX half's own
# packages: those come from .devkit as on the device. The smoke pipeline then runs split between
# the two as the real run would be: SuperNAS here, the supernet "there", SparseNAS here, pruning
# and QAT "there", deployment here, the workdir travelling as packed parts each time.
#   bash scripts/device_rehearsal.sh            (needs network for pip and a python3.12;
#                                                DEVSIM_PYTHON=/path/to/python3.12 to choose one)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
py312="${DEVSIM_PYTHON:-}"
if [ -z "$py312" ]; then
    for cand in python3.12 "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)"; do
        if [ -n "$cand" ] && "$cand" --version >/dev/null 2>&1; then py312="$cand"; break; fi
    done
fi
[ -n "$py312" ] || { echo "device_rehearsal: no python3.12 found (set DEVSIM_PYTHON)" >&2; exit 1; }
if [ ! -f .devsim/.done ]; then
    rm -rf .devsim
    "$py312" -m venv .devsim
    .devsim/bin/pip install -q "jax==0.11.2" "jaxlib==0.11.2" "numpy==2.5.2" "onnx==1.23.1" "onnxruntime==1.30.0" \
        "onnx-ir==1.0.0" "onnxscript==0.7.2" absl-py chex etils jinja2 matplotlib pillow tqdm tensorstore msgpack \
        pyyaml rich treescope humanize simplejson aiofiles protobuf psutil uvloop prometheus-client \
        typing-extensions packaging
    touch .devsim/.done
fi
bash scripts/device_kit.sh

work=build/rehearsal
here="$work/here"
dev="$work/device"
cfg=configs/tinyformer_cifar10_320kb.py:smoke
rm -rf "$work" && mkdir -p "$work"
saved="$work/saved_kit_workdir"
mkdir -p "$saved"
if compgen -G ".devkit/workdir.tar*" >/dev/null; then mv .devkit/workdir.tar* "$saved"/; fi
trap 'rm -f .devkit/workdir.tar*; if compgen -G "$saved/workdir.tar*" >/dev/null; then mv "$saved"/workdir.tar* .devkit/; fi' EXIT

on_here() {  # one launch here (Python 3.11, CI's versions, the Arm toolchain)
    if [ -n "${1:-}" ]; then echo "== here: --stop_after=$1"; else echo "== here: to the end"; fi
    .venv/bin/python launch/tinyformer.py --config="$cfg" --workdir="$here" ${1:+--stop_after=$1}
}
on_device() {  # the workdir packed, carried to a fresh "device", run there, packed and carried back
    echo "== device (simulated): --stop_after=$1"
    .venv/bin/python scripts/pack_workdir.py "$here" "$work/to_device"
    cat "$work"/to_device/workdir.tar.* > .devkit/workdir.tar
    rm -rf "$dev" "$work/from_device" /tmp/tinyformer_site
    # the device has no Arm toolchain or QEMU: a stage there that builds firmware must fail here too
    PYTHON=.devsim/bin/python OUT="$work/from_device" SPARSE_ENGINE_ARM_PREFIX=/no-arm-toolchain/arm-none-eabi- \
        SPARSE_ENGINE_QEMU=/no-qemu/qemu-system-arm bash scripts/on_device.sh "$dev" launch/tinyformer.py --config="$cfg" --workdir="$dev" --stop_after="$1"
    rm -rf "$here" && mkdir -p "$here"
    cat "$work"/from_device/workdir.tar.* | tar -C "$here" -xf -
}

t0=$(date +%s)
on_here supernas
on_device supernet
on_here sparsenas
on_device qat
on_here
echo "device_rehearsal: done in $(( $(date +%s) - t0 )) s; summary: $here/summary.json"
