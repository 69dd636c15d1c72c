"""The bundled example workflows (UI format): what they declare, and that each one runs on the real server.

Every model file a template loads from a stock folder is declared on its loader (`properties.models`),
so ComfyUI's missing-models dialog can offer it. The server tests put random test models under those
exact names (devtools/template_models.py), so the templates run as saved, apart from a smaller latent.
SD1.5 stand-ins are the reduced ones (devtools/reduced_sd15.py): a template must run and save an image here;
the equivalence modules check what it computes. Templates that load a diffusers folder (InstaFlowLoader /
PeRFlowLoader) get the reduced single file instead (both loaders take single files), or for SDXL the random
PeRFlow SDXL folder.
"""
import asyncio
import io
import json
import re
from pathlib import Path

import conftest

import numpy as np
import pytest
from PIL import Image

from devtools.input_images import input_picture, put_input_image
from devtools.object_info import combo_options
from devtools.preview_client import run_prompt_collecting_previews
from devtools.template_models import StandIns, all_declared_models, declared_models, linked_template_models
from devtools.ui_workflow import VIRTUAL_NODES, ui_to_api

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO_ROOT / "example_workflows").glob("*.json"))
TEST_SIZE = 64  # the random-weight model runs any size; small keeps CPU time down
LORA_EXAMPLE_NAME = "my_sd15_style_lora.safetensors"  # the user's own LoRA: nothing to declare or download
# Loaders that take the diffusers folder a template names (folder_stand_ins says what stands in for each).
FOLDER_LOADERS = {"InstaFlowLoader": "ckpt_name", "PeRFlowLoader": "ckpt_name"}
PERFLOW_SDXL_STAND_IN = {"perflow-sdxl-base": "perflow-random-sdxl"}
# Loaders whose model comes from a fixed model folder (so the template must declare it), and the folder.
FILE_LOADERS = {"UNETLoader": "diffusion_models", "CLIPLoader": "text_encoders", "DualCLIPLoader": "text_encoders",
                "VAELoader": "vae", "CheckpointLoaderSimple": "checkpoints", "ControlNetLoader": "controlnet",
                "PeRFlowDeltaWeights": "perflow"}
# Model folder keys the server knows: ComfyUI's own and the two this pack registers (model_loaders/model_folders.py).
KNOWN_FOLDERS = {"checkpoints", "diffusion_models", "text_encoders", "vae", "controlnet", "loras", "instaflow", "perflow"}
SPLIT_SUFFIX = "_split_files"
# Split-file loaders: the output they stand in for, and the diffusers-folder component(s) each declared URL reads.
SPLIT_FILE_LOADERS = {"UNETLoader": ("MODEL", ("unet/",)), "CLIPLoader": ("CLIP", ("text_encoder/",)),
                      "DualCLIPLoader": ("CLIP", ("text_encoder/", "text_encoder_2/")), "VAELoader": ("VAE", ("vae/",))}
MODEL_SAMPLING_OF = {"InstaFlowLoader": "ModelSamplingInstaFlow", "PeRFlowLoader": "ModelSamplingPeRFlow"}
MODEL_SAMPLING_NODES = set(MODEL_SAMPLING_OF.values())
# Training templates: pairs from 2 prompts at TEST_SIZE with a 1-step teacher, then 2 training steps.
TRAINING_NODES = {"InstaFlowTrainReflowLoRA", "InstaFlowTrainDistillLoRA"}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def twin_of(path: Path) -> Path:
    return path.with_name(path.stem + SPLIT_SUFFIX + ".json")


FOLDER_TEMPLATES = [p for p in EXAMPLES if any(n["type"] in FOLDER_LOADERS for n in load(p)["nodes"])]
# The server runs every template but the twins, and this one twin: the SDXL one, whose Dual CLIP Loader no other
# server test loads (the browser tests run the SD1.5 twins of the one-step and PeRFlow templates). The other twins
# are proven equal to their folder template by test_the_split_files_twin_is_its_folder_template_...
SERVER_RUN_TWIN = "perflow_sdxl_txt2img_split_files"


def flow_model(path: Path) -> tuple[str, str]:
    """The loader and file of a template's flow model (its first folder or UNet loader), "" for none."""
    for node in load(path)["nodes"]:
        if node["type"] in (*FOLDER_LOADERS, "UNETLoader"):
            return node["type"], node["widgets_values"][0]
    return "", ""


