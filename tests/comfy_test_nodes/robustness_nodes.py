"""Test-only nodes for the robustness tests: bad latents, a model that outputs NaN, a simulated
out-of-memory error, and read-outs of sigmas and of the server's live tensors. Never shipped."""
import gc
import math

import torch


class RobustnessTestLatent:
    """A latent of any shape, with NaN or inf in a few places on request."""
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ("LATENT",)
    FILLS = ["normal", "nan", "inf"]

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"batch": ("INT", {"default": 1, "min": 1}), "channels": ("INT", {"default": 4, "min": 1}),
                             "height": ("INT", {"default": 8, "min": 1}), "width": ("INT", {"default": 8, "min": 1}),
                             "fill": (cls.FILLS,), "bad_values": ("INT", {"default": 3, "min": 0})}}

    def execute(self, batch, channels, height, width, fill, bad_values):
        x = torch.randn((batch, channels, height, width), generator=torch.Generator().manual_seed(5))
        if fill != "normal":
            x.view(-1)[:bad_values] = float("nan") if fill == "nan" else float("inf")
        return ({"samples": x},)


class RobustnessNaNVelocityModel:
    """The model with every UNet output multiplied by NaN (what an fp16 overflow or broken weights give)."""
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ("MODEL",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def execute(self, model):
        def nan_output(apply_model, args):
            return apply_model(args["input"], args["timestep"], **args["c"]) * math.nan
        broken = model.clone()
        broken.set_model_unet_function_wrapper(nan_output)
        return (broken,)


class RobustnessRaiseOutOfMemory:
    """Raises the exception type ComfyUI treats as out-of-memory (torch.cuda.OutOfMemoryError), without allocating."""
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ("LATENT",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",)}}

    def execute(self, samples):
        import comfy.model_management
        raise comfy.model_management.OOM_EXCEPTION("test-only: simulated allocation failure")


class RobustnessReportSigmas:
    """Puts a SIGMAS value into the prompt's history outputs."""
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"sigmas": ("SIGMAS",)}}

    def execute(self, sigmas):
        return {"ui": {"sigmas": [float(s) for s in sigmas.tolist()]}}


class RobustnessLiveTensors:
    """Number and total storage bytes of the torch tensors alive in the server process (after a gc),
    measured once `images` exist (so at the same point of every prompt that uses it)."""
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "nonce": ("INT", {"default": 0, "min": 0, "max": 2**62})}}

    def execute(self, images, nonce):
        gc.collect()
        count, storages = 0, {}
        for obj in gc.get_objects():
            try:
                if isinstance(obj, torch.Tensor):
                    count += 1
                    storage = obj.untyped_storage()
                    storages[storage.data_ptr(), obj.device.type] = storage.nbytes()
            except Exception:  # noqa: BLE001 - meta tensors, odd subclasses: count only
                pass
        return {"ui": {"tensors": [count], "storage_bytes": [sum(storages.values())]}}


NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in (
    RobustnessTestLatent, RobustnessNaNVelocityModel, RobustnessRaiseOutOfMemory, RobustnessReportSigmas,
    RobustnessLiveTensors)}
