"""Every ComfyUI API the pack uses that differs between the ComfyUI versions it supports, probed in
one place (comfyui_versions.py), each probe named with the version that needs it."""
