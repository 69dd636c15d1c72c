#!/usr/bin/env bash
# CPU dry run of the device check (CI runs it after the tests): the same bundle, entry and phases as on
# the GPU machine, at 64x64 with one round each, in an interpreter that sees only the GPU machine's
# packages plus the carried wheels (bench/device/emulate). Extra arguments go to device_check.py.
# The results (device_check.json / .md) go to $OUT when set, else to a temporary folder.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo/scripts/paths.sh"
bash "$repo/scripts/bootstrap.sh" >/dev/null
py="$INSTAFLOW_PYTHON"
cd "$repo"  # the device check's programs run as modules of the repository (python -m bench.device.x)
"$py" -m bench.device.bundle prepare
work="$(mktemp -d "${TMPDIR:-/tmp}/instaflow-device-dry.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$py" -m bench.device.emulate_site "$work/device-site" >/dev/null
export INSTAFLOW_DEVICE_SITE="$work/device-site" PYTHONPATH="$repo/bench/device/emulate"
export INSTAFLOW_DEVICE_WORK="$work" INSTAFLOW_DEVICE_PYTHON="$py" OUT="${OUT:-$work/out}"
export TORCH_COMPILE_DISABLE=1  # TorchCompileModel runs as a no-op on the CPU (compiling would take minutes)
bash "$repo/bench/device/run_on_device.sh" --profile dry "$@"
