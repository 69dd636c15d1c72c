from ..samplers.flow_objectives import DISTILL_LOSSES
from ..training.lora_training import TrainSettings, train_flow_lora
from .lora_training_inputs import OUTPUT_TOOLTIPS, RETURN_NAMES, RETURN_TYPES, training_inputs


class InstaFlowTrainDistillLoRA:
    DESCRIPTION = ("One-step distillation LoRA training: the student's one-step image noise + v(noise, sigma = 1) is "
                   "trained toward the teacher's latent for that noise. Sample the result with 1 step. Cancel keeps "
                   "what was trained (output/loras).")
    CATEGORY = "InstaFlow/training"
    FUNCTION = "execute"
    RETURN_TYPES = RETURN_TYPES
    RETURN_NAMES = RETURN_NAMES
    OUTPUT_TOOLTIPS = OUTPUT_TOOLTIPS

    @classmethod
    def INPUT_TYPES(cls):
        inputs = training_inputs("The student, patched for InstaFlow (InstaFlow-0.9B or 2-Rectified Flow).")
        inputs["loss"] = (list(DISTILL_LOSSES), {"default": "l2",
                          "tooltip": "l2 on latents, or pseudo_huber (robust to the few pairs a teacher got wrong)."})
        return {"required": inputs}

    def execute(self, model, pairs, **settings):
        return train_flow_lora(model, pairs, "distill", TrainSettings(**settings), "InstaFlowTrainDistillLoRA")
