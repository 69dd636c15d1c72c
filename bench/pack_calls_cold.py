"""The pack's per-prompt calls that need no model, each timed as a prompt meets them: with the CPU caches cold.

A prompt reaches the loader's listing and the sampler's schedule after a model call has swept the CPU caches,
so the same calls timed in a tight loop (tests/test_per_prompt_cost.py) read several times cheaper than they
are. Here each round first writes 64 MiB (evicting the caches, as a UNet call does) and sleeps past the
listing's recheck window (model_loaders/model_folders.py), then makes the calls in the order one warm
one-step prompt makes them on ComfyUI 0.3.75: InstaFlowLoader's define_schema (the first one checks the
directories), define_schema, validate_inputs, define_schema, fingerprint_inputs, then the sampler node's
schedule (instaflow_sigmas). 1,000 model files in the folders, as in the per-prompt test.

    "$INSTAFLOW_PYTHON" -m bench.pack_calls_cold [--pack DIR] [--rounds N]

--pack times another checkout of the pack (e.g. a worktree of an earlier commit), for a side-by-side run.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CALLS = ("schema_1", "schema_2", "validate", "schema_3", "fingerprint", "schedule")


def load_pack(pack: Path, comfyui: Path, models: Path):
    sys.path[:0] = [str(comfyui)]
    sys.argv = [sys.argv[0], "--cpu"]  # ComfyUI parses the command line at import
    import comfy.options

    comfy.options.enable_args_parsing()
    import folder_paths

    spec = importlib.util.spec_from_file_location("straight_flow_pack", pack / "__init__.py",
                                                  submodule_search_locations=[str(pack)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    for key in ("instaflow", "perflow", "checkpoints"):
        folder_paths.add_model_folder_path(key, str(models / key))
    return spec.name


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=REPO, help="the pack checkout to time (default: this one)")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    from devtools.extra_models import CLUTTER_FILES, make_clutter
    from devtools.comfyui_source import comfyui_path

    with tempfile.TemporaryDirectory(prefix="instaflow-cold-") as tmp:
        models = make_clutter(Path(tmp) / "models")
        name = load_pack(args.pack.resolve(), comfyui_path(), models)
        times = time_calls(name, args.rounds)
    total = [sum(parts) for parts in zip(*times.values())]
    print(f"{args.pack.resolve()} ({CLUTTER_FILES} files, {args.rounds} rounds), median ms: "
          + ", ".join(f"{label} {statistics.median(v):.3f}" for label, v in times.items())
          + f"; all {statistics.median(total):.3f}")


def time_calls(name: str, rounds: int) -> dict[str, list[float]]:
    import torch

    folders = importlib.import_module(f"{name}.model_loaders.model_folders")
    loader = next(n for n in importlib.import_module(f"{name}.nodes").NODES if n.__name__ == "InstaFlowLoader")
    instaflow_sigmas = importlib.import_module(f"{name}.flow_math.flows.instaflow").instaflow_sigmas
    model_name = folders.list_models("instaflow")[5]
    sweep = torch.empty(64 * 2**20, dtype=torch.uint8)
    calls = (loader.define_schema, loader.define_schema, lambda: loader.validate_inputs(model_name),
             loader.define_schema, lambda: loader.fingerprint_inputs(model_name), lambda: instaflow_sigmas(1, 1.0))
    times = {label: [] for label in CALLS}
    warmup = 5
    for round_ in range(rounds + warmup):
        sweep.add_(1)
        time.sleep(folders._RECHECK_SECONDS + 0.05)
        for label, call in zip(CALLS, calls):
            t0 = time.perf_counter()
            call()
            if round_ >= warmup:
                times[label].append((time.perf_counter() - t0) * 1e3)
    return times


if __name__ == "__main__":
    main()
