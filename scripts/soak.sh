#!/usr/bin/env bash
# The soak (docs/faults.md): MINUTES (default 20) of stores and retrieves through the zstor
# daemon on zdb hosts in network namespaces while faults come and go, then a full
# verification and a summary. Needs root. Usage: scripts/soak.sh [MINUTES] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja >/dev/null
ninja -C build
args=(--build build --minutes "${1:-20}")
if [ -n "${2:-}" ]; then args+=(--seed "$2"); fi
exec python3 tests/faults/soak.py "${args[@]}"
