"""InstaFlow CUDA Graph on the CPU: the graph cache's capture / exactness / invalidation logic with an injected
capture (no CUDA here), what makes a UNet call ineligible, the weights' identity, and the node's pass-through
on a real server (a CPU model is returned unchanged: the same image bit for bit).
"""
from __future__ import annotations

import subprocess
import sys
import types
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from acceleration.comfyui_cuda_graph import cuda_graph_wrapper, weights_identity, why_eager
from acceleration.cuda_graph_cache import ExactGraphCache
from devtools.graphs import Graph, decode_and_save, encode

REPO = Path(__file__).resolve().parent.parent


def unet_like(x, t, context):
    return x * t.view(-1, 1) + context.sum()


def exact_capture(fn, static_inputs):
    return lambda: fn(*static_inputs)  # a replay that reads the static inputs, as a CUDA graph does


def off_by_one_capture(fn, static_inputs):
    return lambda: fn(*static_inputs) + 1


def inputs(batch=2, value=1.0):
    return [torch.full((batch, 4), value), torch.full((batch,), 0.5), torch.ones(batch, 3)]


# ------------------------------------------------------------------------------------------ the graph cache
def test_first_call_captures_and_later_calls_replay_with_their_own_inputs():
    cache = ExactGraphCache(capture=exact_capture)
    for value in (1.0, 2.0, 3.0):
        args = inputs(value=value)
        assert torch.equal(cache(unet_like, args), unet_like(*args))
    assert (cache.captures, cache.replays, cache.eager_calls) == (1, 2, 0)


def test_each_shape_and_conditioning_layout_gets_its_own_graph():
    cache = ExactGraphCache(capture=exact_capture)
    cache(unet_like, inputs(batch=2), layout=("x", "t", "c_crossattn"))
    cache(unet_like, inputs(batch=4), layout=("x", "t", "c_crossattn"))
    cache(unet_like, inputs(batch=2), layout=("x", "t", "c_crossattn", "y"))
    cache(unet_like, inputs(batch=2), layout=("x", "t", "c_crossattn"))
    assert (cache.captures, cache.replays) == (3, 1)


def test_inexact_replay_runs_eagerly_with_one_log_line_and_is_never_replayed():
    told = []
    cache = ExactGraphCache(capture=off_by_one_capture, on_eager=told.append)
    for value in (1.0, 2.0, 3.0):
        args = inputs(value=value)
        assert torch.equal(cache(unet_like, args), unet_like(*args))
    assert cache.replays == 0 and cache.eager_calls == 2
    assert len(told) == 1 and "differs from the eager call" in told[0] and "max abs difference 1" in told[0]


def test_failed_capture_runs_eagerly_naming_the_error():
    def failing_capture(fn, static_inputs):
        raise RuntimeError("operation not permitted when stream is capturing")

    told = []
    cache = ExactGraphCache(capture=failing_capture, on_eager=told.append)
    args = inputs()
    assert torch.equal(cache(unet_like, args), unet_like(*args))
    assert told == ["capture failed: RuntimeError: operation not permitted when stream is capturing"]


def test_changed_weights_identity_drops_the_graphs_and_captures_again():
    cache = ExactGraphCache(capture=exact_capture)
    cache(unet_like, inputs(), weights_identity="lora A")
    cache(unet_like, inputs(), weights_identity="lora A")
    cache(unet_like, inputs(), weights_identity="lora B")
    assert (cache.captures, cache.replays) == (2, 1)


def test_oldest_graph_is_dropped_beyond_the_limit():
    cache = ExactGraphCache(capture=exact_capture, max_graphs=2)
    for batch in (1, 2, 3, 1):
        cache(unet_like, inputs(batch=batch))
    assert cache.captures == 4  # batch 1 was dropped when batch 3 came


def test_cache_module_loads_with_comfy_blocked():
    code = "import sys; sys.modules['comfy'] = None; sys.modules['folder_paths'] = None\nimport acceleration.cuda_graph_cache\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------ ComfyUI glue, no server
