"""The random-weight InstaFlow random_model (devtools/random_models.py) and the reference pipeline
(devtools/reference_rf.py) that the equivalence tests are built on."""
from __future__ import annotations

import contextlib
import json
import time

import numpy as np
import pytest
import torch
from safetensors import safe_open

from devtools.random_models import ensure_random_instaflow
from devtools.reference_rf import ReferenceInstaFlow, to_uint8

PROMPT = "a photo of a cat sitting on a windowsill"


@pytest.fixture(scope="module")
def random_model(instaflow_models):
    return instaflow_models


@pytest.fixture(scope="module")
def reference(random_model):
    return ReferenceInstaFlow(random_model.diffusers_dir)


@pytest.fixture(scope="module")
def noise():
    return torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))  # 64x64 pixels


@pytest.fixture(scope="module")
def one_step(reference, noise):
    return reference.generate(PROMPT, noise)


def _mean_abs_u8(a, b) -> float:
    return float(np.abs(to_uint8(a).astype(np.int16) - to_uint8(b).astype(np.int16)).mean())


def test_repeated_calls_reuse_the_cached_build(random_model):
    start = time.monotonic()
    again = ensure_random_instaflow()
    assert time.monotonic() - start < 1.0
    assert again == random_model
    assert random_model.diffusers_dir == random_model.models_root / "diffusers" / random_model.name
    assert random_model.single_file == random_model.models_root / "checkpoints" / f"{random_model.name}.safetensors"


