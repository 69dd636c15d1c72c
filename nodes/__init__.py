"""ComfyUI nodes of the pack: thin wrappers, one job each, declared with ComfyUI's versioned node
schema (comfy_api.v0_0_2, in every supported ComfyUI: compat/comfyui_versions.py). Each flow family's
loader, model-sampling and scheduler nodes are built from its record (family_nodes.py)."""
from ..flow_math.flows import FAMILIES
from .family_nodes import family_nodes
from .instaflow_cuda_graph import InstaFlowCudaGraph
from .instaflow_interpolated_conditioning import InstaFlowInterpolatedConditioning
from .instaflow_interpolated_noise import InstaFlowInterpolatedNoise
from .instaflow_inversion import InstaFlowInversion
from .instaflow_live_preview import InstaFlowLivePreview
from .instaflow_load_pairs import InstaFlowLoadPairs
from .instaflow_make_pairs import InstaFlowMakePairs
from .instaflow_sampler import InstaFlowSampler
from .instaflow_train_distill_lora import InstaFlowTrainDistillLoRA
from .instaflow_train_reflow_lora import InstaFlowTrainReflowLoRA
from .perflow_delta_weights import PeRFlowDeltaWeights

NODES = [
    *(node for family in FAMILIES for node in family_nodes(family)),
    InstaFlowSampler,
    InstaFlowInterpolatedNoise,
    InstaFlowInterpolatedConditioning,
    InstaFlowInversion,
    PeRFlowDeltaWeights,
    InstaFlowMakePairs,
    InstaFlowLoadPairs,
    InstaFlowTrainReflowLoRA,
    InstaFlowTrainDistillLoRA,
    InstaFlowLivePreview,
    InstaFlowCudaGraph,
]
