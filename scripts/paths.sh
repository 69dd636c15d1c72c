# Sourced by the scripts: where the test/demo environment lives (outside the repository).
INSTAFLOW_CACHE="${INSTAFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/comfyui-instaflow}"
export INSTAFLOW_CACHE
INSTAFLOW_PYTHON="$INSTAFLOW_CACHE/venv/bin/python"
