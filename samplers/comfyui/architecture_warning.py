"""The model-sampling nodes' answer to a model of an architecture its family was not trained on:
patch it anyway, with a warning.

The nodes only change how a model is sampled, so they do not refuse (someone may try another
straight-flow model of a different architecture); the warning goes to the log and, as the node's
"instaflow_warning" ui output, onto the node in the browser (web/instaflow_convert.js draws it).
The check itself is model_loaders/architecture.py's, the one the loaders apply.
"""
from __future__ import annotations

import logging

from ...model_loaders.architecture import EXPECTED, SD2, SD15, SDXL, require_config

UI_KEY = "instaflow_warning"

# family -> (architectures it is made for, what the warning says it needs)
_FAMILIES = {
    "InstaFlow": ((SD15,), f"InstaFlow and 2-Rectified Flow need {EXPECTED}"),
    "PeRFlow": ((SD15, SDXL, SD2), "PeRFlow is made for SD1.5, SDXL and SD2.x models"),
}


def architecture_warning(model, family: str, who: str) -> str | None:
    """Why `model` (a ModelPatcher) does not fit `family`, or None when it does or cannot be told."""
    allowed, needs = _FAMILIES[family]
    try:
        require_config(model.model.model_config, who, allowed, needs)
    except ValueError as e:
        return str(e)
    except AttributeError:  # a wrapped or custom model without ComfyUI's model_config: nothing clear to say
        return None
    return None


def patch_with_architecture_warning(model, family: str, who: str, patch):
    """(patch(model), warning text or None)."""
    warning = architecture_warning(model, family, who)
    if warning:
        logging.warning("%s The model is patched for %s sampling anyway; expect noise.", warning, family)
    return patch(model), warning