# Templates that load the same model run one after another: ComfyUI reuses a loader's output while the next
# prompt holds the same loader with the same inputs, so each group loads its model once (a full-size SD1.5
# UNet takes about 4.5 s to load on the test machine).
SERVER_EXAMPLES = sorted((p for p in EXAMPLES if not p.stem.endswith(SPLIT_SUFFIX) or p.stem == SERVER_RUN_TWIN),
                         key=lambda p: (flow_model(p), p.stem))


def nodes_of(path: Path) -> dict:
    return {n["type"]: n for n in load(path)["nodes"]}


# ------------------------------------------------------------------------------ what the templates hold


def test_there_is_a_one_step_example():
    assert any(p.name == "instaflow_one_step_txt2img.json" for p in EXAMPLES)


def test_there_are_examples_for_2rf_img2img_interpolation_and_the_refiner_chain():
    assert {"instaflow_2rf_multistep.json", "instaflow_img2img.json", "instaflow_latent_interpolation.json",
            "instaflow_sdxl_refiner.json"} <= {p.name for p in EXAMPLES}


def test_there_are_examples_for_reflow_and_distillation_training():
    assert {"instaflow_reflow_a_finetune.json", "instaflow_distill_to_one_step.json"} <= {p.name for p in EXAMPLES}


def test_there_are_examples_for_controlnet_lora_and_weight_delta():
    assert {"instaflow_controlnet.json", "instaflow_lora.json", "instaflow_weight_delta.json"} <= {p.name for p in EXAMPLES}


