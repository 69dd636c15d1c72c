"""ComfyUI nodes of the pack: thin wrappers, one job each."""
from .instaflow_loader import InstaFlowLoader
from .instaflow_sampler import InstaFlowSampler
from .instaflow_scheduler import InstaFlowScheduler
from .model_sampling_instaflow import ModelSamplingInstaFlow

NODE_CLASS_MAPPINGS = {
    "InstaFlowLoader": InstaFlowLoader,
    "ModelSamplingInstaFlow": ModelSamplingInstaFlow,
    "InstaFlowScheduler": InstaFlowScheduler,
    "InstaFlowSampler": InstaFlowSampler,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "InstaFlowLoader": "Load InstaFlow Checkpoint",
    "ModelSamplingInstaFlow": "Model Sampling InstaFlow (Rectified Flow)",
    "InstaFlowScheduler": "InstaFlow Scheduler",
    "InstaFlowSampler": "InstaFlow Sampler",
}
