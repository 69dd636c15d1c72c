#!/usr/bin/env bash
# The benchmark command: builds the environment once, then runs bench/run_benchmark.py (see --help).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/paths.sh"
bash "$repo/scripts/bootstrap.sh" >/dev/null
exec "$INSTAFLOW_PYTHON" "$repo/bench/run_benchmark.py" "$@"
