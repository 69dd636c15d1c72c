"""Wall time a prompt spends in the pack's own code, timed with perf_counter where control crosses the pack's border.

devtools/pack_cost.py (cProfile) names the functions, but the profiler slows every Python and builtin call, so
its totals are upper bounds, several times the real cost of code made of many small calls. This meter has no
profiler: it wraps only the places where control passes between ComfyUI and the pack, and charges the pack
the wall time during which the innermost wrapper entered is one that leads into the pack.

Into the pack (`install`):
- the node classes' methods that ComfyUI calls (define_schema, validate_inputs, fingerprint_inputs, execute;
  INPUT_TYPES / IS_CHANGED / VALIDATE_INPUTS / FUNCTION for classic nodes);
- the methods of the pack's model-sampling classes (called by ComfyUI inside sampling and the model call);
- the pack's sampler functions (its KSAMPLER objects, the sample_* functions it added to
  comfy.k_diffusion.sampling) and scheduler functions (comfy.samplers.SCHEDULER_HANDLERS).
Out of the pack, inside those: the functions of comfy.sample (the sampling entry points and the seeded
noise, which pack_cost.py also counts as sampling), and, inside the pack's sampler functions, the model call
and ComfyUI's progress callback (progress bar, previews, interrupt).
Anything else the pack calls (ComfyUI helpers such as memory queries and the schema classes, the standard
library, torch, host-device syncs) is pack time, as in pack_cost.py's pack_own_ms + comfy_helpers_ms + sync_ms.

Coverage: pack code that ComfyUI reaches through any other door would run unmetered. `uncovered_entries`
reads a cProfile profile of metered prompts and lists every pack function called from outside the pack
other than through a wrapper of this file; the test requires that list to be empty.

Overhead: each crossing costs two perf_counter calls and a list push/pop (about a microsecond, partly
charged to the pack); a prompt crosses a few dozen times.
"""
from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from collections import defaultdict

_perf_counter = time.perf_counter
_NODE_METHODS = ("define_schema", "validate_inputs", "fingerprint_inputs", "execute",
                 "INPUT_TYPES", "IS_CHANGED", "VALIDATE_INPUTS")


class PackMeter:
    """Seconds in pack code (and per entry point), accumulated while `active`."""

    def __init__(self):
        self.active = False
        self._stack: list[str | None] = []  # label of an entry into the pack, or None: out of the pack
        self._since = 0.0
        self.reset()

    def reset(self):
        self.seconds = 0.0
        self.by_entry: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def _charge(self):
        now = _perf_counter()
        if self._stack and self._stack[-1] is not None:
            spent = now - self._since
            self.seconds += spent
            self.by_entry[self._stack[-1]] += spent
        self._since = now

    def wrap(self, fn, label: str | None):
        """fn, charging its time to the pack under `label` (None: its time is not the pack's)."""
        meter = self

        def crossing(*args, **kwargs):
            if not meter.active:
                return fn(*args, **kwargs)
            meter._charge()
            meter._stack.append(label)
            if label is not None:
                meter.calls[label] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                meter._charge()
                meter._stack.pop()

        if inspect.isfunction(fn):
            functools.update_wrapper(crossing, fn)
            crossing.__signature__ = inspect.signature(fn)  # ComfyUI reads validate_inputs' arguments (getfullargspec)
        crossing.__pack_meter__ = True
        return crossing

    def wrap_sampler(self, fn, label: str):
        """A k-diffusion sampler function of the pack: its model and callback arguments are not pack time."""
        outside = functools.partial(self.wrap, label=None)

        def sampler(model, x, sigmas, *args, callback=None, **kwargs):
            return fn(outside(model), x, sigmas, *args, callback=None if callback is None else outside(callback), **kwargs)

        return self.wrap(functools.update_wrapper(sampler, fn), label)


def _under(path, prefixes) -> bool:
    return bool(path) and any(os.path.realpath(path).startswith(p) for p in prefixes)


def _pack_prefixes(pack_dirs):
    return tuple(os.path.join(os.path.realpath(d), "") for d in pack_dirs)


# The repository's dev tools (this file among them), bench/ and tests/ are not pack code.
NOT_PACK = tuple(os.path.join(os.path.realpath(os.path.join(os.path.dirname(__file__), "..", d)), "")
                 for d in ("devtools", "bench", "tests"))
# Callers that are not a door into the pack: decorators of pack functions (torch.no_grad) and builtins that run a
# pack generator expression or lambda for the pack function that called them (all(), str.join, ...).
_PASS_THROUGH = (os.path.join("torch", "utils", "_contextlib.py"),)


