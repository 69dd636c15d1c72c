from comfy_api.v0_0_2 import io

from ..comfyui_glue.inversion_sampling import invert_latent
from .schema_cache import schema_kept_while


class InstaFlowInversion(io.ComfyNode):
    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id="InstaFlowInversion", display_name="InstaFlow Inversion (image to noise, for editing)",
            category="InstaFlow/editing",
            description="Runs the rectified flow backwards: from an encoded image to the noise that InstaFlow / "
                        "2-Rectified Flow sampling turns back into it. Regenerate from that noise with an edited prompt "
                        "to edit the image (SamplerCustomAdvanced with the NOISE output, or InstaFlowSampler with the "
                        "LATENT output), with the same steps and cfg.",
            inputs=[
                io.Model.Input("model", tooltip="An InstaFlow / 2-Rectified Flow model patched for rectified flow "
                                                "(InstaFlowLoader, or ModelSamplingInstaFlow after a stock loader). Give "
                                                "the same model to the sampler that regenerates."),
                io.Conditioning.Input("positive", tooltip="A description of the input image (prompt A). Regenerating "
                                                          "with this prompt gives the image back; edit it for the "
                                                          "regeneration."),
                io.Latent.Input("latent_image", tooltip="The image to invert: VAE Encode with this model's VAE."),
                io.Int.Input("steps", default=10, min=1, max=10000,
                             tooltip="Euler steps from the image to the noise; regenerate with the same number. More "
                                     "steps make each step easier to undo (2-Rectified Flow: 10-25)."),
                io.Float.Input("cfg", default=1.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance of the inversion; regenerate with the same cfg. 1.0 is "
                                       "off (one model call per evaluation); other values need a negative prompt."),
                io.Int.Input("fixed_point_iterations", default=3, min=0, max=100,
                             tooltip="0: plain explicit Euler backwards (one model call per step; not an exact "
                                     "inverse). k > 0: each step is solved so that the sampler's forward step lands "
                                     "on the current latent, with k more model calls per step; the round-trip error "
                                     "shrinks with every iteration."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Negative prompt, needed when cfg is not 1; regenerate with the same one."),
            ],
            outputs=[
                io.Noise.Output(tooltip="The inverted image as noise for SamplerCustomAdvanced (KSamplerSelect "
                                        "rectified_flow, InstaFlowScheduler with the same steps, any guider; latent_image: "
                                        "this node's LATENT or the VAE Encode latent). The sampler starts from exactly "
                                        "this latent."),
                io.Latent.Output(tooltip="The same inverted latent as a LATENT: connect it to InstaFlowSampler "
                                         "(denoise 1), which starts from it instead of seeded noise, or decode it to "
                                         "look at it."),
            ])

    @classmethod
    def execute(cls, model, positive, latent_image, steps, cfg, fixed_point_iterations, negative=None):
        noise, latent = invert_latent(model, positive, negative, latent_image, steps, cfg, fixed_point_iterations)
        return io.NodeOutput(noise, latent)
