"""Stock ControlNet nodes on an InstaFlow model equal the official InstaFlow ControlNet loop.

Graphs use stock ControlNetLoader + LoadImage + ControlNetApplyAdvanced (or the older ControlNetApply)
on the reduced SD1.5 stand-in (devtools/reduced_sd15.py; what is tested is how ComfyUI feeds a
ControlNet, not the UNet's size), with a random ControlNet made from its UNet and written in the LDM
layout of the published SD1.5 ControlNet files (devtools/random_controlnet.py,
ensure_reduced_controlnet). The reference (devtools/reference_controlnet.py, diffusers modules
only) mirrors code/pipeline_rf_ctrl.py: the ControlNet sees the UNet's float timestep (sigma * 1000)
and raw latents, its residuals feed the UNet. Tolerance: mean absolute pixel difference within 2/255;
measured on the reduced model 0.0002/255 or less, and the broken variants miss by 9.8/255 or more
(figures in random_controlnet.py's docstring).

Control windows: ComfyUI turns start/end_percent into sigmas with the model's percent_to_sigma
(1 - percent for InstaFlow's shift-1 scale) and controls every step whose starting sigma lies in
[1 - end, 1 - start]; the official loop controls step i only if its whole interval
[i/N, (i+1)/N] lies in [start, end]. Starts agree; an official end e is end_percent in [e - 1/N, e).
"""
import numpy as np
import pytest

from devtools.comparison import TOLERANCE, WIDE_MARGIN, comfy_noise, mean_abs_difference, record_difference
from devtools.control_image import depth_like_image
from devtools.graphs import Graph, decode_and_save, encode
from devtools.input_images import put_input_image
from devtools.reference_controlnet import ReferenceInstaFlowControlNet
from devtools.reference_rf import ReferenceInstaFlow, to_uint8

SEED = 2468
SIZE = 64
PROMPT = "a robot standing in a hallway"
NEGATIVE = "blurry, low quality"
CONTROL_IMAGE = depth_like_image(SIZE)


@pytest.fixture(scope="module")
def reference(reduced_instaflow, reduced_controlnet):
    return ReferenceInstaFlowControlNet(ReferenceInstaFlow(reduced_instaflow.diffusers_dir),
                                        reduced_controlnet.diffusers_dir)


@pytest.fixture(scope="module")
def control_image(comfy_server) -> str:
    return put_input_image(comfy_server, "instaflow_control_depth.png", CONTROL_IMAGE)


def expected(reference, image=CONTROL_IMAGE, **kwargs) -> np.ndarray:
    return to_uint8(reference.generate(PROMPT, comfy_noise(SEED, size=SIZE), image, **kwargs))


@pytest.fixture(scope="module")
def one_step_reference(reference) -> np.ndarray:
    """The reference at the default settings, computed once for the graphs that must equal it (or miss it)."""
    return expected(reference)


def run(server, graph: Graph, save) -> list:
    return server.images(server.run(graph.api(), timeout=600), save.id)


def one_step_graph(models, controlnet, image, *, strength=1.0, broken=None, control=True):
    """InstaFlowLoader + ControlNetLoader + LoadImage + ControlNetApplyAdvanced + InstaFlowSampler, 1 step."""
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=models.name)
    positive, negative = encode(g, loader[1], PROMPT)[0], encode(g, loader[1], "")[0]
    if control:
        control_net = g.add("ControlNetLoader", control_net_name=controlnet.name)[0]
        if broken is not None:
            control_net = g.add("InstaFlowBrokenControlNet", control_net=control_net, variant=broken)[0]
        applied = g.add("ControlNetApplyAdvanced", positive=positive, negative=negative, control_net=control_net,
                        image=g.add("LoadImage", image=image)[0], strength=strength, start_percent=0.0, end_percent=1.0)
        positive, negative = applied[0], applied[1]
    sampled = g.add("InstaFlowSampler", model=loader[0], seed=SEED, steps=1, cfg=1.0, positive=positive,
                    negative=negative, latent_image=g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)[0],
                    denoise=1.0)
    return g, decode_and_save(g, sampled[0], loader[2], "controlnet_one_step")


def ksampler_graph(models, controlnet, image, *, steps, cfg, strength, start=0.0, end=1.0, legacy=False):
    """CheckpointLoaderSimple + ModelSamplingInstaFlow + ControlNet + stock KSampler (rectified_flow/instaflow)."""
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=models.single_file.name)
    model = g.add("ModelSamplingInstaFlow", model=ckpt[0])
    positive, negative = encode(g, ckpt[1], PROMPT)[0], encode(g, ckpt[1], NEGATIVE)[0]
    control_net = g.add("ControlNetLoader", control_net_name=controlnet.name)[0]
    hint = g.add("LoadImage", image=image)[0]
    if legacy:  # positive only; ComfyUI copies it to the negative (control_apply_to_uncond)
        positive = g.add("ControlNetApply", conditioning=positive, control_net=control_net, image=hint,
                         strength=strength)[0]
    else:
        applied = g.add("ControlNetApplyAdvanced", positive=positive, negative=negative, control_net=control_net,
                        image=hint, strength=strength, start_percent=start, end_percent=end)
        positive, negative = applied[0], applied[1]
    sampled = g.add("KSampler", model=model[0], seed=SEED, steps=steps, cfg=cfg, sampler_name="rectified_flow",
                    scheduler="instaflow", positive=positive, negative=negative,
                    latent_image=g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], ckpt[2], "controlnet_ksampler")


