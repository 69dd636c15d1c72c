"""PeRFlow graphs on the real server equal the official PeRFlow loop (SD1.5, 64x64).

Reference: devtools/reference_perflow.py (diffusers StableDiffusionPipeline's loop with a
re-implementation of the official PeRFlowScheduler; diffusers modules only) on the random-weight PeRFlow
SD1.5 stand-in on the reduced UNet (devtools/random_perflow_sd15.py, ensure_reduced_perflow_sd15);
the graphs load the same weights from its single file. PeRFlowLoader on a diffusers folder is checked
on the full-size stand-in, the form ComfyUI can load as a folder.
Same prompt, negative prompt and noise (ComfyUI's seeded CPU noise). Tolerance: mean absolute
difference of the saved 8-bit images within 1/255 (the maximum is recorded too).

The official settings are diff_eps, 4 steps, cfg 4.5 with a negative prompt. The last tests compare
the 4-step graph with deliberately broken versions of the reference (timestep 1000 t - 1, a boundary
time put in the window that ends there, InstaFlow's velocity sign): each must miss by BROKEN_MARGIN.
"""
import numpy as np
import pytest

from devtools.comparison import comfy_noise, record_difference
from devtools.graphs import Graph, decode_and_save, encode
from devtools.reference_perflow import ReferencePeRFlowSD15
from devtools.reference_perflow_scheduler import Variant
from devtools.reference_rf import to_uint8

SEED = 2024
SIZE = 64
PROMPT = "RAW photo, a colorful bird standing on the tree, open beak"
NEGATIVE = "distorted, blur, low-quality, haze, out of focus"
CFG = 4.5
TOLERANCE = 1 / 255
BROKEN_MARGIN = 3 * TOLERANCE  # the figures are in the "measured" summary


@pytest.fixture(scope="module")
def reference(reduced_perflow_sd15):
    return ReferencePeRFlowSD15.from_folder(reduced_perflow_sd15.folder)


def expected(reference, steps=4, prediction_type="diff_eps", batch=1, variant=Variant()) -> np.ndarray:
    return to_uint8(reference.generate(PROMPT, comfy_noise(SEED, batch, SIZE), steps, CFG, NEGATIVE, prediction_type,
                                       variant))


def run(server, graph: Graph, save) -> list:
    return server.images(server.run(graph.api(), timeout=900), save.id)


def ksampler(g: Graph, model, clip, steps, batch=1, sampler_name="euler", scheduler="perflow"):
    latent = g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=batch)
    return g.add("KSampler", model=model, seed=SEED, steps=steps, cfg=CFG, sampler_name=sampler_name,
                 scheduler=scheduler, positive=encode(g, clip, PROMPT)[0], negative=encode(g, clip, NEGATIVE)[0],
                 latent_image=latent[0], denoise=1.0)


def checkpoint_graph(models, prediction_type="diff_eps", steps=4, batch=1, sampler_name="euler"):
    """Stock CheckpointLoaderSimple + ModelSamplingPeRFlow + stock KSampler (scheduler perflow)."""
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=models.single_file.name)
    model = g.add("ModelSamplingPeRFlow", model=ckpt[0], prediction_type=prediction_type)
    sampled = ksampler(g, model[0], ckpt[1], steps, batch, sampler_name)
    return g, decode_and_save(g, sampled[0], ckpt[2], f"perflow_{prediction_type}_{steps}")


def loader_graph(ckpt_name, steps=4):
    """PeRFlowLoader (already patched: SD1.5 -> diff_eps) + stock KSampler."""
    g = Graph()
    loader = g.add("PeRFlowLoader", ckpt_name=ckpt_name)
    sampled = ksampler(g, loader[0], loader[1], steps)
    return g, decode_and_save(g, sampled[0], loader[2], "perflow_loader")


def sampler_custom_graph(models, steps=4):
    """Stock SamplerCustom + KSamplerSelect(euler) + PeRFlowScheduler."""
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=models.single_file.name)
    model = g.add("ModelSamplingPeRFlow", model=ckpt[0], prediction_type="diff_eps")
    sigmas = g.add("PeRFlowScheduler", model=model[0], steps=steps, denoise=1.0)
    sampled = g.add("SamplerCustom", model=model[0], add_noise=True, noise_seed=SEED, cfg=CFG,
                    positive=encode(g, ckpt[1], PROMPT)[0], negative=encode(g, ckpt[1], NEGATIVE)[0],
                    sampler=g.add("KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas[0],
                    latent_image=g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)[0])
    return g, decode_and_save(g, sampled[0], ckpt[2], "perflow_sampler_custom")


