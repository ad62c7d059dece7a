#!/usr/bin/env bash
# Packs into .devkit/ (git-ignored) what a lent GPU machine lacks: it has Python 3.12 with jax,
# flax, optax, orbax and onnx, no network and no Arm toolchain, and takes at most 64 MiB of files
# per command. The kit holds the pure-Python wheels of this project's JAX half at the versions in
# .venv (so the device runs what CI tests) and CIFAR-10 as one xz archive (18 MB instead of 55 MB,
# leaving room for a carried workdir). Use on the device: scripts/on_device.sh; recipe: docs/decisions.md D36.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
data="${TINYFORMER_DATA:-../shared/data/cifar10}"
for f in train.npz test.npz; do
    if [ ! -f "$data/$f" ]; then
        echo "device_kit: $data/$f not found (set TINYFORMER_DATA to the CIFAR-10 folder)" >&2
        exit 1
    fi
done
rm -rf .devkit.tmp && mkdir -p .devkit.tmp/wheels
# The device's jax is 0.11.2: flax up to 0.12.8 (CI's) fails to import with it (jax.experimental.hijax
# lacks HiPrimitive) and 0.12.12 needs jax >= 0.11.1, so the device gets its own flax. Checked with
# scripts/device_rehearsal.sh (Python 3.12, jax 0.11.2 on CPU): training, resume across versions, bench.
device_flax=0.12.12
for pkg in ml_collections jax2onnx tensorboardX flax optax orbax-checkpoint; do
    version=$(.venv/bin/python -m pip show "$pkg" | awk '/^Version:/{print $2}')
    [ "$pkg" = flax ] && version=$device_flax
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 -d .devkit.tmp/wheels "$pkg==$version"
done
tar -C "$data" -cf - train.npz test.npz | xz -6 -T0 > .devkit.tmp/cifar10.tar.xz
rm -rf .devkit && mv .devkit.tmp .devkit
echo "device_kit: $(ls .devkit/wheels | wc -l) wheels, $(du -sh .devkit | cut -f1) in .devkit (carry \".devkit\")"
