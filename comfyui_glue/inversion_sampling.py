"""InstaFlow inversion inside ComfyUI (glue over flow_math/inversion.py): latent -> NOISE + LATENT.

The inversion runs as a sampler inside ComfyUI's own CFGGuider (comfy/samplers.py), so it sees the
model exactly as a sampling run does: models loaded and cleaned up, conditionings processed (areas,
ControlNet, hooks), LoRA and other model patches applied, model wrappers called.

Two things differ from sampling; both are handled here.

- The velocity at sigma 0. ComfyUI's model call returns denoised = model_sampling.calculate_denoised
  (sigma, output, x), for InstaFlow x + sigma * v (flow_math/flows/instaflow.py): at sigma 0 that is x,
  with no trace of v, and the first inversion step reads the model at sigma 0. For the inversion the
  model's sampling object is copied into a subclass whose calculate_denoised is the model's own taken
  at sigma 1 on a zero input: x + 1 * v with x = 0, i.e. v itself, exactly. The timestep (1000 * sigma)
  and the model input stay the model's own. ComfyUI's CFG then mixes velocities,
  v_neg + cfg * (v_pos - v_neg) (cfg_function), and skips the unconditional pass at cfg 1. Patches
  that rewrite CFG on denoised (sampler_cfg_function such as RescaleCFG, post-CFG functions) would see
  velocities in its place: leave them off the model you invert.
- Latent spaces. LATENT dicts hold VAE latents; a sampler works in the model's internal space
  model.process_latent_in(latent) (SD1.5: times 0.18215) and CFGGuider.sample converts back with
  process_latent_out. The inversion's result in internal space is kept as it is for the NOISE:
  SamplerCustomAdvanced (comfy_extras/nodes_custom_sampler.py) passes noise.generate_noise(latent) to
  the guider unscaled, and the sampler starts from model_sampling.noise_scaling(sigmas[0], noise,
  latent), which for InstaFlow at sigma 1 is 1 * noise + 0 * latent: exactly the inverted latent.
  ComfyUI's NOISE protocol (Noise_RandomNoise there): an object with `.seed` and
  `generate_noise(input_latent) -> tensor` on the CPU in the latent's shape.

The LATENT output is the same latent in VAE-latent units, marked with INVERTED_KEY. InstaFlowSampler
(comfyui_glue/instaflow_sampling.py) starts from a marked latent instead of seeded noise
(start_noise_of_inverted_latent); every other node treats it as an ordinary latent.
"""
from __future__ import annotations

import copy
import logging
import math

import torch
from tqdm.auto import tqdm

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview

from ..flow_math.finite_checks import require_finite_number
from ..flow_math.inversion import InversionResult, inversion_sigmas, invert, model_calls
from ..flow_math.flows.instaflow import FAMILY as INSTAFLOW
from .model_sampling import samples_as_or_unpatched
from .sampling_guards import check_latent, check_memory

INVERTED_KEY = "instaflow_inversion"  # LATENT dict key: {"steps", "cfg", "fixed_point_iterations"}
_WHO = "InstaFlowInversion"


class _VelocityReadout:
    """Mixin over a model_sampling class: the model call returns the velocity instead of denoised."""

    def calculate_denoised(self, sigma, model_output, model_input):
        return super().calculate_denoised(torch.ones_like(sigma), model_output, torch.zeros_like(model_input))


_READOUT_CLASSES: dict[type, type] = {}


def _readout_class(base: type) -> type:
    if base not in _READOUT_CLASSES:
        _READOUT_CLASSES[base] = type(base.__name__ + "VelocityReadout", (_VelocityReadout, base), {})
    return _READOUT_CLASSES[base]


def with_velocity_readout(model):
    """A clone of `model` whose model calls return InstaFlow's velocity (see the module docstring)."""
    sampling = copy.deepcopy(model.get_model_object("model_sampling"))  # a small module: sigma tables only
    sampling.__class__ = _readout_class(type(sampling))
    readout = model.clone()
    readout.add_object_patch("model_sampling", sampling)
    return readout


def require_instaflow_model(model, who: str = _WHO):
    """The model, if patched for InstaFlow; otherwise an error that names the missing node."""
    if samples_as_or_unpatched(model, INSTAFLOW, who, "InstaFlow inversion"):
        return model
    sampling = model.get_model_object("model_sampling")
    what = (f"not patched for rectified flow (its sampling is {type(sampling).__name__}: an InstaFlow checkpoint "
            "loaded by a stock loader, or an ordinary SD1.5 model?)")
    raise ValueError(f"{who}: the model is {what}. Inversion needs an InstaFlow / 2-Rectified Flow model patched for "
                     "rectified flow: use InstaFlowLoader, or put ModelSamplingInstaFlow after the loader, and give "
                     "the same patched model to the sampler that regenerates the image.")