def fake_base_model():
    return types.SimpleNamespace(diffusion_model=torch.nn.Linear(2, 2), current_weight_patches_uuid=uuid.uuid4(),
                                 model_lowvram=False)


def test_weights_identity_changes_with_the_patches_uuid():
    base = fake_base_model()
    before = weights_identity(base)
    base.current_weight_patches_uuid = uuid.uuid4()  # ComfyUI patched other LoRA / delta weights in
    assert weights_identity(base) != before


def test_weights_identity_changes_when_the_weights_move():
    base = fake_base_model()
    before = weights_identity(base)
    base.diffusion_model.weight.data = base.diffusion_model.weight.data.clone()  # as an unload / reload does
    assert weights_identity(base) != before


@pytest.mark.parametrize("case, expected", [
    (dict(control={"output": [torch.zeros(1)]}), "a ControlNet is attached"),
    (dict(transformer_options={"patches": {"attn1_patch": [print]}}), "the model has attention patches (patches)"),
    (dict(tensors={"x": torch.zeros(1), "num_video_frames": 14}), "conditioning inputs that are not tensors: num_video_frames"),
    (dict(lowvram=True), "the model is partly offloaded"),
    (dict(), "the call's tensors are not on a CUDA device"),
])
def test_ineligible_calls_are_named(case, expected):
    base = fake_base_model()
    base.model_lowvram = case.get("lowvram", False)
    why = why_eager(base, case.get("tensors", {"x": torch.zeros(1)}), case.get("control"), case.get("transformer_options", {}))
    assert why is not None and why.startswith(expected)


def test_wrapper_runs_a_cpu_call_unchanged_through_comfyuis_executor():
    base = fake_base_model()
    seen = []

    def executor(*args, **kwargs):
        seen.append((args, kwargs))
        return args[0] * 2
    executor.class_obj = base
    x = torch.arange(4.0)
    out = cuda_graph_wrapper()(executor, x, torch.ones(1), None, torch.ones(1, 3), None, {}, y=None)
    assert torch.equal(out, x * 2) and len(seen) == 1 and seen[0][1] == {"y": None}


# ------------------------------------------------------------------------------------------ on a server
@pytest.mark.oldest
def test_node_passes_a_cpu_model_through_and_ksampler_gives_the_same_image(comfy_server, reduced_instaflow):
    def ksampler_graph(with_node):
        g = Graph()
        ckpt = g.add("CheckpointLoaderSimple", ckpt_name=reduced_instaflow.single_file.name)
        model = g.add("ModelSamplingInstaFlow", model=ckpt[0])
        if with_node:
            model = g.add("InstaFlowCudaGraph", model=model[0])
        sampled = g.add("KSampler", model=model[0], seed=7, steps=1, cfg=1.0, sampler_name="rectified_flow",
                        scheduler="instaflow", positive=encode(g, ckpt[1], "a cat")[0], negative=encode(g, ckpt[1], "")[0],
                        latent_image=g.add("EmptyLatentImage", width=64, height=64, batch_size=1)[0], denoise=1.0)
        return g, decode_and_save(g, sampled[0], ckpt[2], f"cuda_graph_{with_node}")

    images = []
    for with_node in (False, True):
        g, save = ksampler_graph(with_node)
        images.append(comfy_server.images(comfy_server.run(g.api()), save.id)[0])
    assert np.array_equal(images[0], images[1])
    assert "InstaFlow CUDA Graph: the model runs on cpu, not a CUDA device: passed through unchanged" in comfy_server.log_text()