def test_there_are_perflow_examples_with_the_official_settings():
    """PeRFlow's official settings: SD1.5 4 steps cfg 4.5 at 512, SDXL 6 steps cfg 2.0 at 1024, euler + perflow."""
    expected = {"perflow_sd15_txt2img": (4, 4.5, 512), "perflow_sdxl_txt2img": (6, 2.0, 1024),
                "perflow_delta_on_finetune": (4, 4.5, 512)}
    for name, (steps, cfg, size) in expected.items():
        for variant in ([name, name + SPLIT_SUFFIX] if name != "perflow_delta_on_finetune" else [name]):
            nodes = nodes_of(REPO_ROOT / "example_workflows" / f"{variant}.json")
            seed, _control, *values = nodes["KSampler"]["widgets_values"]
            assert values == [steps, cfg, "euler", "perflow", 1.0], variant
            assert nodes["EmptyLatentImage"]["widgets_values"][:2] == [size, size], variant
    delta = nodes_of(REPO_ROOT / "example_workflows" / "perflow_delta_on_finetune.json")
    assert delta["PeRFlowDeltaWeights"]["widgets_values"] == ["perflow_sd15_delta_weights_v0-1.safetensors", 1.0]
    assert nodes_of(REPO_ROOT / "example_workflows" / "perflow_sd15_txt2img_split_files.json")[
        "ModelSamplingPeRFlow"]["widgets_values"] == ["diff_eps"]
    assert nodes_of(REPO_ROOT / "example_workflows" / "perflow_sdxl_txt2img_split_files.json")[
        "ModelSamplingPeRFlow"]["widgets_values"] == ["ddim_eps"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_model_file_a_template_loads_is_declared_for_the_download_dialog(path):
    """Each entry: name = a widget value of its node, a Hugging Face URL of a .safetensors file, a folder the server
    knows (else the dialog says "invalid directory"); every file loader's file is declared (the user's LoRA aside)."""
    workflow = load(path)
    for entry in declared_models(workflow):
        assert entry["name"] in entry["widgets"], entry
        assert re.fullmatch(r"https://huggingface\.co/[\w.-]+/[\w.-]+/resolve/main/[\w./-]+\.safetensors", entry["url"]), entry
        assert entry["name"].endswith(".safetensors") and "/" not in entry["name"], entry
        assert entry["directory"] in KNOWN_FOLDERS, entry
        assert entry["directory"] == FILE_LOADERS[entry["node_type"]], entry
    declared = {(e["node_id"], e["name"]) for e in declared_models(workflow)}
    for node in workflow["nodes"]:
        if node["type"] in FILE_LOADERS:
            files = [v for v in node["widgets_values"] if isinstance(v, str) and v.endswith(".safetensors")]
            assert files and all((node["id"], f) in declared for f in files), f"{path.name}: node {node['id']} ({node['type']})"
        elif node["type"] == "LoraLoader":
            assert node["widgets_values"][0] == LORA_EXAMPLE_NAME


def test_one_file_name_means_one_file_across_templates():
    """Names never collide: the same name always has the same URL and folder, and two URLs never share a name."""
    seen = {}
    for path in EXAMPLES:
        for entry in declared_models(load(path)):
            key = (entry["url"], entry["directory"])
            assert seen.setdefault(entry["name"], key) == key, f"{path.name}: {entry['name']} means two files"
    urls = [url for url, _ in seen.values()]
    assert len(urls) == len(set(urls)), "one URL under two names"


def test_every_folder_template_has_a_download_ready_split_files_twin():
    """Diffusers folders cannot go through the dialog: each template with Load InstaFlow / PeRFlow Checkpoint has a
    `<name>_split_files` twin that loads the same models as separate files."""
    assert FOLDER_TEMPLATES
    for path in FOLDER_TEMPLATES:
        assert twin_of(path).is_file(), f"{path.name} has no download-ready variant"
        assert not any(n["type"] in FOLDER_LOADERS for n in load(twin_of(path))["nodes"]), twin_of(path).name


def test_the_twin_the_server_runs_is_a_template():
    assert twin_of(REPO_ROOT / "example_workflows" / SERVER_RUN_TWIN.removesuffix(SPLIT_SUFFIX)).stem == SERVER_RUN_TWIN
    assert SERVER_RUN_TWIN in {p.stem for p in SERVER_EXAMPLES}


def model_sources(workflow: dict) -> dict:
    """(node id, output slot) of each model loader -> (MODEL / CLIP / VAE, the Hugging Face repository's name).

    A folder loader names the repository by its folder; a split-file loader by its declared URL, whose path must
    be that component's file (unet/, text_encoder/ + text_encoder_2/, vae/). The model-sampling node behind a
    UNETLoader (of the folder loader's family) is the MODEL's source, as the folder loader's own output is."""
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {link[0]: link for link in workflow["links"]}
    sources = {}
    for node in workflow["nodes"]:
        if node["type"] in FOLDER_LOADERS:
            for slot, kind in enumerate(("MODEL", "CLIP", "VAE")):
                sources[(node["id"], slot)] = (kind, node["widgets_values"][0])
        elif node["type"] in SPLIT_FILE_LOADERS:
            kind, components = SPLIT_FILE_LOADERS[node["type"]]
            urls = [m["url"] for m in node["properties"]["models"]]
            repos = {url.removeprefix("https://huggingface.co/").split("/resolve/main/")[0] for url in urls}
            paths = [url.split("/resolve/main/")[1] for url in urls]
            assert len(repos) == 1 and len(paths) == len(components), node
            assert all(path.startswith(c) for path, c in zip(paths, components)), (node["type"], paths)
            source = (kind, repos.pop().split("/")[1])
            if node["type"] != "UNETLoader":
                sources[(node["id"], 0)] = source
                continue
            (link_id,) = node["outputs"][0]["links"]
            sampling = nodes[links[link_id][3]]
            assert sampling["type"] in MODEL_SAMPLING_NODES, f"UNETLoader {node['id']} feeds {sampling['type']}"
            sources[(sampling["id"], 0)] = source
    return sources


def graph_with_named_models(workflow: dict) -> dict:
    """node id -> (type, mode, widgets, inputs) for every node but the model loaders (and notes); an input fed by a
    loader reads (MODEL / CLIP / VAE, repository name), any other input (node id, slot)."""
    sources = model_sources(workflow)
    loaders = {node_id for node_id, _slot in sources} | {
        n["id"] for n in workflow["nodes"] if n["type"] in SPLIT_FILE_LOADERS}
    links = {link[0]: link for link in workflow["links"]}
    graph = {}
    for node in workflow["nodes"]:
        if node["id"] in loaders or node["type"] in VIRTUAL_NODES:
            continue
        inputs = {}
        for slot in node.get("inputs") or []:
            if slot.get("link") is not None:
                origin = tuple(links[slot["link"]][1:3])
                inputs[slot["name"]] = sources.get(origin, origin)
        graph[node["id"]] = (node["type"], node.get("mode", 0), node.get("widgets_values"), inputs)
    return graph


@pytest.mark.parametrize("path", FOLDER_TEMPLATES, ids=lambda p: p.stem)
def test_the_split_files_twin_is_its_folder_template_with_each_folder_loaded_as_its_files(path):
    """Node for node the same graph, settings included; where the template reads a model from a diffusers folder,
    the twin reads the same repository's files, with the model-sampling node of that family. This is what makes a
    server run of each twin unnecessary: one twin runs (test_example_workflow_runs_and_saves_an_image), the loaders
    are stock, and the twin's declared files are checked against the folder's repository here."""
    twin = load(twin_of(path))
    assert graph_with_named_models(twin) == graph_with_named_models(load(path))
    family = {MODEL_SAMPLING_OF[n["type"]] for n in load(path)["nodes"] if n["type"] in FOLDER_LOADERS}
    assert {n["type"] for n in twin["nodes"] if n["type"] in MODEL_SAMPLING_NODES} == family
    folder_files = {e["name"] for e in declared_models(load(path))}
    assert folder_files <= {e["name"] for e in declared_models(twin)}  # the template's own files stay declared


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_template_carries_a_note_with_its_settings_files_and_licence(path):
    notes = [n["widgets_values"][0] for n in load(path)["nodes"] if n["type"] == "MarkdownNote"]
    assert len(notes) == 1, path.name
    note = notes[0]
    assert "Settings" in note or "steps" in note
    assert "CC-BY-NC-4.0" in note
    for entry in declared_models(load(path)):
        assert entry["name"] in note and entry["url"] in note and f"models/{entry['directory']}/" in note


def test_readme_says_what_each_declared_file_is():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in all_declared_models() if name not in readme]
    assert not missing, f"README does not list {missing}"


