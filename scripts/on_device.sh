#!/usr/bin/env bash
# On a lent GPU machine: install the carried .devkit wheels, unpack CIFAR-10, restore a carried
# workdir (.devkit/workdir.tar*), run one launch script, then pack the workdir (newest checkpoint
# of each stage only) and the log into $OUT for the next command to carry back.
#   bash scripts/on_device.sh WORKDIR launch/train_supernet.py --config=... --workdir=WORKDIR --time_limit=540
#   bash scripts/on_device.sh - -m tinyformer_jax.bench candidates --cpu-devices 0 --out "$OUT/c.json"  (no workdir)
# Both steps are skipped when already done, so a warm machine's second command starts at once.
# $PYTHON: the interpreter (default python3, the device's). Exit status: the launch script's
# (75: stopped by --time_limit; rerun to resume).
set -uo pipefail
cd "$(dirname "$0")/.."
workdir="$1"; shift
py="${PYTHON:-python3}"
out="${OUT:-build/device_out}"
mkdir -p "$out"
kit="$(ls .devkit/wheels)"
if [ "$(cat /tmp/tinyformer_site/.done 2>/dev/null)" != "$kit" ]; then
    rm -rf /tmp/tinyformer_site
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/tinyformer_site \
        .devkit/wheels/*.whl || { echo "on_device: installing .devkit/wheels failed" >&2; exit 1; }
    echo "$kit" > /tmp/tinyformer_site/.done
fi
if [ ! -f /tmp/tinyformer_cifar10/test.npz ]; then
    mkdir -p /tmp/tinyformer_cifar10 && xz -dc .devkit/cifar10.tar.xz | tar -C /tmp/tinyformer_cifar10 -xf - \
        || { echo "on_device: unpacking .devkit/cifar10.tar.xz failed" >&2; exit 1; }
fi
if [ "$workdir" != "-" ] && [ ! -d "$workdir" ] && compgen -G ".devkit/workdir.tar*" >/dev/null; then
    mkdir -p "$workdir" && cat .devkit/workdir.tar* | tar -C "$workdir" -xf - \
        || { echo "on_device: unpacking .devkit/workdir.tar* into $workdir failed" >&2; exit 1; }
fi
export PYTHONPATH="/tmp/tinyformer_site:$PWD${PYTHONPATH:+:$PYTHONPATH}" TINYFORMER_DATA=/tmp/tinyformer_cifar10
export PYTHONUNBUFFERED=1
"$py" -c "import sys, jax, flax
print('on_device: python', sys.version.split()[0], 'jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
"$py" "$@" 2>&1 | tee "$out/log.txt"
status=${PIPESTATUS[0]}
if [ "$workdir" != "-" ] && [ -d "$workdir" ]; then
    "$py" scripts/pack_workdir.py "$workdir" "$out" || status=1
fi
exit "$status"
