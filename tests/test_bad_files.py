"""Broken, foreign, hostile and out-of-bounds model files: a clear error naming the file, nothing executed.

Every case runs on the real server (the broken files come from devtools/robustness_models.py)
and ends by running the next valid prompt (on the reduced SD1.5 stand-in, devtools/reduced_sd15.py: the
prompt shows the server is usable, and costs a seventh of a full-size one). The name resolver's own defences (names that leave the
model folders, symlinks, link loops) are also tested directly, in a subprocess with ComfyUI's
folder_paths pointed at temporary folders, because ComfyUI's prompt validation never lets such names
reach the node.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devtools import robustness_models as rm
from devtools.graphs import Graph
from devtools.object_info import combo_options
from devtools.robustness_graphs import checkpoint_ksampler_graph, instaflow_graph
from devtools.server import PromptFailed
from devtools.server_checks import assert_next_prompt_succeeds, failure, names_a_value_not_offered, rejection

# Also runs on the oldest supported ComfyUI (.ci/run).
pytestmark = pytest.mark.oldest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def no_stale_pickle_marker(robustness_models):
    robustness_models.pickle_marker.unlink(missing_ok=True)  # left only by a broken earlier run
    yield
    assert not robustness_models.pickle_marker.exists(), "code inside a malicious pickle was executed"


def instaflow_loader_failure(server, name: str) -> PromptFailed:
    g, _save = instaflow_graph(name, prefix="never")
    return failure(server, g.api(), "InstaFlowLoader", label=f"InstaFlowLoader {name}")


def stock_loader_failure(server, name: str) -> PromptFailed:
    g, _save = checkpoint_ksampler_graph(name, prefix="never")
    return failure(server, g.api(), "CheckpointLoaderSimple", label=f"CheckpointLoaderSimple {name}")


BROKEN_SINGLE_FILES = [
    (rm.TRUNCATED, "truncated"),
    (rm.NOT_SAFETENSORS, "not a safetensors file"),
    (rm.EMPTY, "empty (0 bytes)"),
]


@pytest.mark.parametrize("name, says", BROKEN_SINGLE_FILES, ids=["truncated", "not_safetensors", "empty"])
def test_broken_single_file_is_reported_with_its_path(comfy_server, reduced_instaflow, robustness_models, name, says):
    error = instaflow_loader_failure(comfy_server, name)
    assert str(robustness_models.checkpoint(name)) in error.exception_message
    assert says in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


@pytest.mark.parametrize("name", [name for name, _ in BROKEN_SINGLE_FILES], ids=["truncated", "not_safetensors", "empty"])
def test_broken_single_file_in_stock_loader_fails_in_comfyui_and_server_recovers(comfy_server, reduced_instaflow, name):
    # ComfyUI's own behaviour (CheckpointLoaderSimple, before ModelSamplingInstaFlow runs): a red loader node.
    # Its message does not always name the file (safetensors' wording changed); the node's input does.
    error = stock_loader_failure(comfy_server, name)
    assert error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


@pytest.mark.parametrize("part", sorted(rm.MISSING_PART_FOLDERS))
def test_diffusers_folder_missing_a_part_names_the_folder_and_part(comfy_server, reduced_instaflow, robustness_models, part):
    name = rm.MISSING_PART_FOLDERS[part]
    error = instaflow_loader_failure(comfy_server, name)
    assert str(robustness_models.diffusers(name)) in error.exception_message
    assert f"no {part}/ weights" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


FOREIGN_ARCHITECTURES = [
    (rm.SDXL, "checkpoints", "SDXL"),
    (rm.SD2, "checkpoints", "SD2.x"),
    (rm.FLUX_UNET_ONLY, "checkpoints", "Flux"),
    (rm.SDXL_DIFFUSERS, "diffusers", "SDXL"),
]


@pytest.mark.parametrize("name, folder, found", FOREIGN_ARCHITECTURES, ids=["sdxl", "sd2", "flux", "sdxl_diffusers"])
def test_other_architecture_is_named_with_the_expected_one(comfy_server, reduced_instaflow, robustness_models, name, folder, found):
    error = instaflow_loader_failure(comfy_server, name)
    path = robustness_models.models_root / folder / name
    assert str(path) in error.exception_message
    assert f"this is a {found} model" in error.exception_message
    assert "need SD1.5" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_sd15_unet_only_file_says_what_is_missing_and_what_to_use(comfy_server, reduced_instaflow, robustness_models):
    error = instaflow_loader_failure(comfy_server, rm.SD15_UNET_ONLY)
    assert str(robustness_models.checkpoint(rm.SD15_UNET_ONLY)) in error.exception_message
    assert "no text encoder and no VAE" in error.exception_message
    assert "ModelSamplingInstaFlow" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_malicious_pickle_is_refused_and_its_code_never_runs(comfy_server, reduced_instaflow, robustness_models):
    error = instaflow_loader_failure(comfy_server, rm.MALICIOUS_PICKLE)
    assert str(robustness_models.checkpoint(rm.MALICIOUS_PICKLE)) in error.exception_message
    assert "refused" in error.exception_message and "io.open" in error.exception_message
    assert not robustness_models.pickle_marker.exists()
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_malicious_pickle_unet_in_diffusers_folder_is_refused(comfy_server, reduced_instaflow, robustness_models):
    error = instaflow_loader_failure(comfy_server, rm.MALICIOUS_PICKLE_DIFFUSERS)
    unet = robustness_models.diffusers(rm.MALICIOUS_PICKLE_DIFFUSERS) / "unet" / "diffusion_pytorch_model.bin"
    assert str(unet) in error.exception_message and "refused" in error.exception_message
    assert not robustness_models.pickle_marker.exists()
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_malicious_pickle_in_stock_loader_is_not_executed_either(comfy_server, reduced_instaflow, robustness_models):
    # ComfyUI loads pickles with weights_only=True on torch >= 2.4 (comfy/utils.py ALWAYS_SAFE_LOAD).
    stock_loader_failure(comfy_server, rm.MALICIOUS_PICKLE)
    assert not robustness_models.pickle_marker.exists()
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_benign_pickle_is_read_as_tensors_only_then_checked(comfy_server, reduced_instaflow, robustness_models):
    # Reading it worked (weights only): the error is about its architecture, not about the format.
    error = instaflow_loader_failure(comfy_server, rm.SD2_PICKLE)
    assert str(robustness_models.checkpoint(rm.SD2_PICKLE)) in error.exception_message
    assert "this is a SD2.x model" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


@pytest.mark.parametrize("loader, name", [
    ("InstaFlowLoader", "../../etc/passwd"), ("InstaFlowLoader", "/etc/passwd"),
    ("InstaFlowLoader", "robustness/../../../etc/passwd"), ("CheckpointLoaderSimple", "../../etc/passwd"),
])
def test_name_outside_the_model_folders_is_rejected_by_comfyui_validation(comfy_server, reduced_instaflow, loader, name):
    g = Graph()
    node = g.add(loader, ckpt_name=name)
    image = g.add("VAEDecode", samples=g.add("EmptyLatentImage", width=64, height=64, batch_size=1)[0], vae=node[2])
    g.add("SaveImage", images=image[0], filename_prefix="never")
    errors = rejection(comfy_server, g.api(), node.id)
    assert names_a_value_not_offered(errors[0], name)
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


# ---------------------------------------------------------------------------------------------- resolver


def resolver_results(comfyui_dir: Path, roots: dict[str, Path], names: list[str]) -> dict:
    """Lists and resolves `names` with model_loaders.model_folders, folder_paths pointing at `roots`."""
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(comfyui_dir)!r})
        import folder_paths
        for key, path in {json.dumps({k: str(v) for k, v in roots.items()})}.items():
            folder_paths.folder_names_and_paths[key] = ([path], set(folder_paths.supported_pt_extensions))
        import importlib, types
        pack = types.ModuleType("straight_flow_pack")  # the pack as a package, its __init__ (the nodes) not run
        pack.__path__ = [{str(REPO_ROOT)!r}]
        sys.modules[pack.__name__] = pack
        model_folders = importlib.import_module("straight_flow_pack.model_loaders.model_folders")
        out = {{"listed": model_folders.list_models("instaflow"), "resolved": {{}}}}
        for name in {names!r}:
            try:
                out["resolved"][name] = list(model_folders.resolve_model(name, "instaflow"))
            except Exception as e:
                out["resolved"][name] = [type(e).__name__, str(e)]
        print(json.dumps(out))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def model_roots(tmp_path):
    roots = {key: tmp_path / "models" / key for key in ("instaflow", "diffusers", "checkpoints")}
    for root in roots.values():
        root.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.safetensors").write_bytes(b"not for prompts")
    (roots["checkpoints"] / "model.safetensors").write_bytes(b"x")
    return roots, outside


def test_resolver_refuses_names_that_leave_the_model_folders(comfyui_dir, model_roots):
    roots, outside = model_roots
    names = ["../outside/secret.safetensors", "../../etc/passwd", "/etc/passwd", str(outside / "secret.safetensors"),
             "sub/../../outside/secret.safetensors", "..\\outside\\secret.safetensors", "model.safetensors"]
    result = resolver_results(comfyui_dir, roots, names)
    for name in names[:-1]:
        kind, message = result["resolved"][name]
        assert kind == "ValueError" and "cannot leave them" in message, (name, message)
    assert result["resolved"]["model.safetensors"] == ["single_file", str(roots["checkpoints"] / "model.safetensors")]
    assert result["listed"] == ["model.safetensors"]


def test_resolver_follows_links_placed_in_the_model_folders_but_not_dangling_ones(comfyui_dir, model_roots):
    # Deliberate: users link model files and folders from other disks into models/; whoever can place a
    # link there controls the filesystem anyway. Prompts can only pick listed names.
    roots, outside = model_roots
    (roots["instaflow"] / "linked.safetensors").symlink_to(outside / "secret.safetensors")
    (roots["instaflow"] / "dangling.safetensors").symlink_to(outside / "gone.safetensors")
    (roots["instaflow"] / "linked_dir").symlink_to(outside, target_is_directory=True)
    result = resolver_results(comfyui_dir, roots, ["linked.safetensors", "dangling.safetensors", "linked_dir/secret.safetensors"])
    assert "linked.safetensors" in result["listed"] and "linked_dir/secret.safetensors" in result["listed"]
    assert "dangling.safetensors" not in result["listed"]
    assert result["resolved"]["linked.safetensors"] == ["single_file", str(roots["instaflow"] / "linked.safetensors")]
    assert result["resolved"]["dangling.safetensors"][0] == "FileNotFoundError"


def test_resolver_listing_ends_on_a_link_loop(comfyui_dir, model_roots):
    roots, _ = model_roots
    (roots["instaflow"] / "loop").symlink_to(roots["instaflow"], target_is_directory=True)
    (roots["instaflow"] / "a.safetensors").write_bytes(b"x")
    result = resolver_results(comfyui_dir, roots, [])
    looped = [name for name in result["listed"] if name.endswith("a.safetensors")]
    assert 1 < len(looped) <= 5, looped  # bounded by the listing depth, not by the filesystem


def test_symlink_in_model_folder_is_loaded_through_the_server(comfy_server, reduced_instaflow, robustness_models,
                                                             scratch_models, tmp_path):
    outside = tmp_path / "outside.ckpt"  # a real, readable model file outside every model folder
    outside.write_bytes(robustness_models.checkpoint(rm.SD2_PICKLE).read_bytes())
    link = scratch_models.symlink("instaflow", "linked-from-elsewhere.ckpt", outside)
    scratch_models.symlink("instaflow", "dangling.safetensors", tmp_path / "missing.safetensors")
    listed = combo_options(comfy_server.object_info("InstaFlowLoader"), "InstaFlowLoader", "ckpt_name")
    assert "linked-from-elsewhere.ckpt" in listed and "dangling.safetensors" not in listed
    error = instaflow_loader_failure(comfy_server, "linked-from-elsewhere.ckpt")
    assert str(link) in error.exception_message and "SD2.x" in error.exception_message
    os.remove(link)
    os.remove(scratch_models.path("instaflow", "dangling.safetensors"))
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)
