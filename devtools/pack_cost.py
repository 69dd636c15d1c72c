"""How much time a prompt spends in this pack's own code, outside the model calls (cProfile).

Used by the in-process ComfyUI worker (devtools/comfy_inprocess.py, command "pack_cost") around ComfyUI's
own prompt validation (execution.validate_prompt, which calls every node's INPUT_TYPES) and execution
(PromptExecutor.execute: IS_CHANGED, the nodes that are not cached, saving). From the profile:

- pack_own_ms: time in functions of the pack's files, plus everything they call outside the pack and
  outside ComfyUI (the standard library: directory listings and stats; torch operations: guards,
  host copies, and any wait for the GPU that they force, i.e. syncs);
- comfy_helpers_ms: ComfyUI functions the pack calls directly (noise, model clones, memory queries,
  progress callbacks), except the sampling entry points and model calls (comfy/sample.py,
  comfy/samplers.py), which are the model work itself;
- sync_ms / syncs_per_prompt: explicit host-device syncs called from pack code (.item(), .tolist(),
  .cpu(), ...; bool(tensor) is not a call the profiler sees and stays in pack_own_ms).
On a GPU, the worker makes every model call synchronous during the profiled prompts (bench/
comfy_inprocess.py), so a sync in pack code finds the device idle and is charged its own cost, not the
model work that was queued before it.

The profiler slows every Python call a little, so both figures are upper bounds of the unprofiled cost.
"""
from __future__ import annotations

import cProfile
import os
import pstats
import re

# Callee files whose calls from pack code are "the model call" or sampling itself.
_SAMPLING_FILES = (os.path.join("comfy", "sample.py"), os.path.join("comfy", "samplers.py"))


def _is_under(filename: str, prefixes) -> bool:
    return any(filename.startswith(p) for p in prefixes)


# Builtins that wait for the device when called on a CUDA tensor (or copy to the host).
_SYNCS = {"__bool__", "item", "tolist", "cpu", "numpy", "__int__", "__float__", "synchronize"}


def analyse(profile: cProfile.Profile, pack_dirs, comfy_dir: str, prompts: int = 1, transparent_files=(),
            not_pack=()) -> dict:
    """Per-prompt figures (ms) from a profile that covered `prompts` prompts. Calls from pack code into
    `transparent_files` (devtools/pack_meter.py's wrappers) are not charged to the pack: what they lead to is
    charged where it runs (pack functions by their own time; the sampling and model calls they wrap, never).
    Files under the `not_pack` folders (the repository's bench/ and tests/) are not pack code."""
    pack = tuple(os.path.join(os.path.realpath(d), "") for d in pack_dirs) + \
        tuple(os.path.join(os.path.abspath(d), "") for d in pack_dirs)
    comfy = (os.path.join(os.path.realpath(comfy_dir), ""), os.path.join(os.path.abspath(comfy_dir), ""))
    transparent = {os.path.realpath(f) for f in transparent_files}
    excluded = tuple(os.path.join(os.path.realpath(d), "") for d in not_pack)

    def in_pack(filename):
        return _is_under(filename, pack) and not (excluded and _is_under(os.path.realpath(filename), excluded))
    stats = pstats.Stats(profile).stats
    own = helpers = syncs = 0.0
    sync_calls = 0
    own_by_function, cumulative, helper_calls = {}, {}, {}

    def pack_name(key):
        return f"{os.path.relpath(key[0], _pack_root(key[0], pack))}:{key[2]}"

    for callee, (_cc, _nc, tt, ct, callers) in stats.items():
        callee_file = callee[0]
        if in_pack(callee_file):
            own += tt
            name = pack_name(callee)
            own_by_function[name] = own_by_function.get(name, 0.0) + tt
            cumulative[name] = cumulative.get(name, 0.0) + ct
            continue
        for caller, edge in callers.items():
            if not in_pack(caller[0]):
                continue
            spent = edge[3]
            if callee_file in transparent or os.path.realpath(callee_file) in transparent:
                continue
            if _is_under(callee_file, comfy):
                if not callee_file.endswith(_SAMPLING_FILES):
                    helpers += spent
                    name = f"{os.path.relpath(callee_file, _pack_root(callee_file, comfy))}:{callee[2]}"
                    helper_calls[name] = helper_calls.get(name, 0.0) + spent
            elif callee_file == "~" and _builtin_name(callee[2]) in _SYNCS:
                syncs += spent
                sync_calls += edge[1]
            else:
                own += spent
                name = pack_name(caller)
                own_by_function[name] = own_by_function.get(name, 0.0) + spent
    per = 1000.0 / prompts

    def top(items):
        return {k: round(v * per, 4) for k, v in sorted(items.items(), key=lambda kv: -kv[1])[:12]}

    return {"pack_own_ms": own * per, "comfy_helpers_ms": helpers * per, "sync_ms": syncs * per,
            "syncs_per_prompt": sync_calls / prompts, "prompts": prompts,
            "pack_own_by_function_ms": top(own_by_function), "pack_functions_cumulative_ms": top(cumulative),
            "comfy_helpers_called_ms": top(helper_calls)}


def _builtin_name(label: str) -> str:
    """'item' from "<method 'item' of 'torch._C.TensorBase' objects>", 'synchronize' from '<built-in method ...>'."""
    match = re.match(r"<method '(\w+)' of ", label) or re.match(r"<built-in method (?:[\w.]+\.)?(\w+)>", label)
    return match.group(1) if match else label


def _pack_root(filename: str, prefixes) -> str:
    return next(p for p in prefixes if filename.startswith(p))
