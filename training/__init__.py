"""Reflow and distillation training of LoRAs on teacher pairs (ComfyUI glue; the objectives are torch-only
math in flow_math/flow_objectives.py)."""
