"""The inputs and outputs the two Train LoRA nodes share (their tooltips are the documentation)."""
from comfy_api.v0_0_2 import io

from ..training.lora_training import OPTIMIZERS


def training_inputs(student_tooltip: str) -> list:
    return [
        io.Model.Input("model", tooltip=student_tooltip),
        io.Custom("INSTAFLOW_PAIRS").Input("pairs", tooltip="Teacher pairs from InstaFlow Make Pairs or Load Pairs."),
        io.Int.Input("steps", default=500, min=1, max=1000000, tooltip="Optimizer steps."),
        io.Float.Input("learning_rate", default=0.0001, min=0.0000001, max=1.0, step=0.0000001,
                       tooltip="Learning rate (1e-4 is a usual LoRA rate)."),
        io.Int.Input("rank", default=16, min=1, max=256, tooltip="Rank of the LoRA layers."),
        io.Int.Input("batch_size", default=1, min=1, max=4096, tooltip=(
            "Samples per step. Reflow: each sample is a pair at its own noise level, the batch spread over (0, 1]; "
            "a batch larger than the set takes the pairs again at other levels. Distill: each pair at most once.")),
        io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff,
                     tooltip="Seed of the LoRA initialisation, the pair order and the noise levels."),
        io.Combo.Input("training_dtype", options=["bf16", "fp32"], default="bf16",
                       tooltip="Compute dtype while training (bf16 on recent GPUs; fp32 on a CPU)."),
        io.Combo.Input("lora_dtype", options=["fp32", "bf16"], default="fp32",
                       tooltip="Dtype of the LoRA weights and of the saved file."),
        io.Combo.Input("optimizer", options=list(OPTIMIZERS), default="AdamW", tooltip="The optimizer."),
        io.Boolean.Input("gradient_checkpointing", default=True,
                         tooltip="Recompute activations in the backward pass: less memory, slower steps."),
    ]


def training_outputs() -> list:
    return [
        io.Model.Output(display_name="model", tooltip="The student with the trained LoRA applied (sample it right away)."),
        io.Custom("LORA_MODEL").Output(display_name="lora", tooltip=(
            "The LoRA weights, for core Save LoRA Weights (then stock Load LoRA in any graph) or Load LoRA Model.")),
        io.Custom("LOSS_MAP").Output(display_name="loss_map", tooltip="Loss per step, for core Plot Loss Graph."),
        io.Int.Output(display_name="steps", tooltip="Steps trained, for Save LoRA Weights' file name."),
    ]
