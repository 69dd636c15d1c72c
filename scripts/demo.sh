#!/usr/bin/env bash
# The demo command: builds the environment once, then runs scripts/demo.py (see --help).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/paths.sh"
bash "$repo/scripts/bootstrap.sh" >/dev/null
cd "$repo"  # run as a module of the repository, so it imports devtools like any package
exec "$INSTAFLOW_PYTHON" -m scripts.demo "$@"
