"""The pack's node contract: what user workflows and other tooling rely on, read from /object_info.

Node ids, display names, categories, descriptions, input names and order, types, defaults, limits,
tooltips, outputs and their tooltips. A combo input's options are compared as a plain list (the
node API writes them as [options] in V1 and ["COMBO", {"options": ...}] in V3); model-name combos
are left out (they list what is on disk). tests/contract/node_contract.json is the contract as first
published (V1 nodes); tests/test_node_contract.py checks the server still serves exactly that.
"""
from __future__ import annotations

MODEL_NAME_INPUTS = {"ckpt_name", "delta_name"}
# Combos that list what ComfyUI and other packs register (samplers, schedulers: they differ between ComfyUI
# versions) or what a node wrote to disk (pairs sets) are left out too.
RUNTIME_LIST_INPUTS = {"sampler_name", "scheduler", "pairs_name"}
NODE_FIELDS = ("display_name", "category", "description", "output", "output_name", "output_is_list",
               "output_tooltips", "input_order")
SPEC_FIELDS = ("default", "min", "max", "step", "round", "tooltip", "control_after_generate")


def _input_spec(name: str, spec: list) -> dict:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list):
        kind, choices = "COMBO", kind
    else:
        choices = options.get("options") if kind == "COMBO" else None
    out = {"type": kind, **{k: options[k] for k in SPEC_FIELDS if k in options}}
    if choices is not None and name not in MODEL_NAME_INPUTS | RUNTIME_LIST_INPUTS:
        out["options"] = list(choices)
    return out


def contract_of(object_info: dict, category_prefix: str = "InstaFlow") -> dict:
    """{node id: contract} for every node whose category starts with category_prefix."""
    contract = {}
    for node_id, info in sorted(object_info.items()):
        if not info.get("category", "").startswith(category_prefix):
            continue
        entry = {k: info.get(k) for k in NODE_FIELDS}
        entry["input"] = {section: {name: _input_spec(name, spec) for name, spec in info["input"].get(section, {}).items()}
                          for section in ("required", "optional") if info["input"].get(section)}
        contract[node_id] = entry
    return contract