@pytest.fixture(scope="module")
def one_step_controlled(comfy_server, reduced_instaflow, reduced_controlnet, control_image) -> list:
    return run(comfy_server, *one_step_graph(reduced_instaflow, reduced_controlnet, control_image))


def test_controlnet_apply_advanced_one_step_full_strength_equals_reference(one_step_controlled, one_step_reference):
    diff = record_difference("ControlNetApplyAdvanced 1 step strength 1", one_step_controlled, one_step_reference)
    assert diff <= TOLERANCE


def test_the_control_image_decides_the_result(one_step_controlled, reference):
    """The comparison sees the control image: the reference with the image inverted is far off."""
    diff = record_difference("ControlNet vs reference with inverted control image", one_step_controlled,
                             expected(reference, image=255 - CONTROL_IMAGE))
    assert diff > WIDE_MARGIN


def test_control_changes_the_image_clearly(comfy_server, reduced_instaflow, reduced_controlnet, control_image,
                                           one_step_controlled):
    uncontrolled = run(comfy_server,
                       *one_step_graph(reduced_instaflow, reduced_controlnet, control_image, control=False))
    diff = record_difference("ControlNet: controlled vs uncontrolled graph", uncontrolled, np.stack(one_step_controlled))
    assert diff > WIDE_MARGIN


@pytest.mark.parametrize("variant", ["timestep_unscaled", "timestep_reversed"])
def test_control_fed_a_wrong_timestep_fails_the_comparison(comfy_server, reduced_instaflow, reduced_controlnet,
                                                            control_image, one_step_reference, variant):
    g, save = one_step_graph(reduced_instaflow, reduced_controlnet, control_image, broken=variant)
    diff = record_difference(f"ControlNet broken variant {variant}", run(comfy_server, g, save), one_step_reference)
    assert diff > WIDE_MARGIN


def test_legacy_controlnet_apply_equals_reference(comfy_server, reduced_instaflow, reduced_controlnet, control_image,
                                                  reference):
    if "ControlNetApply" not in comfy_server.object_info():
        pytest.skip("this ComfyUI has no ControlNetApply node")
    g, save = ksampler_graph(reduced_instaflow, reduced_controlnet, control_image, steps=1, cfg=1.0, strength=0.8,
                             legacy=True)
    diff = record_difference("ControlNetApply (legacy) 1 step strength 0.8", run(comfy_server, g, save),
                             expected(reference, conditioning_scale=0.8))
    assert diff <= TOLERANCE


def test_control_window_with_guidance_equals_official_window(comfy_server, reduced_instaflow, reduced_controlnet,
                                                             control_image, reference):
    """4 steps, cfg 1.5: start_percent 0.25, end_percent 0.625 control the steps at sigma 0.75 and 0.5,
    which is the official control_guidance_start 0.25, control_guidance_end 0.75."""
    g, save = ksampler_graph(reduced_instaflow, reduced_controlnet, control_image, steps=4, cfg=1.5, strength=0.7,
                             start=0.25, end=0.625)
    reference_image = expected(reference, steps=4, guidance_scale=1.5, negative_prompt=NEGATIVE,
                               conditioning_scale=0.7, control_guidance_start=0.25, control_guidance_end=0.75)
    diff = record_difference("ControlNetApplyAdvanced 4 steps cfg 1.5 window 0.25-0.625", run(comfy_server, g, save),
                             reference_image)
    assert diff <= TOLERANCE


def test_end_percent_also_controls_the_step_starting_at_it(comfy_server, reduced_instaflow, reduced_controlnet,
                                                           control_image, reference):
    """end_percent 0.5 with 4 steps controls 3 steps (sigma 1, 0.75, 0.5): the official window end 0.75,
    not the official end 0.5 (2 steps), which is far off."""
    g, save = ksampler_graph(reduced_instaflow, reduced_controlnet, control_image, steps=4, cfg=1.0, strength=1.0,
                             end=0.5)
    ours = run(comfy_server, g, save)
    three_steps = expected(reference, steps=4, control_guidance_end=0.75)
    two_steps = expected(reference, steps=4, control_guidance_end=0.5)
    diff = record_difference("ControlNetApplyAdvanced 4 steps end_percent 0.5 vs official end 0.75", ours, three_steps)
    record_difference("ControlNetApplyAdvanced 4 steps end_percent 0.5 vs official end 0.5", ours, two_steps)
    assert diff <= TOLERANCE
    assert mean_abs_difference(ours, two_steps) > WIDE_MARGIN
