#!/usr/bin/env bash
# Fresh Debian 12 -> everything the project needs: Debian packages (cross gcc, newlib, QEMU, llvm)
# when missing, a virtual environment in .venv, and the package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi binutils-arm-none-eabi)
dpkg -s libnewlib-arm-none-eabi >/dev/null 2>&1 || need+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
command -v llvm-mca >/dev/null || command -v llvm-mca-15 >/dev/null || need+=(llvm)  # M7 cycle model
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing Debian packages: ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,jax]"
echo "setup: ready ($(.venv/bin/python --version), $(arm-none-eabi-gcc --version | head -1), $(qemu-system-arm --version | head -1))"
