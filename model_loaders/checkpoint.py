"""Load a straight-flow checkpoint (diffusers folder or single file) as ComfyUI MODEL, CLIP, VAE.

InstaFlow, 2-Rectified Flow and PeRFlow checkpoints are plain SD1.5 / SDXL / SD2.x weights
(docs/models.md); ComfyUI's own loaders build them from state dicts and detect them as ordinary
diffusion models, so the sampling patch (comfyui_glue/model_sampling.py, applied by the loader
nodes) is what makes them flow models. Bad input is caught before anything is built: each file is
read by weights_file (safetensors, or tensors-only torch pickles) and its architecture is checked by
architecture, so a wrong or broken file costs a clear error naming it, not gigabytes of allocation.
"""
from __future__ import annotations

import comfy.sd
import folder_paths

from ..compat import comfyui_versions
from ..flow_math.flows import FlowFamily
from .architecture import SDXL, detect_layout, require_config
from .diffusers_folder import weight_files
from .model_folders import DIFFUSERS, resolve_model
from .weights_file import ModelFileError, read_state_dict


def _embeddings():
    return folder_paths.get_folder_paths("embeddings")


def _require(config, source: str, family: FlowFamily) -> str:
    return require_config(config, source, family.architectures, family.needs)


def _text_encoder(paths: list[str]):
    """CLIP from one (SD1.5, SD2.x) or two (SDXL: CLIP-L and OpenCLIP bigG) text encoder files."""
    return comfy.sd.load_text_encoder_state_dicts([read_state_dict(p)[0] for p in paths], embedding_directory=_embeddings())


def load_diffusers_folder(path: str, family: FlowFamily):
    """(model, clip, vae, architecture) from a diffusers folder such as XCLiu/instaflow_0_9B_from_sd_1_5."""
    files = weight_files(path)
    unet_sd, metadata = read_state_dict(files["unet"])
    _layout, config = detect_layout(unet_sd)
    architecture = _require(config, files["unet"], family)
    model = comfyui_versions.load_diffusion_model_state_dict(unet_sd, metadata)
    if model is None:
        raise ModelFileError(f"{files['unet']}: ComfyUI could not build a UNet from these weights")
    if architecture == SDXL and "text_encoder_2" not in files:
        raise ModelFileError(f"{path}: this SDXL folder has no text_encoder_2/ weights (the OpenCLIP bigG text "
                             "encoder SDXL needs besides text_encoder/). Was the download incomplete?")
    encoders = [files["text_encoder"]] + ([files["text_encoder_2"]] if architecture == SDXL else [])
    clip = _text_encoder(encoders)
    vae = comfy.sd.VAE(sd=read_state_dict(files["vae"])[0])
    return model, clip, vae, architecture


def _missing_parts(sd: dict, config) -> list[str]:
    prefixes = {"text encoder": getattr(config, "text_encoder_key_prefix", ["cond_stage_model."]),
                "VAE": getattr(config, "vae_key_prefix", ["first_stage_model."])}
    return [part for part, keys in prefixes.items() if not any(k.startswith(tuple(keys)) for k in sd)]


def load_single_file(path: str, family: FlowFamily):
    """(model, clip, vae, architecture) from a single-file LDM-layout checkpoint."""
    sd, metadata = read_state_dict(path)
    layout, config = detect_layout(sd)
    architecture = _require(config, path, family)
    missing = ["text encoder", "VAE"] if layout != "checkpoint" else _missing_parts(sd, config)
    if missing:
        raise ModelFileError(
            f"{path}: this {architecture} file has no {' and no '.join(missing)} weights (a UNet-only file?). Load it "
            f"with Load Diffusion Model + Load CLIP + Load VAE and add {family.patch_node}, "
            "or use the full checkpoint or diffusers folder")
    out = comfy.sd.load_state_dict_guess_config(sd, output_vae=True, output_clip=True, embedding_directory=_embeddings(),
                                                metadata=metadata)
    if out is None:
        raise ModelFileError(f"{path}: ComfyUI could not build a model from this checkpoint")
    model, clip, vae = out[:3]
    if model is None or clip is None or vae is None:
        raise ModelFileError(f"{path}: ComfyUI built no {'UNet' if model is None else 'text encoder' if clip is None else 'VAE'} "
                             "from this checkpoint")
    return model, clip, vae, architecture


def load_checkpoint(name: str, family: FlowFamily):
    """(model, clip, vae, architecture) for a name listed in `family`'s model folders (not yet patched)."""
    kind, path = resolve_model(name, family.folder)
    return load_diffusers_folder(path, family) if kind == DIFFUSERS else load_single_file(path, family)
