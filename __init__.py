"""InstaFlow for ComfyUI: one-step rectified-flow text-to-image with SD1.5 (Liu et al., ICLR 2024)."""
from .model_loaders.model_folders import register_instaflow_folder
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from .samplers.registration import register

register_instaflow_folder()
register()

# Frontend extension: the "Convert to InstaFlow" command and the node warning display (web/*.js).
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
