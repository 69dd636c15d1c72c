"""ComfyUI nodes of the pack: thin wrappers, one job each."""
from .instaflow_interpolated_conditioning import InstaFlowInterpolatedConditioning
from .instaflow_interpolated_noise import InstaFlowInterpolatedNoise
from .instaflow_load_pairs import InstaFlowLoadPairs
from .instaflow_loader import InstaFlowLoader
from .instaflow_make_pairs import InstaFlowMakePairs
from .instaflow_sampler import InstaFlowSampler
from .instaflow_scheduler import InstaFlowScheduler
from .instaflow_train_distill_lora import InstaFlowTrainDistillLoRA
from .instaflow_train_reflow_lora import InstaFlowTrainReflowLoRA
from .model_sampling_instaflow import ModelSamplingInstaFlow
from .model_sampling_perflow import ModelSamplingPeRFlow
from .perflow_delta_weights import PeRFlowDeltaWeights
from .perflow_loader import PeRFlowLoader
from .perflow_scheduler import PeRFlowScheduler

NODE_CLASS_MAPPINGS = {
    "InstaFlowLoader": InstaFlowLoader,
    "ModelSamplingInstaFlow": ModelSamplingInstaFlow,
    "InstaFlowScheduler": InstaFlowScheduler,
    "InstaFlowSampler": InstaFlowSampler,
    "InstaFlowInterpolatedNoise": InstaFlowInterpolatedNoise,
    "InstaFlowInterpolatedConditioning": InstaFlowInterpolatedConditioning,
    "PeRFlowLoader": PeRFlowLoader,
    "ModelSamplingPeRFlow": ModelSamplingPeRFlow,
    "PeRFlowScheduler": PeRFlowScheduler,
    "PeRFlowDeltaWeights": PeRFlowDeltaWeights,
    "InstaFlowMakePairs": InstaFlowMakePairs,
    "InstaFlowLoadPairs": InstaFlowLoadPairs,
    "InstaFlowTrainReflowLoRA": InstaFlowTrainReflowLoRA,
    "InstaFlowTrainDistillLoRA": InstaFlowTrainDistillLoRA,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "InstaFlowLoader": "Load InstaFlow Checkpoint",
    "ModelSamplingInstaFlow": "Model Sampling InstaFlow (Rectified Flow)",
    "InstaFlowScheduler": "InstaFlow Scheduler",
    "InstaFlowSampler": "InstaFlow Sampler",
    "InstaFlowInterpolatedNoise": "InstaFlow Interpolated Noise (slerp between seeds)",
    "InstaFlowInterpolatedConditioning": "InstaFlow Interpolated Conditioning (prompt A to B)",
    "PeRFlowLoader": "Load PeRFlow Checkpoint",
    "ModelSamplingPeRFlow": "Model Sampling PeRFlow (Piecewise Rectified Flow)",
    "PeRFlowScheduler": "PeRFlow Scheduler",
    "PeRFlowDeltaWeights": "Apply PeRFlow Delta Weights (any SD1.5 finetune)",
    "InstaFlowMakePairs": "InstaFlow Make Pairs (teacher noise/latent/prompt)",
    "InstaFlowLoadPairs": "InstaFlow Load Pairs",
    "InstaFlowTrainReflowLoRA": "InstaFlow Train Reflow LoRA (2-Rectified Flow)",
    "InstaFlowTrainDistillLoRA": "InstaFlow Train Distill LoRA (one step)",
}
