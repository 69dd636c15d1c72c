"""Each family's official schedule for a model, after checking that the model samples as that family.

A schedule only means something for the convention it was made for: the InstaFlow schedule on an
EPS model (an InstaFlow checkpoint loaded by a stock loader without ModelSamplingInstaFlow), or
the PeRFlow schedule on an InstaFlow model, would silently give a wrong image, so both are refused
with the node to add. Another flow model (SD3, Flux, ...) may legitimately use InstaFlow's uniform
sigmas: allowed, with a warning in the log.
"""
from __future__ import annotations

import logging

import comfy.model_sampling

from ..flows.instaflow import instaflow_sigmas
from ..flows.perflow import perflow_sigmas
from .model_sampling import InstaFlowModelSampling, PeRFlowModelSampling

_PATCH_NODE = {"InstaFlow": "ModelSamplingInstaFlow (or InstaFlowLoader)",
               "PeRFlow": "ModelSamplingPeRFlow (or PeRFlowLoader)"}
_SCHEDULE_OF = {"InstaFlow": "instaflow (InstaFlowScheduler)", "PeRFlow": "perflow (PeRFlowScheduler)"}


def _refuse(model_sampling, family: str, who: str):
    other = getattr(model_sampling, "family", None)
    if other:
        raise ValueError(f"{who}: the model is patched for {other} sampling, but this is the {family} schedule; "
                         f"use the {_SCHEDULE_OF[other]} schedule, or patch the model with {_PATCH_NODE[family]}.")
    raise ValueError(
        f"{who}: the model samples as {type(model_sampling).__name__} ("
        f"{'another flow convention' if isinstance(model_sampling, comfy.model_sampling.CONST) else 'noise prediction'}"
        f"), not as {family}. For a {family} checkpoint loaded by a stock loader, add {_PATCH_NODE[family]} after the "
        "loader; for other models pick another scheduler.")


def check_instaflow_target(model_sampling, who: str) -> None:
    if isinstance(model_sampling, InstaFlowModelSampling):
        return
    if isinstance(model_sampling, comfy.model_sampling.CONST) and not getattr(model_sampling, "family", None):
        logging.warning("%s: the model uses %s, not InstaFlow's sampling; the instaflow schedule (uniform, no shift) is "
                        "applied as is. If this is an InstaFlow model, a ModelSamplingSD3/Flux node after "
                        "ModelSamplingInstaFlow has flipped its velocity sign: remove it.", who, type(model_sampling).__name__)
        return
    _refuse(model_sampling, "InstaFlow", who)


def check_perflow_target(model_sampling, who: str) -> None:
    if not isinstance(model_sampling, PeRFlowModelSampling):
        _refuse(model_sampling, "PeRFlow", who)


def instaflow_scheduler(model_sampling, steps):
    """Scheduler handler `instaflow`: the official uniform schedule."""
    check_instaflow_target(model_sampling, "scheduler 'instaflow'")
    return instaflow_sigmas(steps)


def perflow_scheduler(model_sampling, steps):
    """Scheduler handler `perflow`: the official PeRFlow set_timesteps list / 1000, then 0."""
    check_perflow_target(model_sampling, "scheduler 'perflow'")
    return perflow_sigmas(steps)


def instaflow_sigmas_for_model(model, steps: int, denoise: float, who: str):
    check_instaflow_target(model.get_model_object("model_sampling"), who)
    return instaflow_sigmas(steps, denoise)


def perflow_sigmas_for_model(model, steps: int, denoise: float, who: str):
    check_perflow_target(model.get_model_object("model_sampling"), who)
    return perflow_sigmas(steps, denoise)
