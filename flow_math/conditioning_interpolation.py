"""Per-frame interpolation between two prompts' conditionings. Torch only.

A ComfyUI CONDITIONING is a list of [embedding tensor (1, tokens, dim), options dict]. The result
has one embedding per frame, (frames, tokens, dim): ComfyUI's sampler repeats or narrows every
conditioning tensor to the latent batch (comfy.utils.repeat_to_batch_size), so a batch of
exactly `frames` embeddings pairs frame i of the latent with embedding i.

Text embeddings are interpolated on the straight line (not slerp): they are not isotropic noise,
and the endpoints must stay exactly the two prompts.
"""
from __future__ import annotations

import torch

from .slerp import frame_positions


def lerp_frames(a: torch.Tensor, b: torch.Tensor, frames: int) -> torch.Tensor:
    """(1 - t) * a + t * b for t = frame_positions(frames), concatenated on dim 0; exact at the ends."""
    return torch.cat([(1.0 - t) * a + t * b for t in frame_positions(frames)], dim=0)


def _single(tensor: torch.Tensor, what: str) -> torch.Tensor:
    if tensor.shape[0] != 1:
        raise ValueError(f"{what} has a batch of {tensor.shape[0]} embeddings; connect a single prompt "
                         "(CLIP Text Encode) to each input")
    return tensor


def interpolate_conditioning(cond_from: list, cond_to: list, frames: int) -> list:
    """A CONDITIONING whose embedding for frame i is at t = i / (frames - 1) from cond_from to cond_to.

    Entries are paired in order (both conditionings need the same number of entries); options such
    as area or strength come from cond_from, a pooled_output present in both is interpolated too.
    """
    if len(cond_from) != len(cond_to):
        raise ValueError(f"the two conditionings have {len(cond_from)} and {len(cond_to)} entries; "
                         "interpolate conditionings built the same way (e.g. one CLIP Text Encode each)")
    out = []
    for i, ((emb_a, opts_a), (emb_b, opts_b)) in enumerate(zip(cond_from, cond_to)):
        if emb_a.shape != emb_b.shape:
            raise ValueError(f"conditioning entry {i}: embeddings of shapes {tuple(emb_a.shape)} and "
                             f"{tuple(emb_b.shape)} cannot be interpolated; the prompts must encode to the "
                             "same number of 77-token chunks (shorten the longer prompt)")
        options = dict(opts_a)
        pooled_a, pooled_b = opts_a.get("pooled_output"), opts_b.get("pooled_output")
        if pooled_a is not None and pooled_b is not None and pooled_a.shape == pooled_b.shape:
            options["pooled_output"] = lerp_frames(_single(pooled_a, "conditioning_from's pooled_output"),
                                                   _single(pooled_b, "conditioning_to's pooled_output"), frames)
        out.append([lerp_frames(_single(emb_a, "conditioning_from"), _single(emb_b, "conditioning_to"), frames),
                    options])
    return out