class InvertedNoise:
    """NOISE for SamplerCustomAdvanced: the inverted latent, in the model's internal latent space."""

    def __init__(self, noise: torch.Tensor):
        self.noise = noise
        self.seed = 0  # read by SamplerCustomAdvanced for samplers with randomness of their own; unused by Euler

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        latent = input_latent["samples"]
        if getattr(latent, "is_nested", False) or tuple(latent.shape) != tuple(self.noise.shape):
            shape = "a nested latent" if getattr(latent, "is_nested", False) else f"shape {tuple(latent.shape)}"
            raise ValueError(
                f"InstaFlowInversion NOISE: the sampler's latent_image has {shape}, but the inverted image has shape "
                f"{tuple(self.noise.shape)}. Connect the inverted image's latent (VAE Encode, or the inversion's "
                "LATENT output) to latent_image, at the same size and batch.")
        return self.noise.clone()


class _InversionSampler(comfy.samplers.Sampler):
    """Runs flow_math/inversion.py with the guider as the model; keeps the result in internal latent space."""

    def __init__(self, steps: int, fixed_point_iterations: int):
        self.steps = steps
        self.fixed_point_iterations = fixed_point_iterations
        self.result: InversionResult | None = None

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        extra_args = {k: v for k, v in extra_args.items() if k != "denoise_mask"}
        x = latent_image
        s_in = x.new_ones([x.shape[0]])
        total = model_calls(self.steps, self.fixed_point_iterations)
        bar = tqdm(total=total, disable=disable_pbar)

        def velocity(y, sigma):
            comfy.model_management.throw_exception_if_processing_interrupted()
            return model_wrap(y, s_in * sigma, **extra_args)

        def on_evaluation(done, total_calls, y):
            bar.update(1)
            if callback is not None:
                callback(done - 1, y, y, total_calls)

        try:
            self.result = invert(x, velocity, self.steps, self.fixed_point_iterations, on_evaluation)
        finally:
            bar.close()
        return self.result.latent


def _log_residuals(result: InversionResult, fixed_point_iterations: int) -> None:
    if fixed_point_iterations == 0:
        return
    finals = result.final_residuals()
    logging.info("%s: fixed-point residual (RMS, latent units) per step: %s", _WHO,
                 ", ".join(f"{r:.2e}" for r in finals))
    diverging = result.diverging_steps()
    if diverging:
        logging.warning(
            "%s: the fixed-point iteration grew at step(s) %s (residual %s); the step is too large for this model "
            "(1/steps times the velocity's Lipschitz constant is not below 1). The round trip will not be exact: "
            "raise steps, or use fixed_point_iterations 0.", _WHO, ", ".join(str(i) for i in diverging),
            "; ".join(f"{result.residuals[i][0]:.2e} -> {result.residuals[i][-1]:.2e}" for i in diverging))


def invert_latent(model, positive, negative, latent: dict, steps: int, cfg: float, fixed_point_iterations: int):
    """(InvertedNoise, LATENT dict): the noise whose `steps`-step rectified-flow sampling gives `latent`."""
    require_finite_number("cfg", cfg, _WHO)
    if steps < 1:
        raise ValueError(f"{_WHO}: steps must be at least 1, got {steps}")
    if fixed_point_iterations < 0:
        raise ValueError(f"{_WHO}: fixed_point_iterations must be 0 or more, got {fixed_point_iterations}")
    model = require_instaflow_model(model)
    latent_image = latent["samples"]
    if getattr(latent_image, "is_nested", False):
        raise ValueError(f"{_WHO}: nested (multi-part) latents are not supported")
    latent_image = comfy.sample.fix_empty_latent_channels(model, latent_image)
    check_latent(model, latent_image, _WHO)
    if negative is None:
        if not math.isclose(cfg, 1.0):
            raise ValueError(
                f"{_WHO}: cfg={cfg} needs a negative conditioning; connect the same one the regenerating sampler "
                "uses (an empty prompt is the official default), or set cfg to 1.0")
        negative = []  # cfg 1 never evaluates the unconditional branch
    check_memory(model, latent_image.shape, _WHO)

    guider = comfy.samplers.CFGGuider(with_velocity_readout(model))
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    sampler = _InversionSampler(steps, fixed_point_iterations)
    total = model_calls(steps, fixed_point_iterations)
    callback = latent_preview.prepare_callback(model, total)
    sigmas = torch.tensor(inversion_sigmas(steps), dtype=torch.float32)
    samples = guider.sample(torch.zeros_like(latent_image), latent_image, sampler, sigmas, callback=callback,
                            disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=0)
    _log_residuals(sampler.result, fixed_point_iterations)

    noise = InvertedNoise(sampler.result.latent.detach().to("cpu", torch.float32))
    out = {k: v for k, v in latent.items() if k != "noise_mask"}  # a mask would pin parts of the result to the noise
    out["samples"] = samples.to(comfy.model_management.intermediate_device())
    out[INVERTED_KEY] = {"steps": steps, "cfg": cfg, "fixed_point_iterations": fixed_point_iterations}
    return noise, out


def start_noise_of_inverted_latent(model, latent: dict, latent_image: torch.Tensor, denoise: float, who: str):
    """For a sampler node: the start noise (internal latent space) of an inverted LATENT, or None for any other latent.

    An inverted latent is the point at sigma 1, so it is used with denoise 1 only.
    """
    if INVERTED_KEY not in latent:
        return None
    if denoise < 1.0:
        raise ValueError(f"{who}: latent_image comes from InstaFlowInversion (a latent at full noise); sample it with "
                         f"denoise 1.0, not {denoise}")
    return model.model.process_latent_in(latent_image.to(torch.float32))
