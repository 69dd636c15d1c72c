"""The model-sampling nodes' answer to a model of an architecture its family was not trained on:
patch it anyway, with a warning.

The nodes only change how a model is sampled, so they do not refuse (someone may try another
straight-flow model of a different architecture); the warning goes to the log and, as the node's
"instaflow_warning" ui output, onto the node in the browser (web/instaflow_convert.js draws it).
The check itself is model_loaders/architecture.py's, the one the loaders apply.
"""
from __future__ import annotations

import logging

from ..flow_math.flows import FlowFamily
from ..model_loaders.architecture import require_config

UI_KEY = "instaflow_warning"


def architecture_warning(model, family: FlowFamily, who: str) -> str | None:
    """Why `model` (a ModelPatcher) does not fit `family`, or None when it does or cannot be told."""
    try:
        require_config(model.model.model_config, who, family.architectures, family.needs)
    except ValueError as e:
        return str(e)
    except AttributeError:  # a wrapped or custom model without ComfyUI's model_config: nothing clear to say
        return None
    return None


def patch_with_architecture_warning(model, family: FlowFamily, who: str, patch):
    """(patch(model), warning text or None)."""
    warning = architecture_warning(model, family, who)
    if warning:
        logging.warning("%s The model is patched for %s sampling anyway; expect noise.", warning, family.name)
    return patch(model), warning
