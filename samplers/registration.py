"""Adds `rectified_flow` to ComfyUI's sampler lists and `instaflow` to its scheduler list.

Feature-detected, idempotent and append-only, so other packs that extend the same lists keep
their entries (REFERENCE.md section 5).
"""
from __future__ import annotations

import logging

import comfy.k_diffusion.sampling
import comfy.samplers

from .euler import rectified_flow_euler
from .model_sampling import check_schedule_target
from .schedule import instaflow_sigmas

SAMPLER_NAME = "rectified_flow"
SCHEDULER_NAME = "instaflow"


def instaflow_scheduler(model_sampling, steps):
    """Scheduler handler: the official uniform schedule, for a model that samples as rectified flow."""
    check_schedule_target(model_sampling, f"scheduler '{SCHEDULER_NAME}'")
    return instaflow_sigmas(steps)


def _append_once(names, name):
    if names is not None and name not in names:
        names.append(name)


def _register_sampler():
    setattr(comfy.k_diffusion.sampling, f"sample_{SAMPLER_NAME}", rectified_flow_euler)
    # KSampler.SAMPLERS is SAMPLER_NAMES on current versions; append to each distinct list.
    lists = [getattr(comfy.samplers, "KSAMPLER_NAMES", None), getattr(comfy.samplers, "SAMPLER_NAMES", None),
             getattr(comfy.samplers.KSampler, "SAMPLERS", None)]
    for names in {id(n): n for n in lists if n is not None}.values():
        _append_once(names, SAMPLER_NAME)


def _register_scheduler():
    handlers = getattr(comfy.samplers, "SCHEDULER_HANDLERS", None)
    if handlers is not None:
        handlers.setdefault(SCHEDULER_NAME, comfy.samplers.SchedulerHandler(instaflow_scheduler))
    else:
        # Before SCHEDULER_HANDLERS existed, calculate_sigmas was a fixed if/elif chain: wrap it.
        original = comfy.samplers.calculate_sigmas
        if not getattr(original, "_instaflow_wrapped", False):
            def calculate_sigmas(model_sampling, scheduler_name, steps):
                if scheduler_name == SCHEDULER_NAME:
                    return instaflow_scheduler(model_sampling, steps)
                return original(model_sampling, scheduler_name, steps)
            calculate_sigmas._instaflow_wrapped = True
            comfy.samplers.calculate_sigmas = calculate_sigmas
    lists = [getattr(comfy.samplers, "SCHEDULER_NAMES", None), getattr(comfy.samplers.KSampler, "SCHEDULERS", None)]
    for names in {id(n): n for n in lists if n is not None}.values():
        _append_once(names, SCHEDULER_NAME)


def register():
    try:
        _register_sampler()
        _register_scheduler()
    except Exception:  # never take ComfyUI's start-up down over a list layout we did not foresee
        logging.exception("InstaFlow: could not register the %s sampler / %s scheduler", SAMPLER_NAME, SCHEDULER_NAME)
