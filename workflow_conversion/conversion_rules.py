"""The conversion rules (web/instaflow_conversion_rules.json), generated from the flow families' records.

Both converters read that file: the frontend's "Convert to ..." commands (web/instaflow_convert.js) and
convert_api.py. What differs per family (its model-sampling node and settings for SD1.5, its loader, its
scheduler node, the nodes that mean "already set up for a family") comes from its record; what a graph of
stock nodes looks like is written here once. `python -m workflow_conversion.conversion_rules` (from the
repository root) rewrites the file; tests/test_convert_workflow.py checks that it is up to date.
"""
from __future__ import annotations

import json
from pathlib import Path

from flow_math.flows import FAMILIES, FlowFamily, Preset

RULES_PATH = Path(__file__).resolve().parent.parent / "web" / "instaflow_conversion_rules.json"
CONVERTED_ARCHITECTURE = "SD1.5"  # the graphs the commands convert: the stock SD1.5 ones
STOCK_MODEL_SOURCES = ["CheckpointLoaderSimple", "CheckpointLoader", "DiffusersLoader", "UNETLoader"]
OTHER_ARCHITECTURES = ["ModelSamplingSD3", "ModelSamplingAuraFlow", "ModelSamplingFlux", "ModelSamplingStableCascade",
                       "ModelSamplingLTXV"]
SAMPLERS = {
    "KSampler": {"set": {"sampler_name": "$sampler_name", "scheduler": "$scheduler", "steps": "$steps", "cfg": "$cfg"}},
    "KSamplerAdvanced": {"set": {"sampler_name": "$sampler_name", "scheduler": "$scheduler", "steps": "$steps", "cfg": "$cfg"}},
    "SamplerCustom": {"set": {"cfg": "$cfg"}, "sampler_input": "sampler", "sigmas_input": "sigmas"},
    # Its model and cfg live on the guider it is fed: the model-sampling node goes before the guider's model input.
    "SamplerCustomAdvanced": {"set": {}, "guider_input": "guider", "sampler_input": "sampler", "sigmas_input": "sigmas"},
}
GUIDERS = {"CFGGuider": {"set": {"cfg": "$cfg"}}, "BasicGuider": {"set": {}}}
SAMPLER_SELECTS = {"KSamplerSelect": {"set": {"sampler_name": "$sampler_name"}}}
STOCK_SIGMA_SOURCES = {"BasicScheduler": {"keep": ["denoise"]}, "KarrasScheduler": {"keep": []}}


def _family_rules(family: FlowFamily) -> dict:
    return {
        "label": family.label,
        "model_sampling_node": {"type": family.patch_node, "set": family.model_sampling_settings(CONVERTED_ARCHITECTURE)},
        "model_sources": [*STOCK_MODEL_SOURCES, family.loader_node],
        "already_patched": list(family.patched_by),
        "other_families": [node for other in FAMILIES if other is not family for node in other.patched_by],
        "scheduler_node": {"type": family.scheduler_node, "model_input": "model", "set": {"steps": "$steps", "denoise": 1.0}},
    }


def _command(family: FlowFamily, preset: Preset) -> dict:
    settings = family.model_sampling_settings(CONVERTED_ARCHITECTURE)
    setting = f" ({', '.join(settings.values())})" if settings else ""
    return {"id": preset.command, "label": preset.menu_label,
            "tooltip": f"Insert {family.patch_node}{setting} before each SD1.5 sampler and set {preset.sampler} / "
                       f"{family.scheduler} (one undo step)."}


def conversion_rules() -> dict:
    presets = {
        preset.key: {"family": family.folder, "label": preset.label, "steps": preset.steps, "cfg": preset.cfg,
                     "sampler_name": preset.sampler, "scheduler": family.scheduler,
                     "command": _command(family, preset)}
        for family in FAMILIES for preset in family.presets}
    return {
        "about": "How 'Convert to InstaFlow / 2-Rectified Flow / PeRFlow' rewrites an SD1.5 graph. Generated from the flow "
                 "families' records by workflow_conversion/conversion_rules.py: do not edit by hand. Read by "
                 "web/instaflow_convert.js (the frontend commands) and by workflow_conversion/convert_api.py (API-format "
                 "workflows, `python <pack> convert`). A preset names its family; the family's keys join the top-level "
                 "ones for that preset. Values written as \"$name\" come from the chosen preset.",
        "version": 4,
        "presets": presets,
        "default_preset": FAMILIES[0].presets[0].key,
        "families": {family.folder: _family_rules(family) for family in FAMILIES},
        "warning_nodes": [family.patch_node for family in FAMILIES],
        "model_input": "model",
        "other_architectures": OTHER_ARCHITECTURES,
        "samplers": SAMPLERS,
        "guiders": GUIDERS,
        "sampler_selects": SAMPLER_SELECTS,
        "sigma_sources": {**{family.scheduler_node: {"keep": ["denoise"]} for family in FAMILIES}, **STOCK_SIGMA_SOURCES},
    }


def rules_text() -> str:
    return json.dumps(conversion_rules(), indent=1) + "\n"


if __name__ == "__main__":
    RULES_PATH.write_text(rules_text(), encoding="utf-8")
    print(f"wrote {RULES_PATH}")
