#!/usr/bin/env bash
# The test command: builds the environment once (scripts/bootstrap.sh), then runs pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k equivalence`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/paths.sh"
bash "$repo/scripts/bootstrap.sh"
cd "$repo"
exec "$INSTAFLOW_PYTHON" -m pytest tests "$@"
