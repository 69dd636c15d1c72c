"""ComfyUI nodes of the pack: thin wrappers, one job each, declared with ComfyUI's versioned node
schema (comfy_api.v0_0_2, in every supported ComfyUI: compat/comfyui_versions.py)."""
from .instaflow_cuda_graph import InstaFlowCudaGraph
from .instaflow_interpolated_conditioning import InstaFlowInterpolatedConditioning
from .instaflow_interpolated_noise import InstaFlowInterpolatedNoise
from .instaflow_inversion import InstaFlowInversion
from .instaflow_live_preview import InstaFlowLivePreview
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

NODES = [
    InstaFlowLoader,
    ModelSamplingInstaFlow,
    InstaFlowScheduler,
    InstaFlowSampler,
    InstaFlowInterpolatedNoise,
    InstaFlowInterpolatedConditioning,
    InstaFlowInversion,
    PeRFlowLoader,
    ModelSamplingPeRFlow,
    PeRFlowScheduler,
    PeRFlowDeltaWeights,
    InstaFlowMakePairs,
    InstaFlowLoadPairs,
    InstaFlowTrainReflowLoRA,
    InstaFlowTrainDistillLoRA,
    InstaFlowLivePreview,
    InstaFlowCudaGraph,
]
