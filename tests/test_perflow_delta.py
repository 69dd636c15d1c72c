"""PeRFlowDeltaWeights on a fine-tuned SD1.5 equals the official delta merge + PeRFlow sampling.

Official recipe (PeRFlow README, src/utils_perflow.py): load hansyan/perflow-sd15-delta-weights with
variant "v0-1", add it key by key to the finetune's UNet, keep the finetune's text encoder and VAE,
sample with PeRFlowScheduler(diff_eps). Graph: stock CheckpointLoaderSimple (the finetune) ->
PeRFlowDeltaWeights(delta_name, strength) -> stock KSampler euler/perflow, 4 steps, cfg 4.5, with the
finetune's CLIP and VAE.

Stand-ins: the diffusers-layout delta folder, as users download it, is checked at full size (the finetune of
devtools/random_weight_delta.py, the random delta folder of devtools/random_perflow_delta.py, with
v0-1 and a different v0-0: the highest-sorting variant must win). Strength, single files, the missing delta
and the wrong variant are checked on the reduced twins (devtools/reduced_sd15.py: an LDM-layout delta file, the only layout
in which ComfyUI reads that UNet), about 7x cheaper per UNet call. Reference:
devtools/reference_perflow_delta.py. Each size's reference images are computed before its first graph
runs, so the reference's weights are freed while the server holds its models. Tolerance: mean absolute
difference within 1/255. Strength 0 and the wrong variant file must miss by a wide margin.
"""
import gc

import pytest

from devtools.comparison import comfy_noise, record_difference
from devtools.graphs import Graph, decode_and_save, encode
from devtools.reference_perflow_delta import FinetuneWithDelta
from devtools.reference_rf import to_uint8

SEED = 13579
SIZE = 64
STEPS = 4
CFG = 4.5
PROMPT = "a cozy cabin in a snowy forest at dusk"
NEGATIVE = "blurry, low quality"
TOLERANCE = 1 / 255
DELTA_MATTERS = 5 / 255  # strength 1 vs 0 must change the image at least this much
BROKEN_MARGIN = 4 * TOLERANCE
REFERENCES = {"v0-1 strength 1": ("v0-1", 1.0), "v0-1 strength 0.5": ("v0-1", 0.5),
              "no delta (strength 0)": ("v0-1", 0.0), "v0-0 strength 1": ("v0-0", 1.0)}  # on the reduced twins
FULL_SIZE_REFERENCES = {"v0-1 strength 1": ("v0-1", 1.0)}


def reference_images(sd15_dir, finetune_file, delta_folder, references: dict) -> dict:
    """{label: uint8 images} of the official recipe, from one reference pipeline."""
    finetune = FinetuneWithDelta(sd15_dir, finetune_file, delta_folder)
    images = {label: to_uint8(finetune.pipeline(variant, strength).generate(PROMPT, comfy_noise(SEED, size=SIZE), STEPS,
                                                                           CFG, NEGATIVE))
              for label, (variant, strength) in references.items()}
    del finetune
    gc.collect()
    return images


@pytest.fixture(scope="module")
def expected(reduced_perflow_sd15, reduced_weight_delta, reduced_perflow_delta) -> dict:
    return reference_images(reduced_perflow_sd15.folder, reduced_weight_delta.finetune, reduced_perflow_delta.folder,
                            REFERENCES)


@pytest.fixture(scope="module")
def expected_full_size(perflow_sd15_models, weight_delta_models, perflow_delta_models) -> dict:
    return reference_images(perflow_sd15_models.folder, weight_delta_models.finetune, perflow_delta_models.folder,
                            FULL_SIZE_REFERENCES)


def delta_graph(deltas, finetune_file, strength):
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=finetune_file.name)
    model = g.add("PeRFlowDeltaWeights", model=ckpt[0], delta_name=deltas.name, strength=strength)
    sampled = g.add("KSampler", model=model[0], seed=SEED, steps=STEPS, cfg=CFG, sampler_name="euler",
                    scheduler="perflow", positive=encode(g, ckpt[1], PROMPT)[0],
                    negative=encode(g, ckpt[1], NEGATIVE)[0],
                    latent_image=g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], ckpt[2], "perflow_delta")


def run(server, graph: Graph, save) -> list:
    return server.images(server.run(graph.api(), timeout=900), save.id)


@pytest.fixture(scope="module")
def full_size_folder_image(comfy_server, expected_full_size, perflow_delta_models, weight_delta_models) -> list:
    return run(comfy_server, *delta_graph(perflow_delta_models, weight_delta_models.finetune, 1.0))


@pytest.fixture(scope="module")
def single_file_image(comfy_server, expected, reduced_perflow_delta, reduced_weight_delta) -> list:
    return run(comfy_server, *delta_graph(reduced_perflow_delta, reduced_weight_delta.finetune, 1.0))


def test_the_delta_changes_the_image_clearly(expected):
    diff = record_difference("PeRFlow delta reference (reduced): strength 1 vs no delta", expected["v0-1 strength 1"],
                             expected["no delta (strength 0)"])
    assert diff > DELTA_MATTERS


def test_delta_folder_at_strength_1_equals_official_merge(full_size_folder_image, expected_full_size):
    diff = record_difference("PeRFlowDeltaWeights(diffusers folder, v0-1, full-size) strength 1 on the finetune",
                             full_size_folder_image, expected_full_size["v0-1 strength 1"])
    assert diff <= TOLERANCE


def test_single_file_delta_equals_official_merge(single_file_image, expected):
    diff = record_difference("PeRFlowDeltaWeights(single LDM-layout file, reduced) strength 1", single_file_image,
                             expected["v0-1 strength 1"])
    assert diff <= TOLERANCE


def test_delta_at_strength_half_equals_half_the_delta_merged(comfy_server, expected, reduced_perflow_delta,
                                                             reduced_weight_delta):
    ours = run(comfy_server, *delta_graph(reduced_perflow_delta, reduced_weight_delta.finetune, 0.5))
    diff = record_difference("PeRFlowDeltaWeights strength 0.5 (reduced)", ours, expected["v0-1 strength 0.5"])
    assert diff <= TOLERANCE


@pytest.mark.parametrize("label", ["no delta (strength 0)", "v0-0 strength 1"])
def test_without_the_delta_or_with_the_other_variant_the_image_misses_by_a_wide_margin(single_file_image, expected,
                                                                                       label):
    """Both must be caught: a loader that skipped the delta, or one that took the folder's v0-0 file (the folder
    test above holds the full-size v0-1 merge within the tolerance)."""
    diff = record_difference(f"PeRFlow delta broken variant (reduced): {label}", single_file_image, expected[label])
    assert diff > BROKEN_MARGIN
