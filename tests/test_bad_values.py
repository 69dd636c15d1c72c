"""Bad numbers and bad latents: rejected by ComfyUI's validation or by our sampler, never a silent bad image.

Two layers: ComfyUI's prompt validation checks each widget's min/max before anything runs (a 400 with
node_errors); it does not check NaN (NaN compares false with both bounds), a widget's step (width 70
passes), or tensors. Those are our sampler's job. Every case ends with the next valid prompt.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from devtools.graphs import Graph, decode_and_save
from devtools.measurements import record
from devtools.robustness_graphs import checkpoint_ksampler_graph, instaflow_graph
from devtools.server_checks import assert_next_prompt_succeeds, failure, rejection


def sampler_id(g: Graph) -> str:
    return next(node_id for node_id, node in g.api().items() if node["class_type"] == "InstaFlowSampler")


def test_size_not_a_multiple_of_8_is_floored_by_comfyui(comfy_server, reduced_instaflow):
    # ComfyUI's behaviour: EmptyLatentImage's step of 8 is a UI hint only; the latent is width // 8.
    g, save = instaflow_graph(reduced_instaflow.name, width=70, height=66)
    [image] = comfy_server.images(comfy_server.run(g.api()), save.id)
    assert image.shape == (64, 64, 3)


def test_size_multiple_of_8_but_not_64_works(comfy_server, reduced_instaflow):
    g, save = instaflow_graph(reduced_instaflow.name, width=72, height=88)
    [image] = comfy_server.images(comfy_server.run(g.api()), save.id)
    assert image.shape == (88, 72, 3) and image.std() > 1


@pytest.mark.parametrize("steps, error_type", [(0, "value_smaller_than_min"), (-1, "value_smaller_than_min"),
                                               (10001, "value_bigger_than_max"), (10**12, "value_bigger_than_max"),
                                               ("many", "invalid_input_type")])
def test_steps_out_of_range_are_rejected_before_running(comfy_server, reduced_instaflow, steps, error_type):
    g, _ = instaflow_graph(reduced_instaflow.name, steps=steps)
    [error] = rejection(comfy_server, g.api(), sampler_id(g))
    assert error["type"] == error_type and "steps" in error["details"]
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_scheduler_steps_zero_is_rejected_before_running(comfy_server, reduced_instaflow):
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=reduced_instaflow.name)
    scheduler = g.add("InstaFlowScheduler", model=loader[0], steps=0, denoise=1.0)
    g.add("RobustnessReportSigmas", sigmas=scheduler[0])
    [error] = rejection(comfy_server, g.api(), scheduler.id)
    assert error["type"] == "value_smaller_than_min"


@pytest.mark.parametrize("name, value, error_type", [("denoise", 1.5, "value_bigger_than_max"),
                                                     ("denoise", -0.1, "value_smaller_than_min"),
                                                     ("cfg", -1.0, "value_smaller_than_min"),
                                                     ("cfg", math.inf, "value_bigger_than_max")])
def test_float_out_of_range_is_rejected_before_running(comfy_server, reduced_instaflow, name, value, error_type):
    g, _ = instaflow_graph(reduced_instaflow.name, with_negative=True, **{name: value})
    [error] = rejection(comfy_server, g.api(), sampler_id(g))
    assert error["type"] == error_type and name in error["details"]


@pytest.mark.parametrize("name", ["cfg", "denoise"])
def test_nan_passes_comfyui_validation_and_our_sampler_names_it(comfy_server, reduced_instaflow, name):
    g, _ = instaflow_graph(reduced_instaflow.name, with_negative=True, **{name: math.nan})
    error = failure(comfy_server, g.api(), "InstaFlowSampler", label=f"InstaFlowSampler {name}=NaN")
    assert f"{name} must be a finite number, got nan" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_nan_cfg_in_stock_ksampler_is_caught_by_our_sampler_at_the_end(comfy_server, reduced_instaflow):
    g, _ = checkpoint_ksampler_graph(reduced_instaflow.single_file.name, cfg=math.nan)
    error = failure(comfy_server, g.api(), "KSampler", label="KSampler rectified_flow cfg=NaN")
    assert "sampled latent contains" in error.exception_message and "NaN" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_denoise_zero_returns_the_latent_unchanged(comfy_server, reduced_instaflow):
    latent = lambda g: g.add("RobustnessTestLatent", batch=1, channels=4, height=8, width=8, fill="normal", bad_values=0)[0]
    g, save = instaflow_graph(reduced_instaflow.name, denoise=0.0, latent=latent)
    [sampled] = comfy_server.images(comfy_server.run(g.api()), save.id)
    direct = Graph()
    loader = direct.add("InstaFlowLoader", ckpt_name=reduced_instaflow.name)
    direct_save = decode_and_save(direct, latent(direct), loader[2], "denoise_zero_direct")
    [decoded] = comfy_server.images(comfy_server.run(direct.api()), direct_save.id)
    assert np.array_equal(sampled, decoded)


@pytest.mark.parametrize("fill", ["nan", "inf"])
@pytest.mark.parametrize("denoise", [1.0, 0.5])
def test_non_finite_latent_is_reported_not_saved_black(comfy_server, reduced_instaflow, fill, denoise):
    latent = lambda g: g.add("RobustnessTestLatent", batch=1, channels=4, height=8, width=8, fill=fill, bad_values=3)[0]
    g, _ = instaflow_graph(reduced_instaflow.name, denoise=denoise, latent=latent)
    error = failure(comfy_server, g.api(), "InstaFlowSampler", label=f"InstaFlowSampler latent with {fill}")
    expected = "3 NaN and 0 infinite" if fill == "nan" else "0 NaN and 3 infinite"
    assert f"latent_image contains {expected} of 256 values" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_latent_for_another_model_is_named_with_its_shape(comfy_server, reduced_instaflow):
    latent = lambda g: g.add("RobustnessTestLatent", batch=1, channels=16, height=8, width=8, fill="normal", bad_values=0)[0]
    g, _ = instaflow_graph(reduced_instaflow.name, latent=latent)
    error = failure(comfy_server, g.api(), "InstaFlowSampler", label="InstaFlowSampler 16-channel latent")
    assert "latent_image has shape (1, 16, 8, 8)" in error.exception_message and "(batch, 4," in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def nan_model(g, model):
    return g.add("RobustnessNaNVelocityModel", model=model)[0]


def test_model_producing_nan_is_reported_by_instaflow_sampler(comfy_server, reduced_instaflow):
    g, _ = instaflow_graph(reduced_instaflow.name, model_node=nan_model)
    error = failure(comfy_server, g.api(), "InstaFlowSampler", label="InstaFlowSampler model output NaN")
    assert "sampled latent contains 256 NaN" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_model_producing_nan_is_reported_in_stock_ksampler_with_rectified_flow(comfy_server, reduced_instaflow):
    g, _ = checkpoint_ksampler_graph(reduced_instaflow.single_file.name, model_node=nan_model)
    error = failure(comfy_server, g.api(), "KSampler")
    assert "sampled latent contains 256 NaN" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_model_producing_nan_with_a_stock_sampler_is_saved_black_by_comfyui(comfy_server, reduced_instaflow):
    # A limit of what a node pack can do: stock samplers do not check, and VAEDecode turns NaN into black.
    g, save = checkpoint_ksampler_graph(reduced_instaflow.single_file.name, sampler_name="euler", scheduler="simple",
                                        model_node=nan_model)
    [image] = comfy_server.images(comfy_server.run(g.api()), save.id)
    assert image.max() == 0


def test_batch_far_beyond_memory_is_refused_before_allocating(comfy_server, reduced_instaflow):
    g, _ = instaflow_graph(reduced_instaflow.name, width=512, height=512, batch=4096)
    start = time.monotonic()
    error = failure(comfy_server, g.api(), "InstaFlowSampler", label="InstaFlowSampler batch 4096 at 512x512")
    seconds = time.monotonic() - start
    assert error.exception_type.endswith("NotEnoughMemory")
    assert "a batch of 4096 latents of 512x512 pixels needs at least" in error.exception_message
    assert "Lower batch_size" in error.exception_message
    record("batch 4096 at 512x512 refused after", f"{seconds:.1f} s")
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_comfyui_out_of_memory_path_unloads_models_and_server_recovers(comfy_server, reduced_instaflow):
    # Tests ComfyUI's handling of torch.cuda.OutOfMemoryError (raised by a test-only node, no real
    # exhaustion): the message carries ComfyUI's memory tips and the models are unloaded.
    g, _ = instaflow_graph(reduced_instaflow.name)
    sampler = sampler_id(g)
    api = g.api()
    api["oom"] = {"class_type": "RobustnessRaiseOutOfMemory", "inputs": {"samples": [sampler, 0]}}
    for node in api.values():
        if node["class_type"] == "VAEDecode":
            node["inputs"]["samples"] = ["oom", 0]
    error = failure(comfy_server, api, "RobustnessRaiseOutOfMemory")
    assert error.exception_type.endswith("OutOfMemoryError")
    assert "ran out of memory" in error.exception_message
    assert "Got an OOM, unloading all loaded models." in comfy_server.log_text()
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)
