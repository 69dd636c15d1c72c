"""PeRFlow SDXL: PeRFlowLoader on an SDXL diffusers folder + stock nodes equals the official SDXL loop.

Official settings (scripts/sdxl_t2i_merged.py): StableDiffusionXLPipeline from the folder with variant
"v0-fix", PeRFlowScheduler(prediction_type="ddim_eps"), 6 steps, cfg 2.0, a negative prompt.
Graph: PeRFlowLoader (patches SDXL as ddim_eps) -> stock CLIPTextEncode (positive, negative) ->
EmptyLatentImage 64x64 -> stock KSampler euler/perflow -> VAEDecode.

The model is the SDXL-architecture stand-in of devtools/random_perflow_sdxl.py (full-size text
encoders, a narrower UNet that ComfyUI still detects as SDXL; its docstring says what that does not
cover). Reference: devtools/reference_perflow_sdxl.py, whose docstring shows that stock
CLIPTextEncode builds the official conditioning (both encoders' penultimate layers, bigG's pooled
projection, size conditioning (64, 64, 0, 0, 64, 64)). Tolerance: mean absolute difference within 1/255.
"""
import pytest

from devtools.comparison import comfy_noise, record_difference
from devtools.graphs import Graph, decode_and_save, encode
from devtools.reference_perflow_scheduler import Variant
from devtools.reference_perflow_sdxl import ReferencePeRFlowSDXL
from devtools.reference_rf import to_uint8

SEED = 4250
SIZE = 64
STEPS = 6
CFG = 2.0
PROMPT = "photorealistic, uhd, high quality; a red luxury car, studio light"
NEGATIVE = "distorted, blur, low-quality, haze, out of focus"
TOLERANCE = 1 / 255
BROKEN_MARGIN = 2 * TOLERANCE


@pytest.fixture(scope="module")
def reference(perflow_sdxl_models):
    return ReferencePeRFlowSDXL(perflow_sdxl_models.folder, perflow_sdxl_models.reference_unet,
                                perflow_sdxl_models.variant)


def expected(reference, prediction_type="ddim_eps", variant=Variant()):
    return to_uint8(reference.generate(PROMPT, comfy_noise(SEED, size=SIZE), STEPS, CFG, NEGATIVE, prediction_type,
                                       variant))


@pytest.fixture(scope="module")
def sdxl_image(comfy_server, perflow_sdxl_models) -> list:
    g = Graph()
    loader = g.add("PeRFlowLoader", ckpt_name=perflow_sdxl_models.name)
    sampled = g.add("KSampler", model=loader[0], seed=SEED, steps=STEPS, cfg=CFG, sampler_name="euler",
                    scheduler="perflow", positive=encode(g, loader[1], PROMPT)[0],
                    negative=encode(g, loader[1], NEGATIVE)[0],
                    latent_image=g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)[0], denoise=1.0)
    save = decode_and_save(g, sampled[0], loader[2], "perflow_sdxl")
    return comfy_server.images(comfy_server.run(g.api(), timeout=900), save.id)


def test_perflow_loader_on_sdxl_folder_equals_official_sdxl_loop(sdxl_image, reference):
    diff = record_difference("PeRFlowLoader(SDXL stand-in)+CLIPTextEncode+KSampler euler/perflow, ddim_eps 6 steps "
                             "cfg 2.0", sdxl_image, expected(reference))
    assert diff <= TOLERANCE


@pytest.mark.parametrize("label, prediction_type, variant", [
    ("diff_eps instead of SDXL's ddim_eps", "diff_eps", Variant()),
    ("UNet timestep 1000 t - 1", "ddim_eps", Variant(timestep_offset=-1)),
])
def test_sdxl_broken_variants_miss_by_a_wide_margin(sdxl_image, reference, label, prediction_type, variant):
    diff = record_difference(f"PeRFlow SDXL broken variant: {label}", sdxl_image,
                             expected(reference, prediction_type, variant))
    assert diff > BROKEN_MARGIN
