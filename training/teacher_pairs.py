"""Coupled (noise, latent, conditioning) triplets from a teacher model and its own sampling (ComfyUI glue).

Pair i of prompt j (both counted from 0) uses seed `seed + j * pairs_per_prompt + i`; its noise is
ComfyUI's seeded noise for that seed (comfy.sample.prepare_noise, what KSampler uses), and its latent is
what the teacher's KSampler settings make from that noise. So a stock KSampler with the same seed,
prompt and settings regenerates the stored latent, and adding prompts at the end of the list, or
running again after an interrupt, only makes the pairs that are not on disk yet
(training/pairs_file.py describes the files).
"""
from __future__ import annotations

import torch

import comfy.model_management
import comfy.sample
import comfy.utils
import folder_paths

from .pairs_file import (FlowPairs, existing_pair, folder_header, load_pairs, model_header, pairs_folder,
                         require_same_header, write_pair)

_WHO = "InstaFlowMakePairs"


def model_identity(model) -> tuple[str, int, int]:
    """(architecture, latent channels, text-context width) of a ComfyUI MODEL."""
    config = model.model.model_config
    channels = getattr(model.get_model_object("latent_format"), "latent_channels", 4)
    return type(config).__name__, int(channels), int(config.unet_config.get("context_dim") or 0)


def prompt_list(prompts: str) -> list[str]:
    """One prompt per non-empty line."""
    return [line.strip() for line in prompts.splitlines() if line.strip()]


def pairs_root() -> str:
    return folder_paths.get_output_directory()


def open_pairs(name: str) -> FlowPairs:
    return load_pairs(pairs_folder(pairs_root(), name))


def make_pairs(model, clip, prompts: str, negative_prompt: str, seed: int, pairs_per_prompt: int, width: int,
               height: int, sampler_name: str, scheduler: str, steps: int, cfg: float, name: str) -> FlowPairs:
    """Makes the missing pairs of `name` (one file each, written as soon as it is sampled); returns the whole set."""
    texts = prompt_list(prompts)
    if not texts:
        raise ValueError(f"{_WHO}: the prompt list is empty; write one prompt per line")
    if width % 8 or height % 8:
        raise ValueError(f"{_WHO}: width and height must be multiples of 8, got {width}x{height}")
    folder = pairs_folder(pairs_root(), name)
    architecture, channels, context_dim = model_identity(model)
    latent_shape = (channels, height // 8, width // 8)
    teacher = {"sampler_name": sampler_name, "scheduler": scheduler, "steps": int(steps), "cfg": float(cfg),
               "negative_prompt": negative_prompt,
               "model_sampling": type(model.get_model_object("model_sampling")).__name__}
    header = model_header(architecture, latent_shape, context_dim, teacher)
    found = folder_header(folder)
    if found is not None:
        require_same_header(found, header, f"{_WHO}: the pairs set {name!r}",
                            "Add to it only with its own model, size and teacher settings, or choose another name.")
    jobs = [(text, seed + j * pairs_per_prompt + i) for j, text in enumerate(texts) for i in range(pairs_per_prompt)]
    todo = [(text, s) for text, s in jobs if not existing_pair(folder, text, s, header)]
    if todo:
        _sample_pairs(model, clip, todo, negative_prompt, latent_shape, sampler_name, scheduler, steps, cfg,
                      folder, header)
    return load_pairs(folder)


def _sample_pairs(model, clip, todo, negative_prompt, latent_shape, sampler_name, scheduler, steps, cfg, folder, header):
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(negative_prompt))
    empty = comfy.sample.fix_empty_latent_channels(
        model, torch.zeros((1,) + latent_shape, dtype=torch.float32))
    progress = comfy.utils.ProgressBar(len(todo) * steps)
    encoded = {}
    for text, seed in todo:
        comfy.model_management.throw_exception_if_processing_interrupted()
        if text not in encoded:
            encoded[text] = clip.encode_from_tokens_scheduled(clip.tokenize(text))
        positive = encoded[text]
        noise = comfy.sample.prepare_noise(empty, seed)
        latent = comfy.sample.sample(
            model, noise, steps, cfg, sampler_name, scheduler, positive, negative, empty, denoise=1.0,
            callback=lambda *_: progress.update(1), disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
        write_pair(folder, text, seed, header, noise, latent, positive[0][0])
