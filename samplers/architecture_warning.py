"""ModelSamplingInstaFlow's answer to a model that is clearly not SD1.5: patch it anyway, with a warning.

The node only changes how a model is sampled, so it does not refuse (someone may try another
rectified-flow model of a different architecture); the warning goes to the log and, as the node's
"instaflow_warning" ui output, onto the node in the browser (web/instaflow_convert.js draws it).
The check itself is model_loaders/architecture.py's, the one the InstaFlow loader applies.
"""
from __future__ import annotations

import logging

from ..model_loaders.architecture import require_sd15_model
from .model_sampling import patch_instaflow_sampling

UI_KEY = "instaflow_warning"


def architecture_warning(model, who: str) -> str | None:
    """The reason `model` (a ModelPatcher) is not SD1.5, or None when it is or cannot be told."""
    try:
        require_sd15_model(model, who)
    except ValueError as e:
        return str(e)
    except AttributeError:  # a wrapped or custom model without ComfyUI's model_config: nothing clear to say
        return None
    return None


def patch_with_architecture_warning(model, who: str):
    """(model patched for InstaFlow sampling, warning text or None)."""
    warning = architecture_warning(model, who)
    if warning:
        logging.warning("%s The model is patched for InstaFlow sampling anyway; expect noise.", warning)
    return patch_instaflow_sampling(model), warning