# ------------------------------------------------------------------------------------------ the glue inside real samplers
# InstaFlowCudaGraphOnCpu (tests/comfy_test_nodes/cuda_graph_probe.py) runs the pack's wrapper on the CPU with a
# stand-in capture whose replay reads the static inputs, so a wrong input copy or key changes the image.
def _sampler_graph(kind, models, seed, probe, lora=None):
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=models.single_file.name)
    clip = ckpt[1]
    patch = "ModelSamplingPeRFlow" if kind == "perflow_ksampler" else "ModelSamplingInstaFlow"
    model = g.add(patch, model=ckpt[0], **({"prediction_type": "diff_eps"} if patch == "ModelSamplingPeRFlow" else {}))[0]
    if probe:
        model = g.add("InstaFlowCudaGraphOnCpu", model=model)[0]
    if lora is not None:
        loaded = g.add("LoraLoader", model=model, clip=clip, lora_name=lora, strength_model=0.8, strength_clip=0.8)
        model, clip = loaded[0], loaded[1]
    latent = g.add("EmptyLatentImage", width=64, height=64, batch_size=1)[0]
    positive, negative = encode(g, clip, "a cat")[0], encode(g, clip, "blurry")[0]
    if kind == "instaflow_sampler":
        sampled = g.add("InstaFlowSampler", model=model, seed=seed, steps=1, cfg=1.0, positive=positive,
                        latent_image=latent, denoise=1.0)
    elif kind == "sampler_custom_4_steps_cfg":
        sampled = g.add("SamplerCustom", model=model, add_noise=True, noise_seed=seed, cfg=1.5, positive=positive,
                        negative=negative, sampler=g.add("KSamplerSelect", sampler_name="rectified_flow")[0],
                        sigmas=g.add("InstaFlowScheduler", model=model, steps=4, denoise=1.0)[0], latent_image=latent)
    else:
        scheduler = "perflow" if kind == "perflow_ksampler" else "instaflow"
        sampled = g.add("KSampler", model=model, seed=seed, steps=4 if kind == "perflow_ksampler" else 1, cfg=1.0,
                        sampler_name="euler" if kind == "perflow_ksampler" else "rectified_flow", scheduler=scheduler,
                        positive=positive, negative=negative, latent_image=latent, denoise=1.0)
    return g, decode_and_save(g, sampled[0], ckpt[2], f"cuda_graph_probe_{kind}_{probe}")


def _image(server, graph_and_save):
    g, save = graph_and_save
    return server.images(server.run(g.api()), save.id)[0]


def _probe_state(server):
    import json

    return json.loads((Path(server.work_dir) / "output" / "cuda_graph_probe.json").read_text())


@pytest.mark.parametrize("kind", ["ksampler", "sampler_custom_4_steps_cfg", "instaflow_sampler", "perflow_ksampler"])
def test_wrapper_inside_each_sampler_replays_and_keeps_the_image(comfy_server, reduced_instaflow, reduced_perflow_sd15, kind):
    models = reduced_perflow_sd15 if kind == "perflow_ksampler" else reduced_instaflow
    # Back to back, so that ComfyUI keeps the probe node's output (its cache) from one prompt to the next: the second
    # prompt replays the first one's graph with its own inputs.
    with_probe = [_image(comfy_server, _sampler_graph(kind, models, seed, probe=True)) for seed in (11, 12)]
    state = _probe_state(comfy_server)
    for seed, image in zip((11, 12), with_probe):
        assert np.array_equal(image, _image(comfy_server, _sampler_graph(kind, models, seed, probe=False))), seed
    assert state["captures"] >= 1 and state["replays"] >= 1 and state["eager_reasons"] == [], state


def test_lora_after_the_node_drops_the_graphs_and_keeps_the_image(comfy_server, reduced_instaflow, reduced_loras):
    _image(comfy_server, _sampler_graph("ksampler", reduced_instaflow, 21, probe=True))
    before = _probe_state(comfy_server)["captures"]
    lora = reduced_loras.kohya.name
    with_probe = _image(comfy_server, _sampler_graph("ksampler", reduced_instaflow, 21, probe=True, lora=lora))
    assert _probe_state(comfy_server)["captures"] == before + 1  # the patched weights' identity is new
    assert np.array_equal(with_probe, _image(comfy_server, _sampler_graph("ksampler", reduced_instaflow, 21, probe=False, lora=lora)))