@pytest.fixture(scope="module")
def official_reference_image(reference) -> np.ndarray:
    """The reference at the official settings, computed once for the graphs that must all equal it."""
    return expected(reference)


@pytest.fixture(scope="module")
def official_settings_image(comfy_server, reduced_perflow_sd15) -> list:
    """The diff_eps, 4 steps, cfg 4.5 graph's image (shared by the equivalence and broken-variant tests)."""
    return run(comfy_server, *checkpoint_graph(reduced_perflow_sd15))


def test_checkpoint_loader_model_sampling_and_ksampler_equal_official_4_steps(official_settings_image,
                                                                              official_reference_image):
    diff = record_difference("PeRFlow SD1.5 CheckpointLoaderSimple+ModelSamplingPeRFlow+KSampler euler/perflow, "
                             "diff_eps 4 steps cfg 4.5", official_settings_image, official_reference_image)
    assert diff <= TOLERANCE


def test_six_steps_with_uneven_windows_equal_official(comfy_server, reduced_perflow_sd15, reference):
    ours = run(comfy_server, *checkpoint_graph(reduced_perflow_sd15, steps=6))
    diff = record_difference("PeRFlow SD1.5 diff_eps 6 steps (windows of 2, 2, 1, 1)", ours, expected(reference, 6))
    assert diff <= TOLERANCE


@pytest.mark.parametrize("prediction_type", ["ddim_eps", "velocity"])
def test_other_prediction_types_equal_official(comfy_server, reduced_perflow_sd15, reference, prediction_type):
    ours = run(comfy_server, *checkpoint_graph(reduced_perflow_sd15, prediction_type))
    diff = record_difference(f"PeRFlow SD1.5 {prediction_type} 4 steps", ours,
                             expected(reference, prediction_type=prediction_type))
    assert diff <= TOLERANCE


def test_perflow_loader_on_a_diffusers_folder_equals_official(comfy_server, perflow_sd15_models):
    # The full-size stand-in: ComfyUI loads diffusers-layout UNets of the published configs only.
    ours = run(comfy_server, *loader_graph(perflow_sd15_models.name))
    full_size = ReferencePeRFlowSD15.from_folder(perflow_sd15_models.folder)
    diff = record_difference("PeRFlowLoader(diffusers folder, full-size)+KSampler euler/perflow 4 steps", ours,
                             expected(full_size))
    assert diff <= TOLERANCE


def test_perflow_loader_on_a_single_file_equals_official(comfy_server, reduced_perflow_sd15, official_reference_image):
    ours = run(comfy_server, *loader_graph(reduced_perflow_sd15.single_file.name))
    diff = record_difference("PeRFlowLoader(single file in checkpoints/)+KSampler euler/perflow 4 steps", ours,
                             official_reference_image)
    assert diff <= TOLERANCE


def test_batch_of_two_equals_official_with_comfyui_batch_noise(comfy_server, reduced_perflow_sd15, reference):
    ours = run(comfy_server, *checkpoint_graph(reduced_perflow_sd15, batch=2))
    diff = record_difference("PeRFlow SD1.5 batch 2", ours, expected(reference, batch=2))
    assert len(ours) == 2
    assert diff <= TOLERANCE
    assert np.abs(ours[0].astype(int) - ours[1].astype(int)).mean() > 255 * BROKEN_MARGIN  # two different noises


def test_rectified_flow_sampler_with_perflow_scheduler_equals_official(comfy_server, reduced_perflow_sd15, official_reference_image):
    ours = run(comfy_server, *checkpoint_graph(reduced_perflow_sd15, sampler_name="rectified_flow"))
    diff = record_difference("PeRFlow SD1.5 KSampler rectified_flow/perflow 4 steps", ours, official_reference_image)
    assert diff <= TOLERANCE


def test_sampler_custom_with_perflow_scheduler_equals_official(comfy_server, reduced_perflow_sd15, official_reference_image):
    ours = run(comfy_server, *sampler_custom_graph(reduced_perflow_sd15))
    diff = record_difference("PeRFlow SD1.5 SamplerCustom+euler+PeRFlowScheduler 4 steps", ours, official_reference_image)
    assert diff <= TOLERANCE


@pytest.mark.parametrize("label, variant", [
    ("UNet timestep 1000 t - 1", Variant(timestep_offset=-1)),
    ("boundary time in the window that ends there", Variant(boundary_ends_window=True)),
    ("InstaFlow's velocity sign", Variant(velocity_sign=-1.0)),
])
def test_broken_reference_variants_miss_the_graph_by_a_wide_margin(official_settings_image, reference, label, variant):
    diff = record_difference(f"PeRFlow broken variant: {label}", official_settings_image,
                             expected(reference, variant=variant))
    assert diff > BROKEN_MARGIN
