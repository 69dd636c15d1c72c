"""Adds `rectified_flow` to ComfyUI's sampler lists and each flow family's schedule (`instaflow`, `perflow`)
to its scheduler list.

Idempotent and append-only (the lists and SCHEDULER_HANDLERS have the same form in every supported
ComfyUI, compat/comfyui_versions.py), so other packs that extend the same lists keep
their entries (docs/comfyui-internals.md: there is no public registry; packs append to the global
lists, as ComfyUI's own comfy_extras do for their samplers).
"""
from __future__ import annotations

import logging

import comfy.k_diffusion.sampling
import comfy.samplers

from ..flow_math.euler import rectified_flow_euler
from ..flow_math.flows import FAMILIES
from .schedules import scheduler_handler

SAMPLER_NAME = "rectified_flow"
SCHEDULERS = {family.scheduler: scheduler_handler(family) for family in FAMILIES}


def _append_once(names, name):
    if names is not None and name not in names:
        names.append(name)


def _distinct(lists):
    # KSampler.SAMPLERS is SAMPLER_NAMES, SAMPLER_NAMES a copy of KSAMPLER_NAMES plus three: append to each list once.
    return {id(n): n for n in lists}.values()


def _register_sampler():
    setattr(comfy.k_diffusion.sampling, f"sample_{SAMPLER_NAME}", rectified_flow_euler)
    for names in _distinct([comfy.samplers.KSAMPLER_NAMES, comfy.samplers.SAMPLER_NAMES, comfy.samplers.KSampler.SAMPLERS]):
        _append_once(names, SAMPLER_NAME)


def _register_schedulers():
    for name, function in SCHEDULERS.items():
        comfy.samplers.SCHEDULER_HANDLERS.setdefault(name, comfy.samplers.SchedulerHandler(function))
        for names in _distinct([comfy.samplers.SCHEDULER_NAMES, comfy.samplers.KSampler.SCHEDULERS]):
            _append_once(names, name)


def register():
    try:
        _register_sampler()
        _register_schedulers()
    except Exception:  # never take ComfyUI's start-up down over a list layout we did not foresee
        logging.exception("InstaFlow pack: could not register the %s sampler / %s schedulers", SAMPLER_NAME, ", ".join(SCHEDULERS))
