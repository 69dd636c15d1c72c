"""Straight-flow sampling. Torch-only math: flows/ (each family's convention and schedule), euler.py,
slerp.py, conditioning_interpolation.py, finite_checks.py, memory_estimate.py. ComfyUI glue, generic
over the families: comfyui/. Nothing here imports nodes/; comfyui/ may import model_loaders/."""