def test_diffusers_folder_has_the_official_layout(random_model):
    root = random_model.diffusers_dir
    index = json.loads((root / "model_index.json").read_text())
    assert index["_class_name"] == "RectifiedFlowPipeline"
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    assert index["scheduler"] == ["diffusers", "PNDMScheduler"]
    for path in [
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json", "text_encoder/model.safetensors",
        "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json", "scheduler/scheduler_config.json",
    ]:
        assert (root / path).is_file(), path
    scheduler = json.loads((root / "scheduler/scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "PNDMScheduler"


def test_components_have_the_sd15_architecture(reference):
    unet = reference.unet.config
    assert unet.sample_size == 64 and unet.in_channels == 4 and unet.out_channels == 4
    assert list(unet.block_out_channels) == [320, 640, 1280, 1280]
    assert unet.cross_attention_dim == 768 and unet.attention_head_dim == 8 and unet.layers_per_block == 2
    vae = reference.vae.config
    assert vae.scaling_factor == pytest.approx(0.18215) and vae.sample_size == 512 and vae.latent_channels == 4
    assert list(vae.block_out_channels) == [128, 256, 512, 512]
    text = reference.text_encoder.config
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads) == (768, 12, 12)
    assert (text.intermediate_size, text.vocab_size, text.max_position_embeddings) == (3072, 49408, 77)
    assert text.hidden_act == "quick_gelu"
    assert reference.tokenizer.model_max_length == 77
    assert sum(p.numel() for p in reference.unet.parameters()) == 859_520_964  # SD1.5 UNet


def test_diffusers_weights_are_fp32_files(random_model):
    for path in ["unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                 "text_encoder/model.safetensors"]:
        with safe_open(str(random_model.diffusers_dir / path), framework="pt") as f:
            first = next(iter(f.keys()))
            assert f.get_slice(first).get_dtype() == "F32", path


def test_single_file_has_ldm_keys_in_fp16(random_model):
    with safe_open(str(random_model.single_file), framework="pt") as f:
        keys = list(f.keys())
        prefixes = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model.")
        assert all(k.startswith(prefixes) for k in keys)
        for prefix in prefixes:
            assert any(k.startswith(prefix) for k in keys), prefix
        assert not [k for k in keys if "down_blocks" in k or "up_blocks" in k or "mid_block" in k]
        for key in ["model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.out.2.weight",
                    "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight",
                    "first_stage_model.decoder.conv_out.weight", "first_stage_model.encoder.mid.attn_1.q.weight",
                    "cond_stage_model.transformer.text_model.final_layer_norm.weight"]:
            assert key in keys, key
        assert {f.get_slice(k).get_dtype() for k in keys} == {"F16"}


def _folder_key_count(random_model) -> int:
    total = 0
    for path in ["unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                 "text_encoder/model.safetensors"]:
        with safe_open(str(random_model.diffusers_dir / path), framework="pt") as f:
            total += len(list(f.keys()))
    return total


# LDM key -> (component file, diffusers/transformers key), written by hand from the SD1.5 layouts
# (independent of the ComfyUI key maps used to write the file).
SAMPLE_KEYS = {
    "model.diffusion_model.input_blocks.0.0.weight": ("unet", "conv_in.weight"),
    "model.diffusion_model.time_embed.0.weight": ("unet", "time_embedding.linear_1.weight"),
    "model.diffusion_model.time_embed.2.bias": ("unet", "time_embedding.linear_2.bias"),
    "model.diffusion_model.input_blocks.1.0.in_layers.2.weight": ("unet", "down_blocks.0.resnets.0.conv1.weight"),
    "model.diffusion_model.input_blocks.1.0.emb_layers.1.weight": ("unet", "down_blocks.0.resnets.0.time_emb_proj.weight"),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight":
        ("unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"),
    "model.diffusion_model.input_blocks.3.0.op.weight": ("unet", "down_blocks.0.downsamplers.0.conv.weight"),
    "model.diffusion_model.input_blocks.4.0.skip_connection.weight": ("unet", "down_blocks.1.resnets.0.conv_shortcut.weight"),
    "model.diffusion_model.input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight":
        ("unet", "down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight"),
    "model.diffusion_model.middle_block.1.proj_in.weight": ("unet", "mid_block.attentions.0.proj_in.weight"),
    "model.diffusion_model.middle_block.2.out_layers.3.weight": ("unet", "mid_block.resnets.1.conv2.weight"),
    "model.diffusion_model.output_blocks.2.1.conv.weight": ("unet", "up_blocks.0.upsamplers.0.conv.weight"),
    "model.diffusion_model.output_blocks.5.2.conv.weight": ("unet", "up_blocks.1.upsamplers.0.conv.weight"),
    "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.ff.net.2.weight":
        ("unet", "up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2.weight"),
    "model.diffusion_model.out.0.weight": ("unet", "conv_norm_out.weight"),
    "model.diffusion_model.out.2.weight": ("unet", "conv_out.weight"),
    "model.diffusion_model.out.2.bias": ("unet", "conv_out.bias"),
    "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight": ("vae", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight"),
    "first_stage_model.encoder.mid.attn_1.k.weight": ("vae", "encoder.mid_block.attentions.0.to_k.weight"),
    "first_stage_model.quant_conv.weight": ("vae", "quant_conv.weight"),
    "first_stage_model.quant_conv.bias": ("vae", "quant_conv.bias"),
    "first_stage_model.post_quant_conv.weight": ("vae", "post_quant_conv.weight"),
    "first_stage_model.decoder.mid.block_1.conv1.weight": ("vae", "decoder.mid_block.resnets.0.conv1.weight"),
    "first_stage_model.decoder.mid.attn_1.proj_out.weight": ("vae", "decoder.mid_block.attentions.0.to_out.0.weight"),
    "first_stage_model.decoder.up.0.block.2.conv2.weight": ("vae", "decoder.up_blocks.3.resnets.2.conv2.weight"),
    "first_stage_model.decoder.up.3.upsample.conv.weight": ("vae", "decoder.up_blocks.0.upsamplers.0.conv.weight"),
    "first_stage_model.decoder.norm_out.weight": ("vae", "decoder.conv_norm_out.weight"),
    "first_stage_model.decoder.conv_out.weight": ("vae", "decoder.conv_out.weight"),
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight":
        ("text_encoder", "text_model.embeddings.token_embedding.weight"),
    "cond_stage_model.transformer.text_model.encoder.layers.11.self_attn.v_proj.weight":
        ("text_encoder", "text_model.encoder.layers.11.self_attn.v_proj.weight"),
    "cond_stage_model.transformer.text_model.final_layer_norm.bias": ("text_encoder", "text_model.final_layer_norm.bias"),
}
COMPONENT_FILES = {"unet": "unet/diffusion_pytorch_model.safetensors", "vae": "vae/diffusion_pytorch_model.safetensors",
                   "text_encoder": "text_encoder/model.safetensors"}


def test_single_file_holds_the_same_values_as_the_diffusers_folder(random_model):
    with contextlib.ExitStack() as stack:
        folder = {name: stack.enter_context(safe_open(str(random_model.diffusers_dir / path), framework="pt"))
                  for name, path in COMPONENT_FILES.items()}
        single = stack.enter_context(safe_open(str(random_model.single_file), framework="pt"))
        assert len(list(single.keys())) == _folder_key_count(random_model)
        for ldm_key, (component, key) in SAMPLE_KEYS.items():
            packed = single.get_tensor(ldm_key)
            original = folder[component].get_tensor(key)
            assert original.dtype == torch.float32
            # VAE attention projections are 1x1 convs in LDM and linear layers in diffusers.
            assert torch.equal(packed.float().reshape(original.shape), original), ldm_key


def test_reference_one_step_output_is_finite_and_not_saturated(one_step):
    assert one_step.shape == (1, 64, 64, 3)
    assert torch.isfinite(one_step).all()
    assert 0.1 < float(one_step.std()) < 0.3  # measured ~0.12
    assert 0.2 < float(one_step.mean()) < 0.8
    clipped = float(((one_step <= 0) | (one_step >= 1)).float().mean())
    assert clipped < 0.03  # measured ~0.3 %


def test_velocity_has_unit_scale(reference, noise):
    v = reference.velocity(noise, 1000.0, reference.encode_prompt([PROMPT]))
    assert 0.7 < float(v.std()) < 1.5  # measured ~1.0, as strong as the noise itself


def test_flipping_the_velocity_sign_changes_the_image_widely(reference, noise, one_step):
    flipped = reference.generate(PROMPT, noise, velocity_sign=-1.0)
    assert _mean_abs_u8(one_step, flipped) > 15  # measured ~32/255


def test_the_timestep_changes_the_image(reference, noise, one_step):
    at_500 = reference.generate(PROMPT, noise, timestep_scale=500.0)
    assert _mean_abs_u8(one_step, at_500) > 3  # measured ~8/255
    at_999 = reference.generate(PROMPT, noise, timestep_scale=999.0)
    assert _mean_abs_u8(one_step, at_999) > 0.5  # measured ~1.6/255


def test_the_prompt_changes_the_image(reference, noise, one_step):
    other = reference.generate("a red sports car on a mountain road", noise)
    assert _mean_abs_u8(one_step, other) > 1  # measured ~2.7/255


def test_reference_is_deterministic(reference, noise, one_step):
    assert torch.equal(reference.generate(PROMPT, noise), one_step)


def test_to_uint8_quantizes_like_comfyui_save_image():
    images = torch.tensor([[[[0.0, 0.5, 1.0], [-0.2, 0.999, 1.3]]]])
    assert to_uint8(images).tolist() == [[[[0, 127, 255], [0, 254, 255]]]]
    assert to_uint8(images).dtype == np.uint8
