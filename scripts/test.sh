#!/usr/bin/env bash
# The test command: builds the environment once (scripts/bootstrap.sh), then runs pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k equivalence`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/paths.sh"
bash "$repo/scripts/bootstrap.sh"
cd "$repo"
# glibc's allocator keeps freed memory for reuse, so a server that freed its models, or a test process
# that dropped a reference model, stayed large for the rest of the run. Allocations of 256 KiB and more
# (every weight and activation) get their own mapping, returned to the system when freed, and two arenas
# instead of one per thread. Measured on tests/test_weight_delta.py alone: peak 17.44 -> 16.25 GiB, no slower.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-262144}" \
  MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-262144}"
exec "$INSTAFLOW_PYTHON" -m pytest tests "$@"
