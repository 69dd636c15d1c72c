"""The InstaFlow -> SDXL refiner chain of the InstaFlow gallery, in one prompt on the real server.

InstaFlowLoader + InstaFlowSampler (one step) -> VAEDecode (InstaFlow's VAE) -> ImageScale x2 ->
VAEEncode (the refiner's VAE) -> stock KSampler on the refiner (CheckpointLoaderSimple,
CLIPTextEncodeSDXLRefiner, denoise 0.3) -> VAEDecode (the refiner's VAE). Sizes 64 -> 128 px.

InstaFlow is the reduced SD1.5 stand-in (devtools/reduced_sd15.py); the refiner is the
random-weight stand-in of devtools/random_sdxl_refiner.py: ComfyUI detects
it as SDXLRefiner (EPS, SDXL latent format, bigG text encoder) like sd_xl_refiner_1.0.safetensors;
only its channel widths are smaller (the docstring there says why and what that changes).

SamplingProbe (tests/comfy_test_nodes/sampling_probe.py) logs, for every model call, the
model_sampling in force and the latent format: the handoff is checked on what actually ran.
"""
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from devtools.comparison import TOLERANCE, record_difference
from devtools.graphs import Graph, encode
from devtools.measurements import record
from devtools.ui_workflow import ui_to_api

SEED = 77
SIZE, REFINED_SIZE = 64, 128
REFINER_STEPS = 4
PROMPT = "a lighthouse on a cliff at sunset, highly detailed"
NEGATIVE = "blurry, low quality"
EXAMPLE = Path(__file__).resolve().parent.parent / "example_workflows" / "instaflow_sdxl_refiner.json"
LOADERS = {"InstaFlowLoader", "CheckpointLoaderSimple"}
# The template loads InstaFlow from its split files (UNet, text encoder, VAE: one model, three loaders)
# and the refiner from its checkpoint.
SPLIT_LOADERS = {"UNETLoader", "CLIPLoader", "VAELoader"}
SPLIT_FILES = "the split-file loaders"
SAMPLERS = {"InstaFlowSampler", "KSampler"}


def instaflow_stage(g: Graph, instaflow, probe_label=None):
    loader = g.add("InstaFlowLoader", ckpt_name=instaflow.name)
    model = loader[0]
    if probe_label is not None:
        model = g.add("SamplingProbe", model=model, label=probe_label)[0]
    sampled = g.add("InstaFlowSampler", model=model, seed=SEED, steps=1, cfg=1.0,
                    positive=encode(g, loader[1], PROMPT)[0],
                    latent_image=g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)[0], denoise=1.0)
    image = g.add("VAEDecode", samples=sampled[0], vae=loader[2])
    return image, g.add("SaveImage", images=image[0], filename_prefix="chain_instaflow")


def refiner_chain_graph(instaflow, refiner, tag):
    g = Graph()
    image, save_first = instaflow_stage(g, instaflow, probe_label=f"{tag}-instaflow")
    upscaled = g.add("ImageScale", image=image[0], upscale_method="bilinear", width=REFINED_SIZE,
                     height=REFINED_SIZE, crop="disabled")
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=refiner.single_file.name)
    model = g.add("SamplingProbe", model=ckpt[0], label=f"{tag}-refiner")

    def refiner_text(text, ascore):
        return g.add("CLIPTextEncodeSDXLRefiner", ascore=ascore, width=REFINED_SIZE, height=REFINED_SIZE,
                     text=text, clip=ckpt[1])[0]

    refined = g.add("KSampler", model=model[0], seed=SEED, steps=REFINER_STEPS, cfg=5.0, sampler_name="euler",
                    scheduler="normal", positive=refiner_text(PROMPT, 6.0), negative=refiner_text(NEGATIVE, 2.5),
                    latent_image=g.add("VAEEncode", pixels=upscaled[0], vae=ckpt[2])[0], denoise=0.3)
    final = g.add("VAEDecode", samples=refined[0], vae=ckpt[2])
    save_upscaled = g.add("SaveImage", images=upscaled[0], filename_prefix="chain_upscaled")
    save_final = g.add("SaveImage", images=final[0], filename_prefix="chain_refined")
    return g, save_first, save_upscaled, save_final


@pytest.fixture(scope="module")
def chain(comfy_server, reduced_instaflow, sdxl_refiner_models):
    """Runs the chain once; returns its images and the probe's records, by stage."""
    tag = uuid.uuid4().hex[:8]
    g, save_first, save_upscaled, save_final = refiner_chain_graph(reduced_instaflow, sdxl_refiner_models, tag)
    pids = {"server": comfy_server.proc.pid, "test process": os.getpid()}
    for pid in pids.values():
        _reset_peak_memory(pid)
    outputs = comfy_server.run(g.api(), timeout=600)
    peaks = {name: _peak_memory_gib(pid) for name, pid in pids.items()}
    if None not in peaks.values():
        record("refiner chain prompt: peak RSS (VmHWM reset before it)",
               ", ".join(f"{name} {gib:.2f} GiB" for name, gib in peaks.items()) + f", sum {sum(peaks.values()):.2f} GiB")
    log = Path(comfy_server.work_dir) / "output" / "sampling_probe.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return {
        "first": comfy_server.images(outputs, save_first.id)[0],
        "upscaled": comfy_server.images(outputs, save_upscaled.id)[0],
        "final": comfy_server.images(outputs, save_final.id)[0],
        "instaflow": [r for r in records if r["label"] == f"{tag}-instaflow"],
        "refiner": [r for r in records if r["label"] == f"{tag}-refiner"],
    }