def _in_pack(path, prefixes) -> bool:
    return _under(path, prefixes) and not _under(path, NOT_PACK)


def _defined_in_pack(obj, prefixes) -> bool:
    code = getattr(inspect.unwrap(obj), "__code__", None)
    return code is not None and _in_pack(code.co_filename, prefixes)


def _wrap_methods(meter, cls, names, label_prefix):
    for name in names:
        raw = cls.__dict__.get(name)
        if isinstance(raw, classmethod):
            setattr(cls, name, classmethod(meter.wrap(raw.__func__, f"{label_prefix}.{name}")))
        elif isinstance(raw, staticmethod):
            setattr(cls, name, staticmethod(meter.wrap(raw.__func__, f"{label_prefix}.{name}")))
        elif inspect.isfunction(raw):
            setattr(cls, name, meter.wrap(raw, f"{label_prefix}.{name}"))


def install(meter: PackMeter, pack_dirs) -> list[str]:
    """Wraps the crossings described in the module docstring; returns what was wrapped (for the report)."""
    import comfy.k_diffusion.sampling
    import comfy.model_sampling
    import comfy.sample
    import comfy.samplers
    import nodes

    prefixes = _pack_prefixes(pack_dirs)
    wrapped = []
    for node_name, cls in nodes.NODE_CLASS_MAPPINGS.items():
        if _in_pack(getattr(sys.modules.get(cls.__module__), "__file__", None), prefixes):
            names = [n for n in (*_NODE_METHODS, getattr(cls, "FUNCTION", None)) if n and n in cls.__dict__]
            _wrap_methods(meter, cls, names, node_name)
            wrapped += [f"{node_name}.{n}" for n in names]
    for module in [m for name, m in list(sys.modules.items()) if _in_pack(getattr(m, "__file__", None), prefixes)]:
        for value in list(vars(module).values()):
            if inspect.isclass(value) and value.__module__ == module.__name__ \
                    and any(c.__module__ == comfy.model_sampling.__name__ for c in value.__mro__[1:]):
                names = [n for n, v in value.__dict__.items() if inspect.isfunction(v) and not n.startswith("__")]
                _wrap_methods(meter, value, names, value.__name__)
                wrapped += [f"{value.__name__}.{n}" for n in names]
            elif isinstance(value, comfy.samplers.KSAMPLER) and _defined_in_pack(value.sampler_function, prefixes) \
                    and not getattr(value.sampler_function, "__pack_meter__", False):
                value.sampler_function = meter.wrap_sampler(value.sampler_function, value.sampler_function.__name__)
                wrapped.append(f"KSAMPLER({value.sampler_function.__name__})")
    for name, value in list(vars(comfy.k_diffusion.sampling).items()):
        if name.startswith("sample_") and inspect.isfunction(value) and _defined_in_pack(value, prefixes):
            setattr(comfy.k_diffusion.sampling, name, meter.wrap_sampler(value, name))
            wrapped.append(f"comfy.k_diffusion.sampling.{name}")
    for name, handler in list(comfy.samplers.SCHEDULER_HANDLERS.items()):
        if _defined_in_pack(handler.handler, prefixes):
            comfy.samplers.SCHEDULER_HANDLERS[name] = handler._replace(handler=meter.wrap(handler.handler, f"scheduler {name}"))
            wrapped.append(f"scheduler {name}")
    for name, value in list(vars(comfy.sample).items()):
        if inspect.isfunction(value) and value.__module__ == comfy.sample.__name__:
            setattr(comfy.sample, name, meter.wrap(value, None))
    return wrapped


def uncovered_entries(profile, pack_dirs) -> list[str]:
    """Pack functions that code outside the pack called other than through this file's wrappers."""
    import pstats

    prefixes = _pack_prefixes(pack_dirs)
    here = os.path.realpath(__file__)
    out = set()
    for callee, (_cc, _nc, _tt, _ct, callers) in pstats.Stats(profile).stats.items():
        if not _in_pack(callee[0], prefixes):
            continue
        for caller in callers:
            if caller[0] == "~" and callee[2].startswith("<") or caller[0].endswith(_PASS_THROUGH):
                continue
            if not _in_pack(caller[0], prefixes) and os.path.realpath(caller[0]) != here:
                out.add(f"{os.path.basename(callee[0])}:{callee[2]} from {caller[0]}:{caller[2]}")
    return sorted(out)
