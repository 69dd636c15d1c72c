#!/usr/bin/env bash
# The device check's entry on the GPU machine (the device tool's `run`, from the repository root):
#   bash bench/device/run_on_device.sh [bench/device/device_check.py arguments]
# Needs the carried folder .device (python -m bench.device.bundle prepare, here). Installs its wheels
# into a folder of its own, unpacks its ComfyUI tree, then runs the check; results go to $OUT.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bundle="${INSTAFLOW_DEVICE_BUNDLE:-$repo/.device}"
work="${INSTAFLOW_DEVICE_WORK:-/tmp/instaflow-device}"
py="${INSTAFLOW_DEVICE_PYTHON:-python3}"
out="${OUT:-$repo/device_out}"
mkdir -p "$work" "$out"
if [ ! -f "$bundle/manifest.json" ]; then
  echo "no $bundle/manifest.json: run 'python -m bench.device.bundle prepare' before the device call and carry .device" >&2
  exit 3
fi
t0=$(date +%s)
cd "$repo"  # its programs run as modules of the repository (python -m bench.device.x)
"$py" -m bench.device.bundle install "$work/site" --dest "$bundle" || exit 3
COMFYUI_PATH="$("$py" -m bench.device.bundle unpack "$work" --dest "$bundle")" || exit 3
export COMFYUI_PATH
export INSTAFLOW_CACHE="${INSTAFLOW_CACHE:-$work/cache}"  # the random models are built here
export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 PYTHONUNBUFFERED=1
if ! "$py" -c "import av" >/dev/null 2>&1; then  # ComfyUI imports PyAV at start; the GPU machine lacks it
  export PYTHONPATH="$PYTHONPATH:$repo/bench/device/stubs"
fi
echo "[device-check] set-up $(( $(date +%s) - t0 )) s; ComfyUI $COMFYUI_PATH; cache $INSTAFLOW_CACHE; out $out"
exec "$py" -m bench.device.device_check --out "$out" "$@"
