"""One call from latent to latent for the all-in-one InstaFlowSampler node (ComfyUI glue).

Mirrors stock KSampler (seeded batch noise, noise masks, progress bar and previews) but passes the
official schedule as explicit sigmas, so denoise < 1 is exactly 1000 * s * (1 - i/N).
A LATENT from InstaFlowInversion is started from as it is, in place of seeded noise
(inversion_sampling.start_noise_of_inverted_latent).
"""
from __future__ import annotations

import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview

from ..flow_math.euler import rectified_flow_euler
from ..flow_math.finite_checks import require_finite_number
from ..flow_math.flows.instaflow import instaflow_sigmas
from .inversion_sampling import start_noise_of_inverted_latent
from .sampling_guards import check_latent, check_memory, instaflow_model_for_sampling

_SAMPLER = comfy.samplers.KSAMPLER(rectified_flow_euler)
_WHO = "InstaFlowSampler"


def sample_instaflow(model, seed, steps, cfg, positive, negative, latent, denoise=1.0):
    """Rectified-flow Euler sampling of `latent` (a LATENT dict); returns a new LATENT dict."""
    require_finite_number("cfg", cfg, _WHO)
    require_finite_number("denoise", denoise, _WHO)
    model = instaflow_model_for_sampling(model, _WHO)
    latent_image = latent["samples"]
    latent_image = comfy.sample.fix_empty_latent_channels(model, latent_image)
    check_latent(model, latent_image, _WHO)
    out = latent.copy()
    if denoise <= 0.0:  # like KSampler: nothing to denoise
        out["samples"] = latent_image
        return out
    if negative is None:
        if cfg != 1.0:
            raise ValueError(
                f"cfg={cfg} needs a negative conditioning; connect one (the official default is an "
                "empty prompt: CLIPTextEncode with no text) or set cfg to 1.0")
        negative = []  # cfg 1 never evaluates the unconditional branch
    check_memory(model, latent_image.shape, _WHO)
    noise = start_noise_of_inverted_latent(model, latent, latent_image, denoise, _WHO)  # InstaFlowInversion's LATENT
    if noise is None:
        noise = comfy.sample.prepare_noise(latent_image, seed, latent.get("batch_index"))
    sigmas = instaflow_sigmas(steps, denoise)
    callback = latent_preview.prepare_callback(model, steps)
    out["samples"] = comfy.sample.sample_custom(
        model, noise, cfg, _SAMPLER, sigmas, positive, negative, latent_image,
        noise_mask=latent.get("noise_mask"), callback=callback,
        disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    return out
