"""Straight-flow fast generation for ComfyUI: InstaFlow (one-step SD1.5 by rectified flow, Liu et al., ICLR 2024),
2-Rectified Flow, and PeRFlow (piecewise rectified flow, 4-8 steps, SD1.5 / SDXL / SD2.x)."""
from .model_loaders.model_folders import register_model_folders
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from .samplers.comfyui.registration import register

register_model_folders()
register()

# Frontend extension: the "Convert to InstaFlow" command and the node warning display (web/*.js).
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
