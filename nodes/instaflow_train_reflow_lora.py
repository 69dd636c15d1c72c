from comfy_api.v0_0_2 import io

from ..training.lora_training import TrainSettings, train_flow_lora
from .lora_training_inputs import training_inputs, training_outputs
from .schema_cache import schema_kept_while


class InstaFlowTrainReflowLoRA(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="InstaFlowTrainReflowLoRA", display_name="InstaFlow Train Reflow LoRA (2-Rectified Flow)",
            category="InstaFlow/training",
            description="Reflow (2-Rectified Flow) LoRA training: on each pair, x = (1 - sigma) * latent + sigma * noise "
                        "with sigma drawn per pair, and the student's velocity is trained toward latent - noise. "
                        "Straightens the student's flow so 2-4 steps suffice. Cancel keeps what was trained (output/loras).",
            inputs=training_inputs("The student, patched for InstaFlow (Load InstaFlow Checkpoint or Model Sampling "
                                   "InstaFlow), e.g. 2-Rectified Flow."),
            outputs=training_outputs())

    @classmethod
    def execute(cls, model, pairs, **settings):
        return io.NodeOutput(*train_flow_lora(model, pairs, "reflow", TrainSettings(**settings), "InstaFlowTrainReflowLoRA"))