def test_the_converter_reads_widgets_as_the_frontend_does_and_refuses_a_seed_without_its_control_value():
    """The frontend puts a 'control after generate' widget after every INT seed (and noise_seed); a template saved
    without its value loads with every later widget shifted by one (pairs_per_prompt = 512, height = NaN)."""
    object_info = {"Pairs": {"input": {"required": {"seed": ["INT", {}], "pairs_per_prompt": ["INT", {}],
                                                    "width": ["INT", {}]}},
                             "input_order": {"required": ["seed", "pairs_per_prompt", "width"]}}}
    node = {"id": 1, "type": "Pairs", "inputs": [], "widgets_values": [7, "fixed", 16, 512]}
    assert ui_to_api({"nodes": [node], "links": []}, object_info)["1"]["inputs"] == {
        "seed": 7, "pairs_per_prompt": 16, "width": 512}
    with pytest.raises(ValueError, match="control after generate"):
        ui_to_api({"nodes": [{**node, "widgets_values": [7, 16, 512]}], "links": []}, object_info)


# ------------------------------------------------------------------------------ on the real server


def folder_stand_ins(object_info: dict, reduced_instaflow, reduced_perflow_sd15) -> dict:
    """Folder name in a template -> what the test server lists for it: the reduced single files for SD1.5
    (InstaFlowLoader and PeRFlowLoader take single files too; 7x faster per UNet call than full size), the
    PeRFlow SDXL test folder when listed."""
    listed = set(combo_options(object_info, "PeRFlowLoader", "ckpt_name"))
    return {"instaflow_0_9B_from_sd_1_5": reduced_instaflow.name, "2_rectified_flow_from_sd_1_5": reduced_instaflow.name,
            "perflow-sd15-dreamshaper": reduced_perflow_sd15.name,
            **{official: stand_in for official, stand_in in PERFLOW_SDXL_STAND_IN.items() if stand_in in listed}}


def skip_or_fail_for_missing_perflow_test_model(what: str) -> None:
    """Skip while the PeRFlow test models are not part of this checkout; fail once their fixture is registered."""
    message = f"the PeRFlow test model standing in for {what} is not in the models roots"
    if any("perflow" in fixture for fixture in conftest.MODEL_FIXTURES):
        pytest.fail(message)
    pytest.skip(message + ": the PeRFlow test-model fixture is not in this checkout (conftest.MODEL_FIXTURES)")


