"""Load an InstaFlow / 2-Rectified-Flow model as ComfyUI MODEL, CLIP, VAE, patched for rectified flow.

Both forms are plain SD1.5 weights (REFERENCE.md section 2); ComfyUI's own loaders build them from
state dicts and detect them as SD1.5 EPS models, so the patch from samplers/model_sampling.py is what
makes them InstaFlow. Bad input is caught before anything is built: each file is read by
weights_file (safetensors, or tensors-only torch pickles) and its architecture is checked by
architecture, so a wrong or broken file costs a clear error naming it, not gigabytes of allocation.
"""
from __future__ import annotations

import inspect

import comfy.sd
import folder_paths

from ..samplers.model_sampling import patch_instaflow_sampling
from .architecture import detect_layout, require_sd15_config
from .diffusers_folder import weight_files
from .model_folders import resolve_instaflow_model
from .weights_file import ModelFileError, read_state_dict


def _embeddings():
    return folder_paths.get_folder_paths("embeddings")


def _with_metadata(function, *args, metadata=None, **kwargs):
    # `metadata=` arrived in ComfyUI's loaders in 2025; older versions do not take it.
    if metadata is not None and "metadata" in inspect.signature(function).parameters:
        kwargs["metadata"] = metadata
    return function(*args, **kwargs)


def _text_encoder(path: str):
    if hasattr(comfy.sd, "load_text_encoder_state_dicts"):
        return comfy.sd.load_text_encoder_state_dicts([read_state_dict(path)[0]], embedding_directory=_embeddings())
    return comfy.sd.load_clip([path], embedding_directory=_embeddings())  # older ComfyUI; it loads safely itself


def load_diffusers_folder(path: str):
    """(model, clip, vae) from a diffusers folder such as XCLiu/instaflow_0_9B_from_sd_1_5."""
    files = weight_files(path)
    unet_sd, metadata = read_state_dict(files["unet"])
    _layout, config = detect_layout(unet_sd)
    require_sd15_config(config, files["unet"])
    model = _with_metadata(comfy.sd.load_diffusion_model_state_dict, unet_sd, metadata=metadata)
    if model is None:
        raise ModelFileError(f"{files['unet']}: ComfyUI could not build a UNet from these weights")
    clip = _text_encoder(files["text_encoder"])
    vae = comfy.sd.VAE(sd=read_state_dict(files["vae"])[0])
    return model, clip, vae


def _missing_parts(sd: dict, config) -> list[str]:
    prefixes = {"text encoder": getattr(config, "text_encoder_key_prefix", ["cond_stage_model."]),
                "VAE": getattr(config, "vae_key_prefix", ["first_stage_model."])}
    return [part for part, keys in prefixes.items() if not any(k.startswith(tuple(keys)) for k in sd)]


def load_single_file(path: str):
    """(model, clip, vae) from a single-file SD1.5-layout checkpoint."""
    sd, metadata = read_state_dict(path)
    layout, config = detect_layout(sd)
    require_sd15_config(config, path)
    missing = ["text encoder", "VAE"] if layout != "checkpoint" else _missing_parts(sd, config)
    if missing:
        raise ModelFileError(
            f"{path}: this SD1.5 file has no {' and no '.join(missing)} weights (a UNet-only file?). Load it with "
            "Load Diffusion Model + Load CLIP + Load VAE and add ModelSamplingInstaFlow, or use the full checkpoint "
            "or diffusers folder")
    if hasattr(comfy.sd, "load_state_dict_guess_config"):
        out = _with_metadata(comfy.sd.load_state_dict_guess_config, sd, output_vae=True, output_clip=True,
                             embedding_directory=_embeddings(), metadata=metadata)
    else:  # older ComfyUI: reads the file again (safely on torch >= 2.4)
        out = comfy.sd.load_checkpoint_guess_config(path, output_vae=True, output_clip=True, embedding_directory=_embeddings())
    if out is None:
        raise ModelFileError(f"{path}: ComfyUI could not build a model from this checkpoint")
    model, clip, vae = out[:3]
    if model is None or clip is None or vae is None:
        raise ModelFileError(f"{path}: ComfyUI built no {'UNet' if model is None else 'text encoder' if clip is None else 'VAE'} "
                             "from this checkpoint")
    return model, clip, vae


def load_instaflow(name: str):
    """(model patched for rectified flow, clip, vae) for a name listed by model_folders."""
    kind, path = resolve_instaflow_model(name)
    model, clip, vae = load_diffusers_folder(path) if kind == "diffusers" else load_single_file(path)
    return patch_instaflow_sampling(model), clip, vae
