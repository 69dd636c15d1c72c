"""Stock LoraLoader on an InstaFlow model equals the LoRA merged into the diffusers weights by hand.

The model is the reduced SD1.5 stand-in (devtools/reduced_sd15.py). Two random LoRAs for it
(devtools/random_lora.py, ensure_reduced_loras) cover every UNet attention projection,
feed-forward and proj_in/proj_out layer and every text-encoder attention/MLP layer: a Kohya file
(lora_unet_*/lora_te_*, alpha/rank = 0.5) and a diffusers-layout file. The reference
(devtools/reference_lora.py) merges W += strength * alpha/rank * up @ down into the diffusers
UNet and CLIP text model as the official code/rf_lora.py does, then runs the official one-step loop.
Tolerance: mean absolute pixel difference within 2/255.
"""
import gc

import pytest

from devtools.comparison import TOLERANCE, WIDE_MARGIN, comfy_noise, record_difference
from devtools.graphs import Graph, decode_and_save, encode
from devtools.reference_lora import merge_diffusers_lora, merge_kohya_lora
from devtools.reference_rf import ReferenceInstaFlow, to_uint8

SEED = 1357
SIZE = 64
PROMPT = "a portrait of an old fisherman, oil painting"
STRENGTH = 0.8


@pytest.fixture(scope="module")
def expected(reduced_instaflow, reduced_loras):
    """expected(kind, unet_strength, text_strength) -> uint8 images, computed once per setting."""
    merges = {"kohya": (merge_kohya_lora, reduced_loras.kohya), "diffusers": (merge_diffusers_lora, reduced_loras.diffusers)}
    cache = {}

    def image(kind, unet_strength, text_strength):
        key = (kind, unet_strength, text_strength)
        if key not in cache:
            reference = ReferenceInstaFlow(reduced_instaflow.diffusers_dir)
            merge, path = merges[kind]
            merge(reference, path, unet_strength, text_strength)
            cache[key] = to_uint8(reference.generate(PROMPT, comfy_noise(SEED, size=SIZE)))
            del reference
            gc.collect()
        return cache[key]

    return image


def run(server, graph: Graph, save) -> list:
    return server.images(server.run(graph.api(), timeout=600), save.id)


def instaflow_loader_graph(models, lora_name, strength_model, strength_clip):
    """InstaFlowLoader -> LoraLoader -> CLIPTextEncode -> InstaFlowSampler, 1 step (LoRA after the patch)."""
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=models.name)
    model, clip = loader[0], loader[1]
    if lora_name is not None:
        lora = g.add("LoraLoader", model=model, clip=clip, lora_name=lora_name, strength_model=strength_model,
                     strength_clip=strength_clip)
        model, clip = lora[0], lora[1]
    sampled = g.add("InstaFlowSampler", model=model, seed=SEED, steps=1, cfg=1.0, positive=encode(g, clip, PROMPT)[0],
                    latent_image=g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], loader[2], "lora_instaflow_loader")


def checkpoint_graph(models, lora_name, strength_model, strength_clip):
    """CheckpointLoaderSimple -> LoraLoader -> ModelSamplingInstaFlow -> KSampler, 1 step (LoRA before the patch)."""
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=models.single_file.name)
    lora = g.add("LoraLoader", model=ckpt[0], clip=ckpt[1], lora_name=lora_name, strength_model=strength_model,
                 strength_clip=strength_clip)
    model = g.add("ModelSamplingInstaFlow", model=lora[0])
    sampled = g.add("KSampler", model=model[0], seed=SEED, steps=1, cfg=1.0, sampler_name="rectified_flow",
                    scheduler="instaflow", positive=encode(g, lora[1], PROMPT)[0], negative=encode(g, lora[1], "")[0],
                    latent_image=g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], ckpt[2], "lora_checkpoint")


def test_kohya_lora_equals_reference_merge(comfy_server, reduced_instaflow, reduced_loras, expected):
    g, save = instaflow_loader_graph(reduced_instaflow, reduced_loras.kohya.name, STRENGTH, STRENGTH)
    diff = record_difference(f"LoraLoader Kohya {STRENGTH}/{STRENGTH}", run(comfy_server, g, save),
                             expected("kohya", STRENGTH, STRENGTH))
    assert diff <= TOLERANCE


def test_diffusers_lora_equals_reference_merge(comfy_server, reduced_instaflow, reduced_loras, expected):
    g, save = checkpoint_graph(reduced_instaflow, reduced_loras.diffusers.name, STRENGTH, STRENGTH)
    diff = record_difference(f"LoraLoader diffusers {STRENGTH}/{STRENGTH}", run(comfy_server, g, save),
                             expected("diffusers", STRENGTH, STRENGTH))
    assert diff <= TOLERANCE


def test_model_and_clip_strengths_act_on_unet_and_text_encoder(comfy_server, reduced_instaflow, reduced_loras, expected):
    g, save = instaflow_loader_graph(reduced_instaflow, reduced_loras.kohya.name, 1.0, 0.5)
    diff = record_difference("LoraLoader Kohya model 1.0 / clip 0.5", run(comfy_server, g, save),
                             expected("kohya", 1.0, 0.5))
    assert diff <= TOLERANCE


@pytest.mark.parametrize("label, strength_model, strength_clip", [
    ("LoRA not applied (changes the image clearly)", None, None),
    ("alpha/rank ignored (strength doubled)", 2 * STRENGTH, 2 * STRENGTH),
    ("text-encoder part left out", STRENGTH, 0.0),
    ("UNet part left out", 0.0, STRENGTH),
])
def test_lora_applied_wrongly_fails_the_comparison(comfy_server, reduced_instaflow, reduced_loras, expected, label,
                                                   strength_model, strength_clip):
    lora_name = None if strength_model is None else reduced_loras.kohya.name
    g, save = instaflow_loader_graph(reduced_instaflow, lora_name, strength_model, strength_clip)
    diff = record_difference(f"LoRA broken variant: {label}", run(comfy_server, g, save),
                             expected("kohya", STRENGTH, STRENGTH))
    assert diff > WIDE_MARGIN
