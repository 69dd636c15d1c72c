"""One CUDA graph per call signature, used only where its replay is bit-identical to the eager call (torch only).

A signature is the caller's layout key (which conditioning inputs are present) plus every tensor input's
shape, dtype and device. On its first call the function is captured (capture()), the replay compared with an
eager call on the same inputs (torch.equal), and the graph kept only if they are equal; otherwise that
signature runs eagerly from then on and `on_eager` is told why once. A change of `weights_identity` (other
weights, moved weights, other patches) drops every graph, since a graph reads the tensors at the addresses it
was captured with.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

import torch

MAX_GRAPHS = 8  # each graph keeps its own activation memory; the oldest signature is dropped beyond this


def capture_cuda_graph(fn: Callable[..., torch.Tensor], static_inputs: Sequence[torch.Tensor]) -> Callable[[], torch.Tensor]:
    """Capture fn(*static_inputs) as a CUDA graph; returns replay(), which writes and returns the static output."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):  # warm-up outside the graph: cuDNN / cuBLAS choose their kernels here
            fn(*static_inputs)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_output = fn(*static_inputs)

    def replay() -> torch.Tensor:
        graph.replay()
        return static_output
    return replay


class ExactGraphCache:
    def __init__(self, capture=capture_cuda_graph, on_eager: Callable[[str], None] = lambda why: None,
                 max_graphs: int = MAX_GRAPHS):
        self.capture, self.on_eager, self.max_graphs = capture, on_eager, max_graphs
        self.graphs: OrderedDict = OrderedDict()  # signature -> (static inputs, replay)
        self.eager: dict = {}  # signature -> why it runs eagerly
        self.weights_identity = None
        self.captures = self.replays = self.eager_calls = 0

    @staticmethod
    def signature(layout, inputs: Sequence[torch.Tensor]) -> tuple:
        return (layout, *((tuple(t.shape), t.dtype, t.device) for t in inputs))

    def refuse(self, signature, why: str) -> None:
        """Run `signature` eagerly from now on (told to on_eager once)."""
        if signature not in self.eager:
            self.eager[signature] = why
            self.on_eager(why)

    def __call__(self, fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], layout=None,
                 weights_identity=None) -> torch.Tensor:
        if weights_identity != self.weights_identity:
            self.graphs.clear()
            self.eager.clear()
            self.weights_identity = weights_identity
        key = self.signature(layout, inputs)
        if key in self.eager:
            self.eager_calls += 1
            return fn(*inputs)
        entry = self.graphs.get(key)
        if entry is None:
            return self._capture_and_check(fn, inputs, key)
        self.graphs.move_to_end(key)
        static_inputs, replay = entry
        for buffer, value in zip(static_inputs, inputs):
            buffer.copy_(value)
        self.replays += 1
        return replay().clone()  # the static output is overwritten by the next replay

    def _capture_and_check(self, fn, inputs, key):
        static_inputs = [t.clone() for t in inputs]
        try:
            replay = self.capture(fn, static_inputs)
            eager = fn(*inputs)
            for buffer, value in zip(static_inputs, inputs):
                buffer.copy_(value)
            replayed = replay()
        except Exception as e:  # noqa: BLE001 - whatever breaks capture means: run this signature eagerly
            self.refuse(key, f"capture failed: {type(e).__name__}: {e}")
            self.eager_calls += 1
            return fn(*inputs)
        self.captures += 1
        if not torch.equal(replayed, eager):
            difference = (replayed.float() - eager.float()).abs().max().item()
            self.refuse(key, f"the graph's replay differs from the eager call (max abs difference {difference:.3g})")
            return eager
        self.graphs[key] = (static_inputs, replay)
        while len(self.graphs) > self.max_graphs:
            self.graphs.popitem(last=False)
        return eager
