"""Latent interpolation (the InstaFlow video) with stock SamplerCustomAdvanced and the pack's
InstaFlowInterpolatedNoise / InstaFlowInterpolatedConditioning, on the real server.

The end frames must be exactly the single-seed, single-prompt images (stock RandomNoise graphs on
the same server), and every frame must equal the reference walk (devtools/reference_interpolation.py:
float64 slerp of ComfyUI's seeded noises, straight-line prompt embeddings, pipeline_rf.py loop).
"""
import numpy as np
import pytest
import torch

from devtools.comparison import TOLERANCE, WIDE_MARGIN, comfy_noise, mean_abs_difference, record_difference
from devtools.graphs import Graph, decode_and_save, encode
from devtools.reference_interpolation import frames_from_noise, interpolation_frames, slerp_noise
from devtools.reference_rf import ReferenceInstaFlow, to_uint8
from devtools.server import PromptFailed

SIZE = 64
FRAMES = 8
SEED_FROM, SEED_TO = 11, 22
PROMPT_FROM = "a photograph of a red sports car in the desert"
PROMPT_TO = "an oil painting of a sailing boat at night"
NEGATIVE = "blurry, low quality"


@pytest.fixture(scope="module")
def reference(reduced_instaflow):
    return ReferenceInstaFlow(reduced_instaflow.diffusers_dir)


def guided_sampling(g: Graph, model, clip, noise, positive, latent, steps=1, cfg=1.0):
    """SamplerCustomAdvanced + KSamplerSelect(rectified_flow) + InstaFlowScheduler, guided by
    BasicGuider (cfg 1, InstaFlow-0.9B) or CFGGuider with a negative prompt (2-Rectified Flow)."""
    if cfg == 1.0:
        guider = g.add("BasicGuider", model=model, conditioning=positive)
    else:
        guider = g.add("CFGGuider", model=model, positive=positive, negative=encode(g, clip, NEGATIVE)[0], cfg=cfg)
    return g.add("SamplerCustomAdvanced", noise=noise, guider=guider[0],
                 sampler=g.add("KSamplerSelect", sampler_name="rectified_flow")[0],
                 sigmas=g.add("InstaFlowScheduler", model=model, steps=steps, denoise=1.0)[0], latent_image=latent)


def walk_graph(models, steps=1, cfg=1.0, batch=FRAMES):
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=models.name)
    positive = g.add("InstaFlowInterpolatedConditioning", conditioning_from=encode(g, loader[1], PROMPT_FROM)[0],
                     conditioning_to=encode(g, loader[1], PROMPT_TO)[0], frames=FRAMES)
    noise = g.add("InstaFlowInterpolatedNoise", seed_from=SEED_FROM, seed_to=SEED_TO, frames=FRAMES)
    latent = g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=batch)
    sampled = guided_sampling(g, loader[0], loader[1], noise[0], positive[0], latent[0], steps, cfg)
    return g, decode_and_save(g, sampled[0], loader[2], "walk")


def single_image_graph(models, seed, prompt):
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=models.name)
    latent = g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)
    sampled = guided_sampling(g, loader[0], loader[1], g.add("RandomNoise", noise_seed=seed)[0],
                              encode(g, loader[1], prompt)[0], latent[0])
    return g, decode_and_save(g, sampled[0], loader[2], f"single_seed_{seed}")


def run(server, graph: Graph, save) -> list:
    return server.images(server.run(graph.api(), timeout=600), save.id)


def test_end_frames_equal_the_single_seed_single_prompt_images(comfy_server, reduced_instaflow):
    frames = run(comfy_server, *walk_graph(reduced_instaflow))
    first = run(comfy_server, *single_image_graph(reduced_instaflow, SEED_FROM, PROMPT_FROM))
    last = run(comfy_server, *single_image_graph(reduced_instaflow, SEED_TO, PROMPT_TO))
    assert len(frames) == FRAMES
    assert record_difference("walk frame 0 vs RandomNoise(seed_from)+prompt_from", frames[:1], np.stack(first)) <= TOLERANCE
    assert record_difference("walk last frame vs RandomNoise(seed_to)+prompt_to", frames[-1:], np.stack(last)) <= TOLERANCE
    middle = frames[FRAMES // 2]
    assert min(mean_abs_difference([middle], np.stack(first)), mean_abs_difference([middle], np.stack(last))) > WIDE_MARGIN


@pytest.mark.parametrize("steps, cfg", [(1, 1.0), (2, 1.5)], ids=["basic_guider_1_step", "cfg_guider_2_steps"])
def test_every_frame_equals_the_reference_walk(comfy_server, reduced_instaflow, reference, steps, cfg):
    ours = run(comfy_server, *walk_graph(reduced_instaflow, steps=steps, cfg=cfg))
    expected = to_uint8(interpolation_frames(reference, PROMPT_FROM, PROMPT_TO, comfy_noise(SEED_FROM, size=SIZE),
                                             comfy_noise(SEED_TO, size=SIZE), FRAMES, steps, cfg, NEGATIVE))
    diff = record_difference(f"walk of {FRAMES} frames, {steps} step(s), cfg {cfg} vs reference", ours, expected)
    assert diff <= TOLERANCE


def test_straight_line_noise_walk_would_fail_the_comparison(reduced_instaflow, reference):
    """The reference check tells slerp from a straight-line noise walk (the usual mistake): the
    straight line's middle frames start from noise of standard deviation ~0.7 and look different."""
    a, b = comfy_noise(SEED_FROM, size=SIZE), comfy_noise(SEED_TO, size=SIZE)
    slerped = to_uint8(frames_from_noise(reference, slerp_noise(a, b, 3), PROMPT_FROM, PROMPT_TO))
    lerped = to_uint8(frames_from_noise(reference, torch.cat([a, (a + b) / 2, b]), PROMPT_FROM, PROMPT_TO))
    diff = record_difference("middle of a 3-frame walk: straight-line noise vs slerp (reference only)",
                             [lerped[1]], slerped[1:2])
    assert diff > WIDE_MARGIN


def test_latent_batch_other_than_frames_is_a_clear_error(comfy_server, reduced_instaflow):
    g, _ = walk_graph(reduced_instaflow, batch=FRAMES // 2)
    with pytest.raises(PromptFailed) as failure:
        comfy_server.run(g.api(), timeout=600)
    assert failure.value.node_type == "SamplerCustomAdvanced"
    assert f"frames is {FRAMES}" in failure.value.exception_message
    assert f"{FRAMES // 2} images" in failure.value.exception_message
