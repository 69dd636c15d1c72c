"""Parts that do not fit an SD1.5 InstaFlow model: SDXL add-ons, stock schedulers, other flow conventions.

Some of these are ComfyUI's behaviour, which a node pack cannot change; the tests pin that behaviour
down (and it is documented in the README): an SDXL LoRA is skipped with warnings in the log, an SDXL
ControlNet fails in ComfyUI with its own message. The rest is ours: a model that is not set up for
rectified flow, or whose flow convention was replaced, is refused with a message naming the fix.
"""
from __future__ import annotations

import numpy as np
import pytest

from devtools import robustness_models as rm
from devtools.graphs import Graph, encode
from devtools.object_info import combo_options
from devtools.measurements import record
from devtools.robustness_graphs import checkpoint_ksampler_graph, instaflow_graph
from devtools.server import PromptFailed
from devtools.server_checks import assert_next_prompt_succeeds, failure


def image(server, graph_and_save) -> np.ndarray:
    g, save = graph_and_save
    return server.images(server.run(g.api()), save.id)[0]


def new_log(server, before: int) -> str:
    return server.log_text()[before:]


def test_sdxl_lora_on_instaflow_is_skipped_with_warnings_by_comfyui(comfy_server, instaflow_models):
    # The full-size model: the fake LoRA names a weight of SD1.5's second level (input_blocks.4.1) that the
    # reduced stand-in does not have.
    def with_lora(g, model):
        return g.add("LoraLoaderModelOnly", model=model, lora_name=rm.SDXL_LORA, strength_model=1.0)[0]

    plain = image(comfy_server, instaflow_graph(instaflow_models.name, prefix="no_lora"))
    log_start = len(comfy_server.log_text())
    with_sdxl_lora = image(comfy_server, instaflow_graph(instaflow_models.name, model_node=with_lora, prefix="sdxl_lora"))
    log = new_log(comfy_server, log_start)
    # ComfyUI's behaviour: keys with no SD1.5 counterpart are "not loaded", a key with an SD1.5 name but an
    # SDXL shape fails when patched; both only in the log. The image is the one without the LoRA.
    assert "lora key not loaded: lora_unet_input_blocks_7_1_transformer_blocks_5_attn1_to_q" in log
    assert "ERROR lora diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight" in log
    assert np.array_equal(plain, with_sdxl_lora)
    record("SDXL LoRA on SD1.5 InstaFlow", "ComfyUI log: " + next(line for line in log.splitlines() if "lora key not loaded" in line)[:160])


def test_sdxl_controlnet_on_instaflow_fails_with_comfyuis_message(comfy_server, reduced_instaflow):
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=reduced_instaflow.name)
    control = g.add("ControlNetLoader", control_net_name=rm.SDXL_CONTROLNET)
    hint = g.add("EmptyImage", width=64, height=64, batch_size=1, color=0x808080)
    applied = g.add("ControlNetApplyAdvanced", positive=encode(g, loader[1], "a house")[0], negative=encode(g, loader[1], "")[0],
                    control_net=control[0], image=hint[0], strength=1.0, start_percent=0.0, end_percent=1.0)
    sampled = g.add("InstaFlowSampler", model=loader[0], seed=0, steps=1, cfg=1.5, positive=applied[0], negative=applied[1],
                    latent_image=g.add("EmptyLatentImage", width=64, height=64, batch_size=1)[0], denoise=1.0)
    g.add("SaveImage", images=g.add("VAEDecode", samples=sampled[0], vae=loader[2])[0], filename_prefix="never")
    error = failure(comfy_server, g.api(), "InstaFlowSampler", label="SDXL ControlNet on SD1.5 InstaFlow")
    assert "controlnet for SDXL on SD1" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def scheduler_names(server) -> list[str]:
    return combo_options(server.object_info("BasicScheduler"), "BasicScheduler", "scheduler")


# ddim_uniform skips the first timesteps: its schedule starts below 1, i.e. from scaled-down noise, which
# InstaFlow was never trained on (documented caveat). Every other stock scheduler starts at pure noise.
STARTS_BELOW_PURE_NOISE = {"ddim_uniform"}


def test_stock_schedulers_on_a_patched_model_stay_within_rectified_flow_range(comfy_server, reduced_instaflow):
    # What happens with karras & co: they read sigma_min/sigma_max from the patched model_sampling, so every
    # stock schedule lies within [0, 1] and ends at 0, only spaced differently (karras and exponential crowd
    # the steps near 0). With 1 step they all give [1, 0].
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=reduced_instaflow.single_file.name)
    model = g.add("ModelSamplingInstaFlow", model=ckpt[0])
    reports = {}
    # `perflow` is another family's schedule: it refuses an InstaFlow model (test_perflow_scheduler_refuses_...).
    for name in [n for n in scheduler_names(comfy_server) if n != "perflow"]:
        sigmas = g.add("BasicScheduler", model=model[0], scheduler=name, steps=4, denoise=1.0)
        reports[name] = g.add("RobustnessReportSigmas", sigmas=sigmas[0]).id
    outputs = comfy_server.run(g.api())
    schedules = {name: outputs[node]["sigmas"] for name, node in reports.items()}
    for name, sigmas in schedules.items():
        record(f"4-step sigmas, scheduler {name}", ", ".join(f"{s:.3f}" for s in sigmas))
    for name, sigmas in schedules.items():
        assert sigmas[-1] == 0.0 and all(a >= b for a, b in zip(sigmas, sigmas[1:])), (name, sigmas)
        assert (sigmas[0] < 0.99) if name in STARTS_BELOW_PURE_NOISE else sigmas[0] == pytest.approx(1.0, abs=1e-3), (name, sigmas)


