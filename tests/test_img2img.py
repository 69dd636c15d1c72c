"""Image-to-image, partial denoise and inpainting with stock nodes equal InstaFlow's rectified-flow math.

Graphs start from stock LoadImage + VAEEncode and run on the real server with the random-weight
SD1.5 InstaFlow model. The reference (devtools/reference_img2img.py, diffusers modules only)
starts at (1 - s) * x0 + s * noise with x0 = VAE posterior mode * 0.18215 and integrates
t = 1000 * s * (1 - i/N), dt = s / N. Tolerance: mean absolute pixel difference within 2/255.

Stock KSampler with denoise < 1 samples the last steps+1 sigmas of an int(steps / denoise)-step
schedule (comfy/samplers.py, KSampler.set_steps), so it is compared only where those sigmas are the
official ones (denoise 0.5 with 1 or 2 steps); one test pins down how it differs elsewhere.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from devtools.comparison import TOLERANCE, WIDE_MARGIN, comfy_noise, record_difference
from devtools.graphs import Graph, decode_and_save, encode
from devtools.input_images import input_picture, put_input_image, transparent_right_half
from devtools.reference_img2img import encode_image, generate_img2img
from devtools.reference_rf import ReferenceInstaFlow, to_uint8

SEED = 4321
SIZE = 64
PROMPT = "a watercolor painting of a lighthouse on a cliff"


@pytest.fixture(scope="module")
def reference(reduced_instaflow):
    return ReferenceInstaFlow(reduced_instaflow.diffusers_dir)


@pytest.fixture(scope="module")
def input_image(comfy_server) -> str:
    return put_input_image(comfy_server, "instaflow_img2img_input.png", input_picture(SIZE))


@pytest.fixture(scope="module")
def image_latent(reference) -> torch.Tensor:
    return encode_image(reference, input_picture(SIZE)[None])


def expected_image(reference, image_latent, strength, steps, **kwargs) -> np.ndarray:
    return to_uint8(generate_img2img(reference, PROMPT, image_latent, comfy_noise(SEED, size=SIZE), strength, steps,
                                     **kwargs))


def run(server, graph: Graph, save) -> list:
    return server.images(server.run(graph.api(), timeout=600), save.id)


def instaflow_sampler_graph(models, image, strength, steps, variant=None):
    """InstaFlowLoader + stock LoadImage + VAEEncode + InstaFlowSampler(denoise=strength)."""
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=models.name)
    model = loader[0]
    if variant is not None:
        model = g.add("InstaFlowBrokenVariant", model=model, variant=variant)[0]
    latent = g.add("VAEEncode", pixels=g.add("LoadImage", image=image)[0], vae=loader[2])
    sampled = g.add("InstaFlowSampler", model=model, seed=SEED, steps=steps, cfg=1.0,
                    positive=encode(g, loader[1], PROMPT)[0], latent_image=latent[0], denoise=strength)
    return g, decode_and_save(g, sampled[0], loader[2], "img2img_instaflow_sampler")


def stock_checkpoint(g: Graph, models):
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=models.single_file.name)
    model = g.add("ModelSamplingInstaFlow", model=ckpt[0])
    return ckpt, model


def stock_ksampler_graph(models, image, strength, steps):
    """Stock CheckpointLoaderSimple + ModelSamplingInstaFlow + LoadImage + VAEEncode + KSampler(denoise)."""
    g = Graph()
    ckpt, model = stock_checkpoint(g, models)
    latent = g.add("VAEEncode", pixels=g.add("LoadImage", image=image)[0], vae=ckpt[2])
    sampled = g.add("KSampler", model=model[0], seed=SEED, steps=steps, cfg=1.0, sampler_name="rectified_flow",
                    scheduler="instaflow", positive=encode(g, ckpt[1], PROMPT)[0], negative=encode(g, ckpt[1], "")[0],
                    latent_image=latent[0], denoise=strength)
    return g, decode_and_save(g, sampled[0], ckpt[2], "img2img_ksampler")


def sampler_custom_graph(models, image, strength, steps):
    """Stock SamplerCustom + KSamplerSelect(rectified_flow) + InstaFlowScheduler(denoise)."""
    g = Graph()
    ckpt, model = stock_checkpoint(g, models)
    latent = g.add("VAEEncode", pixels=g.add("LoadImage", image=image)[0], vae=ckpt[2])
    sampled = g.add("SamplerCustom", model=model[0], add_noise=True, noise_seed=SEED, cfg=1.0,
                    positive=encode(g, ckpt[1], PROMPT)[0], negative=encode(g, ckpt[1], "")[0],
                    sampler=g.add("KSamplerSelect", sampler_name="rectified_flow")[0],
                    sigmas=g.add("InstaFlowScheduler", model=model[0], steps=steps, denoise=strength)[0],
                    latent_image=latent[0])
    return g, decode_and_save(g, sampled[0], ckpt[2], "img2img_sampler_custom")


@pytest.mark.parametrize("strength", [0.5, 0.8])
@pytest.mark.parametrize("steps", [1, 2])
def test_instaflow_sampler_img2img_equals_reference(comfy_server, reduced_instaflow, reference, image_latent,
                                                    input_image, strength, steps):
    g, save = instaflow_sampler_graph(reduced_instaflow, input_image, strength, steps)
    ours = run(comfy_server, g, save)
    diff = record_difference(f"img2img InstaFlowSampler s={strength} steps={steps}", ours,
                             expected_image(reference, image_latent, strength, steps))
    assert diff <= TOLERANCE


@pytest.mark.parametrize("steps", [1, 2])
def test_stock_ksampler_img2img_equals_reference_at_denoise_one_half(comfy_server, reduced_instaflow, reference,
                                                                     image_latent, input_image, steps):
    # int(steps / 0.5) = 2 * steps sigmas of the instaflow scheduler, of which the last steps + 1 are
    # [0.5, ..., 0]: exactly the official schedule at strength 0.5.
    g, save = stock_ksampler_graph(reduced_instaflow, input_image, 0.5, steps)
    ours = run(comfy_server, g, save)
    diff = record_difference(f"img2img stock KSampler rectified_flow/instaflow denoise=0.5 steps={steps}", ours,
                             expected_image(reference, image_latent, 0.5, steps))
    assert diff <= TOLERANCE


def test_stock_ksampler_one_step_at_denoise_0_8_starts_from_pure_noise(comfy_server, reduced_instaflow, reference,
                                                                       image_latent, input_image):
    # int(1 / 0.8) = 1 step of the schedule: sigmas [1, 0], so the input image is ignored. This is
    # ComfyUI's KSampler rounding; InstaFlowSampler or SamplerCustom + InstaFlowScheduler give [0.8, 0].
    g, save = stock_ksampler_graph(reduced_instaflow, input_image, 0.8, 1)
    ours = run(comfy_server, g, save)
    assert record_difference("img2img stock KSampler denoise=0.8 steps=1 vs strength 1.0", ours,
                             expected_image(reference, image_latent, 1.0, 1)) <= TOLERANCE
    assert record_difference("img2img stock KSampler denoise=0.8 steps=1 vs strength 0.8", ours,
                             expected_image(reference, image_latent, 0.8, 1)) > WIDE_MARGIN


def test_sampler_custom_with_instaflow_scheduler_equals_reference_at_any_strength(comfy_server, reduced_instaflow,
                                                                                 reference, image_latent, input_image):
    g, save = sampler_custom_graph(reduced_instaflow, input_image, 0.8, 2)
    ours = run(comfy_server, g, save)
    diff = record_difference("img2img SamplerCustom+InstaFlowScheduler s=0.8 steps=2", ours,
                             expected_image(reference, image_latent, 0.8, 2))
    assert diff <= TOLERANCE


def test_start_latent_off_the_straight_path_fails_the_comparison(comfy_server, reduced_instaflow, reference,
                                                                 image_latent, input_image):
    g, save = instaflow_sampler_graph(reduced_instaflow, input_image, 0.5, 1, variant="start_latent_off_the_path")
    ours = run(comfy_server, g, save)
    diff = record_difference("broken variant start_latent_off_the_path (x0 + s*noise) s=0.5", ours,
                             expected_image(reference, image_latent, 0.5, 1))
    assert diff > WIDE_MARGIN


def saved_latent(server, outputs: dict, node) -> torch.Tensor:
    ref = outputs[node.id]["latents"][0]
    return load_file(str(Path(server.work_dir) / "output" / ref["subfolder"] / ref["filename"]))["latent_tensor"]


def test_inpainting_with_set_latent_noise_mask_keeps_the_unmasked_latent_exactly(comfy_server, reduced_instaflow):
    """SetLatentNoiseMask: at every model call ComfyUI (KSamplerX0Inpaint) replaces the unmasked part of
    the image estimate with the input latent, and the last rectified-flow step lands on that
    estimate, so outside the mask the output latent is the input latent up to float rounding. The
    mask is resized to the latent bilinearly (comfy.utils.reshape_mask); a mask edge on the 8-pixel
    grid gives latent cells that are exactly 0 or 1. Decoded pixels are not compared exactly: the
    VAE decoder's receptive field reaches across the mask edge."""
    name = put_input_image(comfy_server, "instaflow_inpaint_input.png", input_picture(SIZE), transparent_right_half(SIZE))
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=reduced_instaflow.name)
    image = g.add("LoadImage", image=name)
    encoded = g.add("VAEEncode", pixels=image[0], vae=loader[2])
    masked = g.add("SetLatentNoiseMask", samples=encoded[0], mask=image[1])
    sampled = g.add("InstaFlowSampler", model=loader[0], seed=SEED, steps=2, cfg=1.0,
                    positive=encode(g, loader[1], PROMPT)[0], latent_image=masked[0], denoise=1.0)
    save_in = g.add("SaveLatent", samples=encoded[0], filename_prefix="inpaint_input")
    save_out = g.add("SaveLatent", samples=sampled[0], filename_prefix="inpaint_output")
    round_trip = decode_and_save(g, encoded[0], loader[2], "inpaint_round_trip")
    inpainted = decode_and_save(g, sampled[0], loader[2], "inpaint_output")
    outputs = comfy_server.run(g.api(), timeout=600)

    before, after = saved_latent(comfy_server, outputs, save_in), saved_latent(comfy_server, outputs, save_out)
    pixel_mask = 1.0 - torch.from_numpy(transparent_right_half(SIZE)).float() / 255.0  # LoadImage: 1 - alpha
    latent_mask = torch.nn.functional.interpolate(pixel_mask[None, None], size=before.shape[2:], mode="bilinear")
    keep, repaint = (latent_mask == 0).expand_as(before), (latent_mask == 1).expand_as(before)
    assert keep.any() and repaint.any() and bool((keep | repaint).all())
    assert torch.allclose(after[keep], before[keep], rtol=1e-6, atol=1e-6)
    assert (after[repaint] - before[repaint]).abs().mean() > 0.1 * before.abs().mean()

    left = slice(0, SIZE // 2)
    kept_pixels = comfy_server.images(outputs, inpainted.id)[0][:, left]
    record_difference("inpaint: unmasked half vs the input's VAE round trip (decoder reaches across the edge)",
                      [kept_pixels], comfy_server.images(outputs, round_trip.id)[0][None, :, left])
