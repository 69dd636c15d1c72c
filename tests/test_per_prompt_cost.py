"""What a warm prompt costs in the pack's own code, with 1,000 files in the model folders.

ComfyUI asks every prompt for the loaders' lists (INPUT_TYPES) and fingerprints (IS_CHANGED). The
pack caches each folder's walk with the modification times of the directories it visited, as ComfyUI's
folder_paths does (model_loaders/model_folders.py), so a warm call stats a few directories instead of
walking 1,000 files. These tests check that the cache never serves a stale answer (files added,
removed, replaced, linked) and measure the cost:
- per call, in a subprocess with ComfyUI's folder_paths (no model);
- per whole warm prompt, in-process (devtools/comfy_inprocess.py: ComfyUI's own validation and executor on
  the reduced SD1.5 stand-in at 64x64, CPU), profiled by devtools/pack_cost.py: time in pack functions
  and what they call, outside ComfyUI's sampling and the model calls.
The issue's target is under 1 ms per warm prompt; CI asserts a generous bound only (shared CPUs are
noisy) and prints the figures in the summary.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devtools.comfyui_source import with_site_paths
from devtools.graphs import Graph, decode_and_save, encode
from devtools.measurements import record

REPO_ROOT = Path(__file__).resolve().parent.parent
from devtools.extra_models import CLUTTER_FILES, make_clutter

# The target is 1 ms of pack code per warm prompt (docs/performance.md: 0.66-0.80 ms medians on the 2-core test CPU with
# nothing else running; 1.96 and 2.35 ms on the H200 machine before the last cuts). Shared CPUs double it, so
# the tests hold the pack to generous bounds that catch a regression (a full walk of the 1,000 files on
# every call would cost 20-100 ms and fail all of them): the median of PROMPTS warm prompts timed without a
# profiler, the listing and fingerprint calls of one prompt timed plainly, and a whole warm prompt's pack
# code under cProfile, which slows every Python call.
PROMPTS = int(os.environ.get("INSTAFLOW_PACK_COST_PROMPTS", "5"))  # more for a steadier median when measuring by hand
GENEROUS_MS = 5.0
GENEROUS_PROFILED_MS = 20.0


def run_in_comfy(comfyui_dir: Path, roots: dict[str, Path], body: str) -> dict:
    """Runs `body` with folder_paths pointing at `roots` and model_folders / model_fingerprint imported;
    the body sets `out` (a JSON-able dict)."""
    script = textwrap.dedent(f"""
        import json, os, sys, time
        sys.path.insert(0, {str(comfyui_dir)!r})
        import folder_paths
        for key, path in {json.dumps({k: str(v) for k, v in roots.items()})}.items():
            folder_paths.folder_names_and_paths[key] = ([path], set(folder_paths.supported_pt_extensions))
        import importlib, types
        pack = types.ModuleType("straight_flow_pack")  # the pack as a package, its __init__ (the nodes) not run
        pack.__path__ = [{str(REPO_ROOT)!r}]
        sys.modules[pack.__name__] = pack
        model_folders = importlib.import_module("straight_flow_pack.model_loaders.model_folders")
        model_fingerprint = importlib.import_module("straight_flow_pack.model_loaders.model_fingerprint").model_fingerprint
        out = {{}}
    """) + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def cluttered(tmp_path):
    root = make_clutter(tmp_path / "models")
    roots = {key: root / key for key in ("instaflow", "checkpoints", "perflow", "diffusers")}
    roots["diffusers"].mkdir(parents=True)
    pipeline = roots["instaflow"] / "my_pipeline"  # a diffusers folder (listed by name, not walked into)
    for part, weights in (("unet", "diffusion_pytorch_model.safetensors"), ("vae", "diffusion_pytorch_model.safetensors"),
                          ("text_encoder", "model.safetensors")):
        (pipeline / part).mkdir(parents=True)
        (pipeline / part / weights).write_bytes(b"{}")
    (pipeline / "model_index.json").write_text("{}")
    (roots["checkpoints"] / "one.safetensors").write_bytes(b"{}")
    return roots


def test_warm_listing_and_fingerprints_take_microseconds_with_1000_files(comfyui_dir, cluttered):
    result = run_in_comfy(comfyui_dir, cluttered, """
        CHECKPOINTS, DELTAS = model_folders.CHECKPOINTS, model_folders.DELTAS
        calls = [lambda: model_folders.list_models("instaflow"),            # InstaFlowLoader.INPUT_TYPES
                 lambda: model_folders.list_models("perflow"),              # PeRFlowLoader.INPUT_TYPES
                 lambda: model_folders.list_models("perflow", DELTAS),      # PeRFlowDeltaWeights.INPUT_TYPES
                 lambda: model_fingerprint("my_pipeline", "instaflow"),     # IS_CHANGED, diffusers folder
                 lambda: model_fingerprint("one.safetensors", "instaflow")] # IS_CHANGED, single file
        t0 = time.perf_counter()
        for call in calls:
            call()
        out["cold_ms"] = (time.perf_counter() - t0) * 1000
        time.sleep(model_folders._RACY_SECONDS + 0.1)  # past the window in which fresh directories are re-walked
        for call in calls:
            call()
        per_call = []
        for call in calls:
            t0 = time.perf_counter()
            for _ in range(200):
                call()
            per_call.append((time.perf_counter() - t0) / 200 * 1000)
        out["per_call_ms"] = per_call
        out["listed"] = len(model_folders.list_models("instaflow"))
    """)
    warm = sum(result["per_call_ms"])
    record(f"pack listing + IS_CHANGED per warm prompt, {CLUTTER_FILES} files", f"{warm:.4f} ms "
           f"(calls {[round(v, 4) for v in result['per_call_ms']]} ms; cold {result['cold_ms']:.1f} ms)")
    assert result["listed"] == 400 + 400 + 2  # instaflow + checkpoints clutter, my_pipeline, one.safetensors
    assert warm < GENEROUS_MS
    assert warm < result["cold_ms"] / 5  # the cache is what makes it cheap


def test_an_unchanged_listing_is_the_same_object_and_a_changed_one_a_new_object(comfyui_dir, cluttered):
    """The loaders' kept schemas (nodes/schema_cache.py) tell "unchanged" by identity, without comparing 800 names."""
    out = run_in_comfy(comfyui_dir, cluttered, f"""
        time.sleep(model_folders._RACY_SECONDS + 0.1)
        first = model_folders.list_models("instaflow")
        time.sleep(model_folders._RECHECK_SECONDS)  # past the window: the directories are checked again
        again = model_folders.list_models("instaflow")
        out["unchanged_is_same_object"] = again is first
        open(os.path.join({str(cluttered["instaflow"])!r}, "added.safetensors"), "wb").close()
        time.sleep(model_folders._RECHECK_SECONDS)
        changed = model_folders.list_models("instaflow")
        out["changed_is_new_object"] = changed is not first and "added.safetensors" in changed
    """)
    assert out == {"unchanged_is_same_object": True, "changed_is_new_object": True}


