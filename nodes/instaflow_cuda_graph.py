from comfy_api.v0_0_2 import io

from ..acceleration.comfyui_cuda_graph import with_cuda_graph
from .schema_cache import schema_kept_while


class InstaFlowCudaGraph(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="InstaFlowCudaGraph", display_name="InstaFlow CUDA Graph", category="InstaFlow/speed",
            description="Replays each UNet call as a CUDA graph (less CPU launch overhead per step), only where the "
                        "replay gives the same numbers bit for bit as the normal call; otherwise the call runs as "
                        "usual and the log says why. Does nothing on a CPU.",
            inputs=[io.Model.Input("model", tooltip="Any diffusion model (InstaFlow, PeRFlow, SD1.5, ...), before the "
                                                    "sampler; LoRAs may come before or after this node.")],
            outputs=[io.Model.Output(tooltip="The same model, its UNet calls replayed from CUDA graphs where exact.")])

    @classmethod
    def execute(cls, model):
        return io.NodeOutput(with_cuda_graph(model))
