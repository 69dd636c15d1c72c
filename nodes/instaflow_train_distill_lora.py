from comfy_api.v0_0_2 import io

from ..flow_math.flow_objectives import DISTILL_LOSSES
from ..training.lora_training import TrainSettings, train_flow_lora
from .lora_training_inputs import training_inputs, training_outputs
from .schema_cache import schema_kept_while


class InstaFlowTrainDistillLoRA(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="InstaFlowTrainDistillLoRA", display_name="InstaFlow Train Distill LoRA (one step)",
            category="InstaFlow/training",
            description="One-step distillation LoRA training: the student's one-step image noise + v(noise, sigma = 1) is "
                        "trained toward the teacher's latent for that noise. Sample the result with 1 step. Cancel keeps "
                        "what was trained (output/loras).",
            inputs=training_inputs("The student, patched for InstaFlow (InstaFlow-0.9B or 2-Rectified Flow).") + [
                io.Combo.Input("loss", options=list(DISTILL_LOSSES), default="l2",
                               tooltip="l2 on latents, or pseudo_huber (robust to the few pairs a teacher got wrong).")],
            outputs=training_outputs())

    @classmethod
    def execute(cls, model, pairs, **settings):
        return io.NodeOutput(*train_flow_lora(model, pairs, "distill", TrainSettings(**settings), "InstaFlowTrainDistillLoRA"))