def with_test_models(prompt: dict, *, folder_stand_ins: dict, lora_name: str, server) -> dict:
    """Point folder loaders and the LoRA at the random test models, give LoadImage a picture, shrink the latent.

    Every sampler, schedule and inversion runs at most 2 steps (PeRFlow's schedules still run one per window),
    and an inversion 1 fixed-point iteration: a template must run and save an image here; the equivalence
    modules check each sampling at its settings. (The SDXL refiner's 20 steps took 26 s of its 43 s.)"""
    for node in prompt.values():
        inputs = node["inputs"]
        if isinstance(inputs.get("steps"), int):
            inputs["steps"] = min(inputs["steps"], 2)
        if node["class_type"] == "InstaFlowInversion":
            inputs["fixed_point_iterations"] = 1
        if node["class_type"] in FOLDER_LOADERS:
            name = inputs["ckpt_name"]
            if name not in folder_stand_ins:
                skip_or_fail_for_missing_perflow_test_model(f"{name} ({PERFLOW_SDXL_STAND_IN.get(name)})")
            inputs["ckpt_name"] = folder_stand_ins[name]
        elif node["class_type"] == "LoraLoader":
            inputs["lora_name"] = lora_name
        elif node["class_type"] == "LoadImage":
            inputs["image"] = put_input_image(server, "instaflow_example_input.png", input_picture(TEST_SIZE))
        elif node["class_type"] == "ImageScale":
            inputs["width"] = inputs["height"] = 2 * TEST_SIZE
        elif node["class_type"] == "InstaFlowMakePairs":
            inputs.update(width=TEST_SIZE, height=TEST_SIZE, steps=1, pairs_per_prompt=1,
                          prompts="\n".join(inputs["prompts"].splitlines()[:2]))
        elif node["class_type"] in TRAINING_NODES:
            inputs.update(steps=2, training_dtype="fp32")
        elif node["class_type"] == "EmptyLatentImage":
            inputs["width"] = inputs["height"] = TEST_SIZE
    return prompt


@pytest.fixture(scope="module")
def template_models(comfy_server, scratch_models, reduced_instaflow, reduced_perflow_sd15, reduced_controlnet,
                    reduced_weight_delta, reduced_perflow_delta, sdxl_refiner_models):
    """Every declared file that has a test stand-in, under its declared name (links in the scratch models root)."""
    stand_ins = StandIns(reduced_instaflow, reduced_perflow_sd15, reduced_controlnet, reduced_weight_delta,
                         reduced_perflow_delta, sdxl_refiner_models, comfy_server.models_roots)
    with linked_template_models(scratch_models, stand_ins) as links:
        yield links


@pytest.mark.parametrize("path", SERVER_EXAMPLES, ids=lambda p: p.stem)
def test_example_workflow_runs_and_saves_an_image(comfy_server, reduced_instaflow, reduced_perflow_sd15, reduced_loras,
                                                  template_models, path):
    workflow = load(path)
    missing = [e["name"] for e in declared_models(workflow) if e["name"] not in template_models]
    if missing:
        skip_or_fail_for_missing_perflow_test_model(", ".join(missing))
    object_info = comfy_server.object_info()
    prompt = with_test_models(ui_to_api(workflow, object_info), server=comfy_server, lora_name=reduced_loras.kohya.name,
                              folder_stand_ins=folder_stand_ins(object_info, reduced_instaflow, reduced_perflow_sd15))
    saved = [node_id for node_id, node in prompt.items() if node["class_type"] == "SaveImage"]
    live = [node_id for node_id, node in prompt.items() if node["class_type"] == "InstaFlowLivePreview"]
    assert saved or live, f"{path.name} has no SaveImage or Live Preview node"
    if not saved:  # the live template: its image goes over the websocket to the client that queued it, as a preview
        run = asyncio.run(run_prompt_collecting_previews(comfy_server.url, prompt, timeout_s=600))
        assert run.error is None, run.error
        frames = {frame.metadata["node_id"]: frame for frame in run.frames["queuer"]}
        for node_id in live:
            image = np.array(Image.open(io.BytesIO(frames[node_id].image)).convert("RGB"))
            assert image.shape == (TEST_SIZE, TEST_SIZE, 3) and image.std() > 0
        return
    outputs = comfy_server.run(prompt, timeout=600)
    for node_id in saved:
        images = comfy_server.images(outputs, node_id)
        assert images and all(np.isfinite(i).all() and i.std() > 0 for i in images)
