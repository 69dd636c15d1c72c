#!/usr/bin/env bash
# Builds the test/demo environment once, outside the repository:
#   $INSTAFLOW_CACHE (default ~/.cache/comfyui-instaflow)/venv       Python venv
#   $INSTAFLOW_CACHE/comfyui-0.33.0                                 ComfyUI tree (unless COMFYUI_PATH), from
#                                                                   ../shared/comfyui/ (INSTAFLOW_COMFYUI_ARCHIVE)
#   $INSTAFLOW_CACHE/comfyui-<older>, comfyui-<older>-overlay       an older tree (0.3.75, 0.3.52) and its own
#                                                                   frontend pins, when INSTAFLOW_COMFYUI=<older>
#   $INSTAFLOW_CACHE/frontend-<version>                             another frontend, when INSTAFLOW_FRONTEND=<version>
# Re-running is cheap: it reinstalls only when the requirement files change.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/paths.sh"
cache="$INSTAFLOW_CACHE"
venv="$cache/venv"
mkdir -p "$cache"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

# The venv gets the newest tree's requirements; an older tree (INSTAFLOW_COMFYUI) gets an overlay.
comfy="$(INSTAFLOW_COMFYUI= "$py" "$repo/devtools/comfyui_source.py" tree)"

# ComfyUI's requirements minus the torch family, which tests/requirements.txt pins.
reqs="$cache/comfyui-requirements.txt"
grep -v -E '^(torch|torchvision|torchaudio)\s*$' "$comfy/requirements.txt" > "$reqs"
# ComfyUI-Manager as that tree's users get it (`pip install -r manager_requirements.txt`, started with
# --enable-manager): tests/test_manager_install.py installs the pack through it.
if [ -f "$comfy/manager_requirements.txt" ]; then
  { echo; cat "$comfy/manager_requirements.txt"; } >> "$reqs"
fi

stamp="$cache/venv.stamp"
want="$(cat "$reqs" "$repo/tests/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q -r "$repo/tests/requirements.txt" -r "$reqs" -c "$repo/tests/requirements.txt"
  echo "$want" > "$stamp"
fi

# Chromium for the browser tests (tests/test_browser.py): Debian's package, never a Playwright
# browser download. Installed once when missing and when this user may run apt-get.
if [ -z "${INSTAFLOW_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser tests (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
  else
    echo "note: no chromium (apt-get install chromium); the browser tests will be skipped" >&2
  fi
fi
if [ -n "${INSTAFLOW_COMFYUI:-}${INSTAFLOW_FRONTEND:-}" ]; then
  comfy="$("$py" "$repo/devtools/comfyui_source.py" | tr '\n' ' ')"
fi
echo "venv: $venv"
echo "comfyui: $comfy"
