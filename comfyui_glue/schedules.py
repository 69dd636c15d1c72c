"""Each family's official schedule for a model, after checking that the model samples as that family.

A schedule only means something for the convention it was made for: the InstaFlow schedule on an
EPS model (an InstaFlow checkpoint loaded by a stock loader without ModelSamplingInstaFlow), or
the PeRFlow schedule on an InstaFlow model, would silently give a wrong image, so both are refused
with the node to add. A family whose schedule is plain uniform flow sigmas (InstaFlow's) may also serve
another flow model (SD3, Flux, ...): allowed, with a warning in the log.
"""
from __future__ import annotations

import functools
import logging

import comfy.model_sampling

from ..flow_math.flows import FlowFamily
from .model_sampling import FlowModelSampling, other_family_message


def check_target(model_sampling, family: FlowFamily, who: str) -> None:
    """Raises, naming the node to add, unless `model_sampling` samples as `family`."""
    if isinstance(model_sampling, FlowModelSampling):
        if model_sampling.flow is family:
            return
        raise ValueError(other_family_message(model_sampling.flow, family, who, f"the {family.scheduler} schedule"))
    if isinstance(model_sampling, comfy.model_sampling.CONST) and family.schedule_fits_other_flows:
        logging.warning("%s: the model uses %s, not %s's sampling; the %s schedule is applied as is. If this is a %s "
                        "model, a ModelSamplingSD3/Flux node after %s has flipped its velocity sign or otherwise "
                        "replaced its convention: remove it.", who,
                        type(model_sampling).__name__, family.name, family.scheduler, family.name, family.patch_node)
        return
    kind = "another flow convention" if isinstance(model_sampling, comfy.model_sampling.CONST) else "noise prediction"
    raise ValueError(
        f"{who}: the model samples as {type(model_sampling).__name__} ({kind}), not as {family.name}. For {family.name} "
        f"checkpoints loaded by a stock loader, add {family.patch_node} (or {family.loader_node}) after the loader; for "
        "other models pick another scheduler.")


def _scheduler(family: FlowFamily, model_sampling, steps):
    check_target(model_sampling, family, f"scheduler '{family.scheduler}'")
    return family.sigmas(steps)


def scheduler_handler(family: FlowFamily):
    """What ComfyUI's scheduler list calls for `family`'s entry: (model_sampling, steps) -> sigmas."""
    return functools.partial(_scheduler, family)


def sigmas_for_model(model, family: FlowFamily, steps: int, denoise: float, who: str):
    check_target(model.get_model_object("model_sampling"), family, who)
    return family.sigmas(steps, denoise)
