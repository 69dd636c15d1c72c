"""The torch-only math of straight flows (no ComfyUI import): flows/ (each family's convention, schedule and
record), euler.py (the Euler step), inversion.py, flow_objectives.py (reflow and distillation losses),
slerp.py and conditioning_interpolation.py, finite_checks.py, memory_estimate.py. The ComfyUI glue over it
is comfyui_glue/; nothing here imports either."""
