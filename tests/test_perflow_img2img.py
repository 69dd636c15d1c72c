"""PeRFlow image-to-image with stock SamplerCustom + PeRFlowScheduler(denoise) equals the official math.

PeRFlow's repository has no img2img pipeline; the official way is diffusers' StableDiffusionImg2ImgPipeline
with PeRFlowScheduler: of set_timesteps(N) it keeps the last int(N * strength) timesteps and starts from
scheduler.add_noise(x0, noise, first of them) = sqrt(abar) x0 + sqrt(1 - abar) noise. With 8 steps and
strength 0.5 that is timesteps 500, 375, 250, 125 from the VP marginal at 500: exactly what
PeRFlowScheduler(steps 4, denoise 0.5) gives ComfyUI (the start on a window boundary, where PeRFlow was
trained on VP-noised latents). A denoise between boundaries snaps to the nearest boundary.

The broken variant is what the same diffusers pipeline does when strength does not land on a
boundary (6 steps, strength 0.6: timesteps 625, 500, 250 from a VP-noised latent at 625, inside a window
where the training inputs were straight-line mixes, not VP marginals): it must miss the snapped graph
by a wide margin.

Graph: stock CheckpointLoaderSimple (the reduced SD1.5 stand-in's single file, devtools/reduced_sd15.py, with the
plain random VAE, whose decoder suits img2img's latents of ordinary scale) + ModelSamplingPeRFlow(diff_eps)
+ LoadImage + VAEEncode + SamplerCustom (KSamplerSelect euler, PeRFlowScheduler). Reference:
devtools/reference_perflow.py (img2img) on the same stand-in's reference diffusers folder, with x0 = VAE
posterior mode * 0.18215, as ComfyUI's VAEEncode + the SD1.5 latent format give. Tolerance: mean
absolute difference within 1/255.
"""
import pytest

from devtools.comparison import comfy_noise, record_difference
from devtools.graphs import Graph, decode_and_save, encode
from devtools.input_images import input_picture, put_input_image
from devtools.reference_img2img import encode_image
from devtools.reference_perflow import ReferencePeRFlowSD15
from devtools.reference_perflow_scheduler import official_timesteps, partial_timesteps
from devtools.reference_rf import to_uint8

SEED = 8642
SIZE = 64
PROMPT = "a watercolor painting of a lighthouse on a cliff"
NEGATIVE = "blurry, low quality"
CFG = 4.5
TOLERANCE = 1 / 255
BROKEN_MARGIN = 4 * TOLERANCE


@pytest.fixture(scope="module")
def reference(reduced_instaflow):
    return ReferencePeRFlowSD15.from_folder(reduced_instaflow.diffusers_dir)


@pytest.fixture(scope="module")
def image_latent(reference):
    return encode_image(reference.modules, input_picture(SIZE)[None])


@pytest.fixture(scope="module")
def input_image(comfy_server) -> str:
    return put_input_image(comfy_server, "perflow_img2img_input.png", input_picture(SIZE))


def diffusers_img2img(reference, image_latent, steps, strength):
    """diffusers' img2img pipeline with the official scheduler: the last int(steps * strength) timesteps."""
    timesteps = official_timesteps(steps)
    first = len(timesteps) - min(int(steps * strength), steps)
    return to_uint8(reference.img2img(PROMPT, image_latent, comfy_noise(SEED, size=SIZE), timesteps, first, CFG,
                                      NEGATIVE))


def sampler_custom_graph(instaflow, image, steps, denoise):
    """CheckpointLoaderSimple + ModelSamplingPeRFlow + LoadImage + VAEEncode + SamplerCustom(euler, PeRFlowScheduler)."""
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=instaflow.single_file.name)
    model = g.add("ModelSamplingPeRFlow", model=ckpt[0], prediction_type="diff_eps")
    latent = g.add("VAEEncode", pixels=g.add("LoadImage", image=image)[0], vae=ckpt[2])
    sigmas = g.add("PeRFlowScheduler", model=model[0], steps=steps, denoise=denoise)
    sampled = g.add("SamplerCustom", model=model[0], add_noise=True, noise_seed=SEED, cfg=CFG,
                    positive=encode(g, ckpt[1], PROMPT)[0], negative=encode(g, ckpt[1], NEGATIVE)[0],
                    sampler=g.add("KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas[0], latent_image=latent[0])
    return g, decode_and_save(g, sampled[0], ckpt[2], "perflow_img2img")


def run(server, graph: Graph, save) -> list:
    return server.images(server.run(graph.api(), timeout=900), save.id)


@pytest.fixture(scope="module")
def half_denoise_image(comfy_server, reduced_instaflow, input_image) -> list:
    return run(comfy_server, *sampler_custom_graph(reduced_instaflow, input_image, steps=4, denoise=0.5))


def test_half_denoise_schedule_is_diffusers_img2img_with_8_steps_strength_half():
    assert partial_timesteps(4, 2) == official_timesteps(8)[4:] == [500, 375, 250, 125]


def test_half_denoise_equals_official_add_noise_at_500_and_the_remaining_loop(half_denoise_image, reference,
                                                                               image_latent):
    diff = record_difference("PeRFlow img2img SamplerCustom+PeRFlowScheduler 4 steps denoise 0.5",
                             half_denoise_image, diffusers_img2img(reference, image_latent, 8, 0.5))
    assert diff <= TOLERANCE


@pytest.fixture(scope="module")
def between_boundaries_image(comfy_server, reduced_instaflow, input_image) -> list:
    return run(comfy_server, *sampler_custom_graph(reduced_instaflow, input_image, steps=4, denoise=0.6))


def test_denoise_between_boundaries_snaps_to_the_nearest_boundary(between_boundaries_image, reference, image_latent):
    diff = record_difference("PeRFlow img2img denoise 0.6 (snapped to 0.5)", between_boundaries_image,
                             diffusers_img2img(reference, image_latent, 8, 0.5))
    assert diff <= TOLERANCE


def test_vp_noising_at_a_non_boundary_start_misses_by_a_wide_margin(between_boundaries_image, reference, image_latent):
    assert official_timesteps(6)[3:] == [625, 500, 250]
    diff = record_difference("PeRFlow img2img broken variant: denoise 0.6 as diffusers img2img does it (6 steps, "
                             "VP-noised start at 625)", between_boundaries_image,
                             diffusers_img2img(reference, image_latent, 6, 0.6))
    assert diff > BROKEN_MARGIN
