"""Our ComfyUI graphs equal the official InstaFlow math (devtools/reference_rf.py).

Each test runs a real graph on the real server and compares the saved 8-bit image with the reference
computed by diffusers modules from the same weights, prompt and noise (ComfyUI's seeded CPU noise).
InstaFlowLoader on a diffusers folder, as users download it, runs on the full-size random SD1.5 model
(ComfyUI converts a diffusers UNet only at the published configurations); the other graphs load a single
file, which ComfyUI reads at any size, and run on the reduced stand-in (devtools/reduced_sd15.py, about 7x
cheaper per UNet call). Tolerance: mean absolute pixel difference within 2/255. The last tests break one
part of the convention and must fail by a wide margin.
"""
import numpy as np
import pytest

from devtools.comparison import TOLERANCE, WIDE_MARGIN, comfy_noise, record_difference
from devtools.graphs import Graph, decode_and_save, encode
from devtools.reference_rf import ReferenceInstaFlow, to_uint8

# Also runs on the oldest supported ComfyUI (.ci/run).
pytestmark = pytest.mark.oldest

SEED = 1234
SIZE = 64
PROMPT = "a photograph of an astronaut riding a horse"
NEGATIVE = "blurry, low quality"


@pytest.fixture(scope="module")
def reference(reduced_instaflow):
    return ReferenceInstaFlow(reduced_instaflow.diffusers_dir)


def reference_image(reference, batch=1, **kwargs) -> np.ndarray:
    return to_uint8(reference.generate(PROMPT, comfy_noise(SEED, batch, SIZE), **kwargs))


@pytest.fixture(scope="module")
def one_step_reference(reference) -> np.ndarray:
    """The one-step reference image, computed once for the graphs that must all equal it (or miss it)."""
    return reference_image(reference)


@pytest.fixture(scope="module")
def full_size_one_step_reference(instaflow_models) -> np.ndarray:
    return reference_image(ReferenceInstaFlow(instaflow_models.diffusers_dir))


def run(server, graph: Graph, save) -> list:
    return server.images(server.run(graph.api(), timeout=600), save.id)


def empty_latent(g: Graph, batch: int = 1):
    return g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=batch)


def instaflow_loader_graph(models, batch=1) -> tuple[Graph, object]:
    """InstaFlowLoader (a diffusers folder or a single file) + CLIPTextEncode + EmptyLatentImage + InstaFlowSampler + VAEDecode."""
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=models.name)
    positive = encode(g, loader[1], PROMPT)
    sampled = g.add("InstaFlowSampler", model=loader[0], seed=SEED, steps=1, cfg=1.0, positive=positive[0],
                    latent_image=empty_latent(g, batch)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], loader[2], "instaflow_loader")


def checkpoint_ksampler_graph(models, sampler_name, scheduler, variant=None) -> tuple[Graph, object]:
    """Stock CheckpointLoaderSimple (single file) + ModelSamplingInstaFlow + stock KSampler, 1 step, cfg 1."""
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=models.single_file.name)
    model = g.add("ModelSamplingInstaFlow", model=ckpt[0])
    if variant is not None:
        model = g.add("InstaFlowBrokenVariant", model=model[0], variant=variant)
    sampled = g.add("KSampler", model=model[0], seed=SEED, steps=1, cfg=1.0, sampler_name=sampler_name,
                    scheduler=scheduler, positive=encode(g, ckpt[1], PROMPT)[0], negative=encode(g, ckpt[1], "")[0],
                    latent_image=empty_latent(g)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], ckpt[2], f"ksampler_{sampler_name}")


def sampler_custom_graph(models, steps, cfg) -> tuple[Graph, object]:
    """Stock SamplerCustom + KSamplerSelect(rectified_flow) + InstaFlowScheduler, with a negative prompt."""
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=models.single_file.name)
    model = g.add("ModelSamplingInstaFlow", model=ckpt[0])
    sampler = g.add("KSamplerSelect", sampler_name="rectified_flow")
    sigmas = g.add("InstaFlowScheduler", model=model[0], steps=steps, denoise=1.0)
    sampled = g.add("SamplerCustom", model=model[0], add_noise=True, noise_seed=SEED, cfg=cfg,
                    positive=encode(g, ckpt[1], PROMPT)[0], negative=encode(g, ckpt[1], NEGATIVE)[0],
                    sampler=sampler[0], sigmas=sigmas[0], latent_image=empty_latent(g)[0])
    return g, decode_and_save(g, sampled[0], ckpt[2], "sampler_custom")


def test_instaflow_loader_on_a_diffusers_folder_equals_reference_one_step(comfy_server, instaflow_models,
                                                                         full_size_one_step_reference):
    g, save = instaflow_loader_graph(instaflow_models)
    ours = run(comfy_server, g, save)
    diff = record_difference("InstaFlowLoader(diffusers folder, full-size)+InstaFlowSampler 1 step", ours,
                             full_size_one_step_reference)
    assert diff <= TOLERANCE


def test_instaflow_loader_on_a_single_file_equals_reference_one_step(comfy_server, reduced_instaflow,
                                                                     one_step_reference):
    g, save = instaflow_loader_graph(reduced_instaflow)
    ours = run(comfy_server, g, save)
    diff = record_difference("InstaFlowLoader(single file, reduced)+InstaFlowSampler 1 step", ours, one_step_reference)
    assert diff <= TOLERANCE


@pytest.mark.parametrize("sampler_name, scheduler", [("rectified_flow", "instaflow"), ("euler", "simple")])
def test_stock_ksampler_on_patched_checkpoint_equals_reference(comfy_server, reduced_instaflow, one_step_reference, sampler_name, scheduler):
    g, save = checkpoint_ksampler_graph(reduced_instaflow, sampler_name, scheduler)
    ours = run(comfy_server, g, save)
    label = f"CheckpointLoaderSimple+ModelSamplingInstaFlow+KSampler {sampler_name}/{scheduler}"
    diff = record_difference(label, ours, one_step_reference)
    assert diff <= TOLERANCE


def test_sampler_custom_four_steps_with_guidance_equals_reference_2rf_loop(comfy_server, reduced_instaflow, reference):
    g, save = sampler_custom_graph(reduced_instaflow, steps=4, cfg=1.5)
    expected = reference_image(reference, steps=4, guidance_scale=1.5, negative_prompt=NEGATIVE)
    ours = run(comfy_server, g, save)
    diff = record_difference("SamplerCustom+rectified_flow+InstaFlowScheduler 4 steps cfg 1.5", ours, expected)
    assert diff <= TOLERANCE


def test_batch_of_two_equals_reference_with_comfyui_batch_noise(comfy_server, reduced_instaflow, reference):
    g, save = instaflow_loader_graph(reduced_instaflow, batch=2)
    ours = run(comfy_server, g, save)
    diff = record_difference("InstaFlowSampler batch 2", ours, reference_image(reference, batch=2))
    assert len(ours) == 2
    assert diff <= TOLERANCE
    assert np.abs(ours[0].astype(int) - ours[1].astype(int)).mean() > 255 * WIDE_MARGIN  # two different noises


@pytest.mark.parametrize("variant", ["flipped_sign", "timestep_reversed", "timestep_unscaled"])
def test_broken_convention_fails_the_comparison_by_a_wide_margin(comfy_server, reduced_instaflow, one_step_reference, variant):
    g, save = checkpoint_ksampler_graph(reduced_instaflow, "rectified_flow", "instaflow", variant=variant)
    ours = run(comfy_server, g, save)
    diff = record_difference(f"broken variant {variant}", ours, one_step_reference)
    assert diff > WIDE_MARGIN
