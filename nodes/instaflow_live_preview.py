from comfy_api.v0_0_2 import io

from ..live_preview.image_encoding import FORMATS
from ..live_preview.websocket_frames import send_live_preview
from .schema_cache import schema_kept_while


class InstaFlowLivePreview(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="InstaFlowLivePreview", display_name="Live Preview (fast)", category="InstaFlow/output",
            description="Shows images on this node at once, encoded on their own device (nvJPEG on a GPU) and sent "
                        "over the websocket to the browser that queued the prompt. Writes no file; use Save Image to "
                        "keep a picture.",
            inputs=[
                io.Image.Input("images", tooltip="The images to show; a batch shows as one grid."),
                io.Combo.Input("format", options=list(FORMATS), default="jpeg", optional=True,
                               tooltip="jpeg: encoded on the GPU when there is one (fastest). webp: smaller, "
                                       "encoded on the CPU."),
                io.Int.Input("quality", default=90, min=1, max=100, optional=True,
                             tooltip="Encoder quality, 1-100: 90 is hard to tell from the saved PNG; lower is "
                                     "smaller and faster to send."),
            ],
            outputs=[], hidden=[io.Hidden.dynprompt], is_output_node=True)

    @classmethod
    def fingerprint_inputs(cls, **kwargs):
        return float("nan")  # never equal: a re-queued prompt shows its images again (a cached node sends nothing)

    @classmethod
    def execute(cls, images, format="jpeg", quality=90):
        send_live_preview(images, format, quality, cls.hidden.dynprompt)
        return io.NodeOutput()