def test_cold_call_benchmark_times_each_call_of_a_prompt():
    done = subprocess.run([sys.executable, "-m", "bench.pack_calls_cold", "--rounds", "2"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, env=with_site_paths(os.environ))
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    record("pack calls with cold caches (bench/pack_calls_cold.py, 2 rounds)", line)
    for label in ("schema_1", "schema_2", "validate", "schema_3", "fingerprint", "schedule", "all"):
        assert f"{label} " in line, line


def test_kept_schema_is_rebuilt_when_what_it_lists_changes_and_only_then():
    spec = importlib.util.spec_from_file_location("schema_cache", REPO_ROOT / "nodes" / "schema_cache.py")
    schema_cache = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(schema_cache)
    listing = [("a.safetensors",)]
    builds = []

    class Loader:
        @classmethod
        @schema_cache.schema_kept_while(lambda: listing[0])
        def define_schema(cls, models):
            builds.append(models)
            return {"options": list(models)}

    first = Loader.define_schema()
    assert Loader.define_schema() is first  # the same listing object: kept
    listing[0] = ("a.safetensors",)  # an equal listing in a new object: still kept
    assert Loader.define_schema() is first
    listing[0] = ("a.safetensors", "b.safetensors")
    assert Loader.define_schema() == {"options": ["a.safetensors", "b.safetensors"]}
    assert builds == [("a.safetensors",), ("a.safetensors", "b.safetensors")]


def test_cached_listing_sees_every_change(comfyui_dir, cluttered):
    out = run_in_comfy(comfyui_dir, cluttered, f"""
        from pathlib import Path
        roots = {{k: Path(v) for k, v in {json.dumps({k: str(v) for k, v in cluttered.items()})}.items()}}
        def listed():  # the loader's menu: a change may take up to _RECHECK_SECONDS to show there
            time.sleep(model_folders._RECHECK_SECONDS)
            return set(model_folders.list_models("instaflow"))
        def settle():  # let the racy window pass so that the next listing is cached
            time.sleep(model_folders._RACY_SECONDS + 0.1)
            listed()
        settle()
        out["cached_same_object"] = model_folders.list_models("instaflow") is model_folders.list_models("instaflow")
        (roots["instaflow"] / "just_added.safetensors").write_bytes(b"{{}}")  # validated at once, menu checked or not
        out["validated_at_once"] = model_folders.listed_or_reason("just_added.safetensors", "instaflow") is True
        settle()

        (roots["instaflow"] / "new.safetensors").write_bytes(b"{{}}")  # added at the top
        out["added"] = "new.safetensors" in listed()
        settle()
        (roots["instaflow"] / "collection_3" / "deep.ckpt").write_bytes(b"x")  # added in a subfolder
        out["added_in_subfolder"] = "collection_3/deep.ckpt" in listed()
        settle()
        (roots["instaflow"] / "new.safetensors").unlink()
        out["removed"] = "new.safetensors" not in listed()
        settle()
        before = model_fingerprint("one.safetensors", "instaflow")
        staging = roots["checkpoints"] / ".one.incoming"
        staging.write_bytes(b"replaced")
        os.replace(staging, roots["checkpoints"] / "one.safetensors")  # a re-download renamed over the file
        out["fingerprint_changed"] = model_fingerprint("one.safetensors", "instaflow") != before
        settle()
        other = roots["diffusers"] / "other_pipeline"
        (other / "unet").mkdir(parents=True)
        out["new_diffusers_folder"] = "other_pipeline" in listed()
        settle()
        target = roots["checkpoints"].parent / "elsewhere.safetensors"
        target.write_bytes(b"x")
        os.symlink(target, roots["instaflow"] / "linked.safetensors")
        out["link_listed"] = "linked.safetensors" in listed()
        settle()
        target.unlink()  # the link's target goes: no directory of the model folders changes
        try:
            model_folders.resolve_model("linked.safetensors", "instaflow")
            out["dangling_refused"] = False
        except FileNotFoundError:
            out["dangling_refused"] = True
        out["dangling_unlisted_after_resolve"] = "linked.safetensors" not in listed()
        # A change right after a walk, within the same timestamp tick, is still seen: fresh walks are not trusted.
        (roots["instaflow"] / "quick.safetensors").write_bytes(b"x")
        listed()
        (roots["instaflow"] / "quick2.safetensors").write_bytes(b"x")
        out["racy_change_seen"] = "quick2.safetensors" in listed()
    """)
    assert out == {key: True for key in out}, out


def one_step_prompt(model_name: str, size: int = 64):
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=model_name)
    sampled = g.add("InstaFlowSampler", model=loader[0], seed=1, steps=1, cfg=1.0,
                    positive=encode(g, loader[1], "a lighthouse at dusk")[0],
                    latent_image=g.add("EmptyLatentImage", width=size, height=size, batch_size=1)[0], denoise=1.0)
    save = decode_and_save(g, sampled[0], loader[2], "per_prompt_cost")
    return g.api(), save.id, sampled.id


