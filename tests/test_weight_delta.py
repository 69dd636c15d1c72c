"""The InstaFlow weight-delta recipe with stock merge nodes equals the official rf_lora.py "hf" merge.

Official recipe ("InstaFlow + dreamshaper-7", code/rf_lora.py load_hf_hub_lora): UNet =
InstaFlow_UNet + alpha * (finetune_UNet - SD15_UNet), with the finetune's text encoder and VAE.
Stock graph: ModelMergeSubtract(model1=finetune, model2=SD1.5 base, multiplier=alpha) gives
alpha * finetune - alpha * base (comfy_extras/nodes_model_merging.py: model1's weights times
multiplier, model2's added with -multiplier); ModelMergeAdd(model1=InstaFlow, model2=that) adds it
to InstaFlow's UNet. Both merge nodes clone model1 and only patch "diffusion_model." weights, so
InstaFlow's rectified-flow sampling patch survives when InstaFlow is ModelMergeAdd's model1 (with
InstaFlow as model2 the result would sample as the finetune's noise-prediction model: wrong with
stock samplers; the pack's instaflow scheduler refuses it and InstaFlowSampler patches it, by
comfyui_glue/model_sampling.py and comfyui_glue/sampling_guards.py; not run here).

The recipe reads only the UNets of InstaFlow and of the base, so the graphs load those with stock
UNETLoader and the finetune with CheckpointLoaderSimple, as a user short of memory would: the server
then holds three UNets, the merged copy and one text encoder and VAE.

Stand-in checkpoints: devtools/random_weight_delta.py, made from the reduced SD1.5 stand-in
(devtools/reduced_sd15.py; on the full-size model the server held about 14 GiB here). The
example workflow instaflow_weight_delta runs the same recipe on the full-size stand-ins. The reference
(devtools/reference_weight_delta.py) merges by hand into the diffusers UNet, takes the
finetune's text encoder and VAE (read with diffusers' single-file converters) and runs the official
one-step loop. Tolerance: mean absolute pixel difference within 2/255. All reference images are
computed before the first graph runs, so the reference's weights are freed while the server holds
three SD1.5 UNets.
"""
import gc

import pytest

from devtools.comparison import TOLERANCE, WIDE_MARGIN, comfy_noise, record_difference
from devtools.graphs import Graph, decode_and_save, encode
from devtools.reference_rf import ReferenceInstaFlow, to_uint8
from devtools.reference_weight_delta import apply_weight_delta

SEED = 97531
SIZE = 64
PROMPT = "a cozy cabin in a snowy forest at dusk"
ALPHAS = (1.0, 0.7)


@pytest.fixture(scope="module")
def expected(reduced_instaflow, reduced_weight_delta) -> dict:
    """{alpha: uint8 images} of the official recipe."""
    images = {}
    for alpha in ALPHAS:
        reference = ReferenceInstaFlow(reduced_instaflow.diffusers_dir)
        apply_weight_delta(reference, reduced_weight_delta.finetune, reduced_weight_delta.base, alpha)
        images[alpha] = to_uint8(reference.generate(PROMPT, comfy_noise(SEED, size=SIZE)))
        del reference
        gc.collect()
    return images


def run(server, graph: Graph, save) -> list:
    return server.images(server.run(graph.api(), timeout=600), save.id)


def delta_graph(deltas, alpha, *, patch_after_merge=False, swap_subtract=False,
                instaflow_clip_and_vae=False, sampler=("euler", "simple")):
    """InstaFlow + alpha * (finetune - base) with ModelMergeSubtract + ModelMergeAdd and stock KSampler, 1 step.

    The three loaders come first, in the same order, in every graph: same node ids and inputs, so the
    server reuses the loaded checkpoints between tests. swap_subtract / instaflow_clip_and_vae build
    deliberately wrong variants. (InstaFlow as ModelMergeAdd's model2 is not run: the merge would
    patch a fourth full UNet copy, too much memory for the test machine; see the module docstring.)"""
    g = Graph()
    instaflow_unet = g.add("UNETLoader", unet_name=deltas.instaflow_unet, weight_dtype="default")[0]
    finetune = g.add("CheckpointLoaderSimple", ckpt_name=deltas.finetune.name)
    base_unet = g.add("UNETLoader", unet_name=deltas.base_unet, weight_dtype="default")[0]
    model = instaflow_unet if patch_after_merge else g.add("ModelSamplingInstaFlow", model=instaflow_unet)[0]
    first, second = (base_unet, finetune[0]) if swap_subtract else (finetune[0], base_unet)
    delta = g.add("ModelMergeSubtract", model1=first, model2=second, multiplier=alpha)[0]
    merged = g.add("ModelMergeAdd", model1=model, model2=delta)[0]
    if patch_after_merge:
        merged = g.add("ModelSamplingInstaFlow", model=merged)[0]
    if instaflow_clip_and_vae:
        clip = g.add("CLIPLoader", clip_name=deltas.instaflow_text_encoder, type="stable_diffusion")[0]
        vae = g.add("VAELoader", vae_name=deltas.instaflow_vae)[0]
    else:
        clip, vae = finetune[1], finetune[2]
    sampler_name, scheduler = sampler
    sampled = g.add("KSampler", model=merged, seed=SEED, steps=1, cfg=1.0, sampler_name=sampler_name,
                    scheduler=scheduler, positive=encode(g, clip, PROMPT)[0], negative=encode(g, clip, "")[0],
                    latent_image=g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], vae, "weight_delta")


def test_merge_nodes_on_patched_instaflow_equal_official_recipe(comfy_server, reduced_instaflow, reduced_weight_delta,
                                                                expected):
    """alpha 1 (the official demo); stock euler/simple only samples right if the merge kept InstaFlow's patch."""
    g, save = delta_graph(reduced_weight_delta, 1.0)
    diff = record_difference("ModelMergeSubtract+ModelMergeAdd on patched InstaFlow, alpha 1.0",
                             run(comfy_server, g, save), expected[1.0])
    assert diff <= TOLERANCE


def test_patch_after_merge_equals_official_recipe(comfy_server, reduced_instaflow, reduced_weight_delta, expected):
    g, save = delta_graph(reduced_weight_delta, 0.7, patch_after_merge=True,
                          sampler=("rectified_flow", "instaflow"))
    diff = record_difference("merges + ModelSamplingInstaFlow after the merge, alpha 0.7",
                             run(comfy_server, g, save), expected[0.7])
    assert diff <= TOLERANCE


@pytest.mark.parametrize("label, variant", [
    ("delta with the wrong sign (base - finetune)", {"swap_subtract": True}),
    ("InstaFlow's text encoder and VAE instead of the finetune's", {"instaflow_clip_and_vae": True}),
])
def test_weight_delta_built_wrongly_fails_the_comparison(comfy_server, reduced_instaflow, reduced_weight_delta, expected,
                                                         label, variant):
    g, save = delta_graph(reduced_weight_delta, 1.0, **variant)
    diff = record_difference(f"weight delta broken variant: {label}", run(comfy_server, g, save), expected[1.0])
    assert diff > WIDE_MARGIN
