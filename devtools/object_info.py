"""Reading ComfyUI's /object_info the same way for V1 nodes and nodes on the versioned schema."""
from __future__ import annotations


def combo_options(object_info: dict, node: str, name: str, section: str = "required") -> list:
    """Options of a combo input: [options, {...}] for V1 nodes, ["COMBO", {"options": [...]}] for V3 nodes."""
    kind, *rest = object_info[node]["input"][section][name]
    return kind if isinstance(kind, list) else rest[0]["options"]