def _reset_peak_memory(pid: int) -> None:
    """Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM), so the next read is this prompt's."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_memory_gib(pid: int):
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 2**20


def test_chain_ends_in_a_refined_image_at_twice_the_size(chain):
    assert chain["first"].shape == (SIZE, SIZE, 3)
    assert chain["final"].shape == (REFINED_SIZE, REFINED_SIZE, 3)
    assert chain["final"].std() > 0
    assert np.abs(chain["final"].astype(int) - chain["upscaled"].astype(int)).mean() > 1  # the refiner changed it


def test_instaflow_samples_as_rectified_flow_with_the_sd15_latent_format(chain):
    (call,) = chain["instaflow"]  # one step, cfg 1: a single model call
    assert call["model_class"] == "BaseModel"
    assert "InstaFlowModelSampling" in call["model_sampling_mro"]
    assert (call["latent_format"], call["latent_scale_factor"]) == ("SD15", pytest.approx(0.18215))
    assert call["sigma"] == [1.0] and call["timestep"] == [1000.0]


def test_refiner_keeps_its_own_eps_sampling_with_the_sdxl_latent_format(chain):
    calls = chain["refiner"]
    assert len(calls) == REFINER_STEPS  # euler: one (batched cond + uncond) call per step
    for call in calls:
        assert call["model_class"] == "SDXLRefiner"
        assert "EPS" in call["model_sampling_mro"] and "ModelSamplingDiscrete" in call["model_sampling_mro"]
        assert not {"InstaFlowModelSampling", "CONST"} & set(call["model_sampling_mro"])
        assert (call["latent_format"], call["latent_scale_factor"]) == ("SDXL", pytest.approx(0.13025))
    sigmas = [call["sigma"][0] for call in calls]
    timesteps = [call["timestep"][0] for call in calls]
    assert sigmas == sorted(sigmas, reverse=True)
    # EPS: sigma is the SD noise-to-signal scale and t its index on the 1000-step discrete schedule
    # (denoise 0.3 starts near t = 300), not rectified flow's t = 1000 * sigma.
    assert 200 < timesteps[0] < 400
    assert all(abs(t - 1000 * s) > 1 for t, s in zip(timesteps, sigmas))


def test_instaflow_stage_in_the_chain_equals_instaflow_alone(comfy_server, reduced_instaflow, chain):
    g = Graph()
    _, save = instaflow_stage(g, reduced_instaflow)  # no probe and no refiner: computed afresh
    alone = comfy_server.images(comfy_server.run(g.api(), timeout=600), save.id)
    assert record_difference("refiner chain: InstaFlow stage vs InstaFlow alone", [chain["first"]],
                             np.stack(alone)) <= TOLERANCE


def _loader_of(api: dict, link) -> str:
    """The model a MODEL / VAE / LATENT link comes from, following model and samples inputs: its loader node,
    or SPLIT_FILES for the split-file loaders, which load one model together."""
    node_id = link[0]
    node = api[node_id]
    if node["class_type"] in LOADERS:
        return node_id
    if node["class_type"] in SPLIT_LOADERS:
        return SPLIT_FILES
    for name in ("model", "samples"):
        if name in node["inputs"]:
            return _loader_of(api, node["inputs"][name])
    raise AssertionError(f"cannot trace node {node_id} ({node['class_type']}) to a loader")


def test_example_workflow_gives_each_model_its_own_vae(comfy_server):
    api = ui_to_api(json.loads(EXAMPLE.read_text()), comfy_server.object_info())
    families = {node_id: node["inputs"]["ckpt_name"] for node_id, node in api.items() if node["class_type"] in LOADERS}
    split = {node["class_type"] for node in api.values() if node["class_type"] in SPLIT_LOADERS}
    assert len(families) + (split == SPLIT_LOADERS) == 2, (families, split)
    for node_id, node in api.items():
        if node["class_type"] == "VAEDecode":
            assert _loader_of(api, node["inputs"]["vae"]) == _loader_of(api, node["inputs"]["samples"]), node_id
        if node["class_type"] == "VAEEncode":
            consumers = [n for n in api.values() if n["class_type"] in SAMPLERS
                         and n["inputs"].get("latent_image", [None])[0] == node_id]
            assert consumers, f"VAEEncode {node_id} feeds no sampler"
            for sampler in consumers:
                assert _loader_of(api, node["inputs"]["vae"]) == _loader_of(api, sampler["inputs"]["model"]), node_id
