"""Graph conversion to InstaFlow for API-format workflows (standard library only; no ComfyUI import)."""