def test_warm_prompt_spends_a_few_milliseconds_at_most_in_pack_code(reduced_instaflow, tmp_path):
    """Measured without a profiler: the pack's code takes at most a few milliseconds of a warm prompt (target 1 ms).

    In-process ComfyUI (devtools/comfy_inprocess.py, CPU, the reduced SD1.5 stand-in at 64x64, one step, with
    1,000 clutter files in the model folders), five warm prompts that differ only in the seed, each validated
    and executed by ComfyUI's own code. devtools/pack_meter.py times them with perf_counter at every crossing
    between ComfyUI and the pack, and charges the pack everything that runs on its side: listings and schemas
    (INPUT_TYPES), validate_inputs, fingerprints (IS_CHANGED), the sampler node's guards, the Euler loop
    outside the model calls, the final finiteness check and its sync, and the ComfyUI helpers the pack calls.
    Not charged: ComfyUI's sampling entry points and seeded noise (comfy.sample), the model calls, ComfyUI's
    progress callback. The median of the five is asserted, so that one prompt preempted on a shared CPU does
    not decide. The meter adds a wrapper call per crossing (about a microsecond each, a few dozen per prompt).

    Five more prompts under cProfile (devtools/pack_cost.py) name the functions where the time goes (printed in
    the summary) and check the meter: every pack function the profile saw was entered through a metered
    crossing. The profiler slows every call, so its figure is an upper bound held to a generous bound only.
    """
    from devtools.inprocess_comfy import InProcessComfy

    clutter = make_clutter(tmp_path / "clutter")
    (tmp_path / "inprocess").mkdir()
    worker = InProcessComfy([reduced_instaflow.models_root, clutter], tmp_path / "inprocess", ["--cpu"])
    try:
        worker.wait_ready()
        prompt, save_id, sampler_id = one_step_prompt(reduced_instaflow.name)
        assert worker.ask(cmd="workflow", prompt=prompt, outputs=[save_id])["ok"]
        cost = worker.ask(cmd="pack_cost", prompt=prompt, outputs=[save_id], seed_node=sampler_id, runs=PROMPTS)
    finally:
        worker.close()
    assert "error" not in cost, cost
    record(f"pack code per warm prompt (in-process, CPU, 64x64, {CLUTTER_FILES} files, perf_counter at its entry points)",
           f"median {cost['pack_ms_median']:.3f} ms of {PROMPTS} prompts {[round(v, 3) for v in cost['pack_ms']]}; "
           f"whole prompt {cost['prompt_ms']:.0f} ms; by entry point (median prompt): {json.dumps(cost['pack_ms_by_entry'])}; "
           f"calls: {json.dumps(cost['pack_calls_per_prompt'])}")
    profiled_total = cost["pack_own_ms"] + cost["comfy_helpers_ms"] + cost["sync_ms"]
    record("pack code per warm prompt (same, under cProfile)",
           f"{cost['pack_own_ms']:.3f} ms own + {cost['comfy_helpers_ms']:.3f} ms ComfyUI helpers it calls + "
           f"{cost['sync_ms']:.3f} ms in {cost['syncs_per_prompt']:.0f} explicit syncs; whole prompt {cost['prompt_profiled_ms']:.0f} ms; "
           f"own by function: {json.dumps(cost['pack_own_by_function_ms'])}; "
           f"helpers: {json.dumps(cost['comfy_helpers_called_ms'])}")
    assert cost["pack_functions_cumulative_ms"], "the profile saw no pack code: the pack was not profiled"
    assert not cost["unmetered_entries"], f"pack code entered without the meter: {cost['unmetered_entries']}"
    assert "InstaFlowSampler.execute" in cost["pack_ms_by_entry"] and "InstaFlowLoader.define_schema" in cost["pack_ms_by_entry"]
    assert cost["pack_ms_median"] < GENEROUS_MS
    assert profiled_total < GENEROUS_PROFILED_MS
