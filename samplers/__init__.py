"""Rectified-flow sampling: torch-only math (flow_convention, schedule, euler) and ComfyUI glue."""
