"""Exact acceleration of the UNet call.

- cuda_graph_cache: torch-only (a CUDA graph per call signature, captured on first use, kept only when its
  replay equals the eager call bit for bit).
- comfyui_cuda_graph: ComfyUI glue (the model wrapper, what makes a call ineligible, the weights' identity).
"""