@pytest.mark.parametrize("sampler_name, scheduler", [("euler", "karras"), ("rectified_flow", "exponential")])
def test_one_step_with_a_stock_scheduler_equals_the_instaflow_schedule(comfy_server, reduced_instaflow, sampler_name, scheduler):
    name = reduced_instaflow.single_file.name
    expected = image(comfy_server, checkpoint_ksampler_graph(name, prefix="one_step_instaflow"))
    ours = image(comfy_server, checkpoint_ksampler_graph(name, sampler_name=sampler_name, scheduler=scheduler, prefix="one_step_stock"))
    assert np.array_equal(ours, expected)


def test_instaflow_scheduler_on_an_unpatched_model_names_the_missing_node(comfy_server, reduced_instaflow):
    g, _ = checkpoint_ksampler_graph(reduced_instaflow.single_file.name, patch=False)
    error = failure(comfy_server, g.api(), "KSampler", label="KSampler scheduler instaflow on an unpatched EPS model")
    assert "scheduler 'instaflow'" in error.exception_message and "add ModelSamplingInstaFlow" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_instaflow_scheduler_node_on_an_unpatched_model_names_the_missing_node(comfy_server, reduced_instaflow):
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=reduced_instaflow.single_file.name)
    g.add("RobustnessReportSigmas", sigmas=g.add("InstaFlowScheduler", model=ckpt[0], steps=2, denoise=1.0)[0])
    error = failure(comfy_server, g.api(), "InstaFlowScheduler")
    assert "add ModelSamplingInstaFlow" in error.exception_message


def test_rectified_flow_sampler_on_an_unpatched_model_names_the_missing_node(comfy_server, reduced_instaflow):
    g, _ = checkpoint_ksampler_graph(reduced_instaflow.single_file.name, patch=False, scheduler="karras")
    error = failure(comfy_server, g.api(), "KSampler", label="KSampler rectified_flow/karras on an unpatched EPS model")
    assert "starts at sigma 14.61" in error.exception_message and "Add ModelSamplingInstaFlow" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def model_sampling_sd3(g, model):
    return g.add("ModelSamplingSD3", model=model, shift=3.0)[0]


def test_model_sampling_sd3_after_instaflow_is_refused_by_instaflow_sampler(comfy_server, reduced_instaflow):
    g, _ = instaflow_graph(reduced_instaflow.name, model_node=model_sampling_sd3)
    error = failure(comfy_server, g.api(), "InstaFlowSampler", label="ModelSamplingSD3 after InstaFlowLoader")
    assert "not InstaFlow's" in error.exception_message and "ModelSamplingSD3" in error.exception_message
    assert "opposite sign" in error.exception_message
    assert_next_prompt_succeeds(comfy_server, reduced_instaflow.name)


def test_model_sampling_sd3_after_instaflow_in_stock_ksampler_warns_and_gives_a_wrong_image(comfy_server, reduced_instaflow):
    # Stock samplers cannot be stopped from a node pack; the instaflow scheduler logs a warning.
    name = reduced_instaflow.single_file.name
    correct = image(comfy_server, checkpoint_ksampler_graph(name, prefix="sd3_reference"))
    log_start = len(comfy_server.log_text())
    flipped = image(comfy_server, checkpoint_ksampler_graph(name, model_node=model_sampling_sd3, prefix="sd3_after"))
    assert "has flipped its velocity sign" in new_log(comfy_server, log_start)
    assert np.abs(flipped.astype(int) - correct.astype(int)).mean() > 5


def test_model_sampling_sd3_before_instaflow_is_a_legitimate_graph(comfy_server, reduced_instaflow):
    name = reduced_instaflow.single_file.name
    correct = image(comfy_server, checkpoint_ksampler_graph(name, prefix="sd3_before_reference"))

    def sd3_then_instaflow(g, model):  # checkpoint_ksampler_graph patches first; patch again after SD3
        return g.add("ModelSamplingInstaFlow", model=model_sampling_sd3(g, model))[0]

    repatched = image(comfy_server, checkpoint_ksampler_graph(name, model_node=sd3_then_instaflow, prefix="sd3_before"))
    assert np.array_equal(repatched, correct)


def test_perflow_scheduler_refuses_an_instaflow_model_naming_both_schedules(comfy_server, reduced_instaflow):
    g = Graph()
    model = g.add("ModelSamplingInstaFlow", model=g.add("CheckpointLoaderSimple", ckpt_name=reduced_instaflow.single_file.name)[0])
    sigmas = g.add("BasicScheduler", model=model[0], scheduler="perflow", steps=4, denoise=1.0)
    g.add("RobustnessReportSigmas", sigmas=sigmas[0])
    with pytest.raises(PromptFailed) as failed:
        comfy_server.run(g.api())
    assert "patched for InstaFlow" in failed.value.exception_message and "ModelSamplingPeRFlow" in failed.value.exception_message
