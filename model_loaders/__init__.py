"""Finding and loading InstaFlow / 2-Rectified-Flow checkpoints (ComfyUI glue)."""
