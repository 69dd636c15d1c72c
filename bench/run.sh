#!/usr/bin/env bash
# The benchmark command: builds the environment once, then runs bench/run_benchmark.py (see --help).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/paths.sh"
bash "$repo/scripts/bootstrap.sh" >/dev/null
cd "$repo"  # the benchmark runs as a module of the repository, so it imports devtools like any package
exec "$INSTAFLOW_PYTHON" -m bench.run_benchmark "$@"
