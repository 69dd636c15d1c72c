"""Speed options the device check measures that ComfyUI has no node for (torch only, no ComfyUI import).

- channels_last_copy: a copy of a UNet with its 4-D weights in channels_last (NHWC) memory format, so
  that the model's own weights, shared by every clone of a ComfyUI model, stay as they are.
- GraphedCall: one CUDA graph per input shape for a function of three tensors (latent, sigma,
  conditioning), captured on first use and replayed after; it is used only when its replay equals the
  eager call exactly (torch.equal), else the function runs eagerly and `why_not` says why.
"""
from __future__ import annotations

import copy

import torch


def channels_last_format():
    return torch.channels_last


def channels_last_copy(module: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(module).to(memory_format=torch.channels_last)


class GraphedCall:
    def __init__(self, fn, identity=lambda: None):
        self.fn, self.identity = fn, identity  # identity(): changes when the weights move (reload, offload)
        self.graphs: dict = {}
        self.captured = False
        self.why_not: str | None = None
        self.max_abs_diff: float | None = None

    def __call__(self, *args):
        if self.why_not is not None or not all(isinstance(a, torch.Tensor) and a.is_cuda for a in args):
            if self.why_not is None and not torch.cuda.is_available():
                self.why_not = "no CUDA device"
            return self.fn(*args)
        key = (self.identity(), *((a.shape, a.dtype, a.device) for a in args))
        entry = self.graphs.get(key)
        if entry is None:
            entry = self._capture(args)
            if entry is None:
                return self.fn(*args)
            self.graphs[key] = entry
        graph, static_in, static_out = entry
        for buffer, value in zip(static_in, args):
            buffer.copy_(value)
        graph.replay()
        return static_out.clone()

    def _capture(self, args):
        try:
            static_in = [a.clone() for a in args]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):  # warm-up outside the graph (cuDNN / cuBLAS choose their kernels here)
                    self.fn(*static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.fn(*static_in)
            eager = self.fn(*args)
            for buffer, value in zip(static_in, args):
                buffer.copy_(value)
            graph.replay()
            self.max_abs_diff = float((static_out.float() - eager.float()).abs().max())
            if not torch.equal(static_out, eager):
                self.why_not = f"the graph's replay differs from the eager call (max abs diff {self.max_abs_diff:.3g})"
                return None
        except Exception as e:  # noqa: BLE001 - anything that breaks capture means: run eagerly
            self.why_not = f"capture failed: {type(e).__name__}: {e}"
            return None
        self.captured = True
        return graph, static_in, static_out
