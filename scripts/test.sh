#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (2 workers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n 2 --dist worksteal -q "$@"
