"""The straight-flow families, one torch-only module each (no ComfyUI import), and the list of them.

A family module writes down its convention (what turns a UNet output into ComfyUI's sampling quantities:
the time scale, the noising, the velocity and its sign, the image estimate) and its official schedule,
and ends with FAMILY, its record (family.py). instaflow.py: InstaFlow and 2-Rectified Flow. perflow.py:
PeRFlow. docs/conventions.md puts them side by side with their sources. FAMILIES holds every module of
this folder that defines FAMILY, so a new family is one new module.
"""
from __future__ import annotations

import importlib
import pkgutil

from .family import FlowFamily, NodeText, Preset

_ORDER = ("instaflow", "perflow")  # the published families first, in the order the menus show them


def _discovered() -> tuple[FlowFamily, ...]:
    names = sorted((m.name for m in pkgutil.iter_modules(__path__)),
                   key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))
    found = [getattr(importlib.import_module(f"{__name__}.{n}"), "FAMILY", None) for n in names]
    return tuple(f for f in found if isinstance(f, FlowFamily))


FAMILIES: tuple[FlowFamily, ...] = _discovered()


def family_named(name: str) -> FlowFamily:
    """The family whose `name` ("InstaFlow") or `folder` ("instaflow") this is."""
    for family in FAMILIES:
        if name in (family.name, family.folder):
            return family
    raise KeyError(f"no flow family {name!r}; the families are {', '.join(f.name for f in FAMILIES)}")


__all__ = ["FAMILIES", "FlowFamily", "NodeText", "Preset", "family_named"]
