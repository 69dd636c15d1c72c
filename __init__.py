"""Straight-flow fast generation for ComfyUI: InstaFlow (one-step SD1.5 by rectified flow, Liu et al., ICLR 2024),
2-Rectified Flow, and PeRFlow (piecewise rectified flow, 4-8 steps, SD1.5 / SDXL / SD2.x)."""
from comfy_api.v0_0_2 import ComfyExtension

from .model_loaders.model_folders import register_model_folders
from .nodes import NODES
from .comfyui_glue.registration import register

register_model_folders()
register()

# Frontend extension: the "Convert to InstaFlow" command and the node warning display (web/*.js).
WEB_DIRECTORY = "./web"


class StraightFlowExtension(ComfyExtension):
    async def get_node_list(self):
        return list(NODES)


async def comfy_entrypoint() -> StraightFlowExtension:
    """ComfyUI's entry point for packs declared with the versioned node schema."""
    return StraightFlowExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
