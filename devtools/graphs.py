"""A small builder for ComfyUI API-format prompts, so tests read as graphs."""
from __future__ import annotations

import itertools


class Graph:
    def __init__(self):
        self._nodes: dict[str, dict] = {}
        self._ids = itertools.count(1)

    def add(self, class_type: str, **inputs) -> "Node":
        node_id = str(next(self._ids))
        self._nodes[node_id] = {"class_type": class_type, "inputs": inputs}
        return Node(node_id)

    def api(self) -> dict:
        return {k: {"class_type": v["class_type"], "inputs": dict(v["inputs"])} for k, v in self._nodes.items()}


class Node:
    def __init__(self, node_id: str):
        self.id = node_id

    def __getitem__(self, output: int) -> list:
        return [self.id, output]


def encode(g: Graph, clip, text: str) -> Node:
    return g.add("CLIPTextEncode", clip=clip, text=text)


def decode_and_save(g: Graph, samples, vae, prefix: str) -> Node:
    image = g.add("VAEDecode", samples=samples, vae=vae)
    return g.add("SaveImage", images=image[0], filename_prefix=prefix)
