"""The inputs and outputs the two Train LoRA nodes share (their tooltips are the documentation)."""
from ..training.lora_training import OPTIMIZERS

RETURN_TYPES = ("MODEL", "LORA_MODEL", "LOSS_MAP", "INT")
RETURN_NAMES = ("model", "lora", "loss_map", "steps")
OUTPUT_TOOLTIPS = (
    "The student with the trained LoRA applied (sample it right away).",
    "The LoRA weights, for core Save LoRA Weights (then stock Load LoRA in any graph) or Load LoRA Model.",
    "Loss per step, for core Plot Loss Graph.",
    "Steps trained, for Save LoRA Weights' file name.",
)


def training_inputs(student_tooltip: str) -> dict:
    return {
        "model": ("MODEL", {"tooltip": student_tooltip}),
        "pairs": ("INSTAFLOW_PAIRS", {"tooltip": "Teacher pairs from InstaFlow Make Pairs or Load Pairs."}),
        "steps": ("INT", {"default": 500, "min": 1, "max": 1000000, "tooltip": "Optimizer steps."}),
        "learning_rate": ("FLOAT", {"default": 0.0001, "min": 0.0000001, "max": 1.0, "step": 0.0000001,
                                    "tooltip": "Learning rate (1e-4 is a usual LoRA rate)."}),
        "rank": ("INT", {"default": 16, "min": 1, "max": 256, "tooltip": "Rank of the LoRA layers."}),
        "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096, "tooltip": "Pairs per step."}),
        "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff,
                         "tooltip": "Seed of the LoRA initialisation, the pair order and the noise levels."}),
        "training_dtype": (["bf16", "fp32"], {"default": "bf16",
                                             "tooltip": "Compute dtype while training (bf16 on recent GPUs; fp32 on a CPU)."}),
        "lora_dtype": (["fp32", "bf16"], {"default": "fp32", "tooltip": "Dtype of the LoRA weights and of the saved file."}),
        "optimizer": (list(OPTIMIZERS), {"default": "AdamW", "tooltip": "The optimizer."}),
        "gradient_checkpointing": ("BOOLEAN", {"default": True,
                                               "tooltip": "Recompute activations in the backward pass: less memory, ~30% slower."}),
    }
