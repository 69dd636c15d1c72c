from ..training.lora_training import TrainSettings, train_flow_lora
from .lora_training_inputs import OUTPUT_TOOLTIPS, RETURN_NAMES, RETURN_TYPES, training_inputs


class InstaFlowTrainReflowLoRA:
    DESCRIPTION = ("Reflow (2-Rectified Flow) LoRA training: on each pair, x = (1 - sigma) * latent + sigma * noise "
                   "with sigma drawn per pair, and the student's velocity is trained toward latent - noise. Straightens "
                   "the student's flow so 2-4 steps suffice. Cancel keeps what was trained (output/loras).")
    CATEGORY = "InstaFlow/training"
    FUNCTION = "execute"
    RETURN_TYPES = RETURN_TYPES
    RETURN_NAMES = RETURN_NAMES
    OUTPUT_TOOLTIPS = OUTPUT_TOOLTIPS

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": training_inputs(
            "The student, patched for InstaFlow (Load InstaFlow Checkpoint or Model Sampling InstaFlow), e.g. 2-RF.")}

    def execute(self, model, pairs, **settings):
        return train_flow_lora(model, pairs, "reflow", TrainSettings(**settings), "InstaFlowTrainReflowLoRA")
