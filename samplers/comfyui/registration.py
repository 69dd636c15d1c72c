"""Adds `rectified_flow` to ComfyUI's sampler lists and `instaflow` / `perflow` to its scheduler list.

Feature-detected, idempotent and append-only, so other packs that extend the same lists keep
their entries (docs/comfyui-internals.md: there is no public registry; packs append to the global
lists, as ComfyUI's own comfy_extras do for their samplers).
"""
from __future__ import annotations

import logging

import comfy.k_diffusion.sampling
import comfy.samplers

from ..euler import rectified_flow_euler
from .schedules import instaflow_scheduler, perflow_scheduler

SAMPLER_NAME = "rectified_flow"
SCHEDULERS = {"instaflow": instaflow_scheduler, "perflow": perflow_scheduler}


def _append_once(names, name):
    if names is not None and name not in names:
        names.append(name)


def _distinct(lists):
    # KSampler.SAMPLERS is SAMPLER_NAMES on current versions; append to each distinct list once.
    return {id(n): n for n in lists if n is not None}.values()


def _register_sampler():
    setattr(comfy.k_diffusion.sampling, f"sample_{SAMPLER_NAME}", rectified_flow_euler)
    for names in _distinct([getattr(comfy.samplers, "KSAMPLER_NAMES", None), getattr(comfy.samplers, "SAMPLER_NAMES", None),
                            getattr(comfy.samplers.KSampler, "SAMPLERS", None)]):
        _append_once(names, SAMPLER_NAME)


def _wrap_calculate_sigmas():
    # Before SCHEDULER_HANDLERS existed, calculate_sigmas was a fixed if/elif chain: wrap it once.
    original = comfy.samplers.calculate_sigmas
    if getattr(original, "_instaflow_wrapped", False):
        return

    def calculate_sigmas(model_sampling, scheduler_name, steps):
        handler = SCHEDULERS.get(scheduler_name)
        return handler(model_sampling, steps) if handler else original(model_sampling, scheduler_name, steps)
    calculate_sigmas._instaflow_wrapped = True
    comfy.samplers.calculate_sigmas = calculate_sigmas


def _register_schedulers():
    handlers = getattr(comfy.samplers, "SCHEDULER_HANDLERS", None)
    if handlers is None:
        _wrap_calculate_sigmas()
    for name, function in SCHEDULERS.items():
        if handlers is not None:
            handlers.setdefault(name, comfy.samplers.SchedulerHandler(function))
        for names in _distinct([getattr(comfy.samplers, "SCHEDULER_NAMES", None), getattr(comfy.samplers.KSampler, "SCHEDULERS", None)]):
            _append_once(names, name)


def register():
    try:
        _register_sampler()
        _register_schedulers()
    except Exception:  # never take ComfyUI's start-up down over a list layout we did not foresee
        logging.exception("InstaFlow pack: could not register the %s sampler / %s schedulers", SAMPLER_NAME, ", ".join(SCHEDULERS))
