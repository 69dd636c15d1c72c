"""Convert a UI-format workflow (what the frontend saves, and example_workflows/*.json) to API format.

Widget values are matched to inputs using the node definitions from the server's /object_info,
in input order; a widget with control_after_generate (and any INT seed / noise_seed) is followed by its control
value, as the frontend saves it: a template without it loads with every later widget shifted by one.
"""
from __future__ import annotations

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
_MUTED, _BYPASSED = 2, 4
# Frontend-only nodes: they never reach the server (the frontend's graphToPrompt leaves them out too).
VIRTUAL_NODES = {"Note", "MarkdownNote"}


def _is_widget(spec) -> bool:
    kind = spec[0]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not opts.get("forceInput")


def _has_control_widget(name: str, spec) -> bool:
    """The frontend (1.32.9, widgetConstructor / migrateWidgetsValues) adds a control widget after an INT input that
    asks for one, and after any INT input named seed or noise_seed."""
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return spec[0] == "INT" and bool(opts.get("control_after_generate", name in ("seed", "noise_seed")))


def _ordered_inputs(info: dict) -> list[tuple[str, list]]:
    order = info.get("input_order") or {s: list(info["input"].get(s, {})) for s in ("required", "optional")}
    return [(name, info["input"][section][name])
            for section in ("required", "optional") for name in order.get(section, [])]


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    links = {link[0]: link for link in workflow.get("links", [])}
    api = {}
    for node in workflow["nodes"]:
        if node["type"] in VIRTUAL_NODES:
            continue
        if node.get("mode", 0) in (_MUTED, _BYPASSED):
            raise ValueError(f"node {node['id']} ({node['type']}) is muted or bypassed; not supported here")
        info = object_info.get(node["type"])
        if info is None:
            raise KeyError(f"node type {node['type']} is not installed on the server")
        inputs = {}
        values = list(node.get("widgets_values") or [])
        for name, spec in _ordered_inputs(info):
            if not _is_widget(spec) or not values:
                continue
            inputs[name] = values.pop(0)
            if _has_control_widget(name, spec):
                if not values or values[0] not in CONTROL_VALUES:
                    raise ValueError(f"node {node['id']} ({node['type']}): the frontend shows a 'control after generate' "
                                     f"widget after {name!r}, so its value must follow {name!r} in widgets_values")
                values.pop(0)
        for slot in node.get("inputs", []):
            link = links.get(slot.get("link"))
            if link is not None:
                inputs[slot["name"]] = [str(link[1]), link[2]]
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return api
