"""The PeRFlow test models have the layouts of the real hub repositories (no server, headers only).

devtools/random_perflow_sd15.py, random_perflow_delta.py and random_perflow_sdxl.py describe them.
"""
import json
import os

import torch
from safetensors import safe_open

from devtools.random_models import UNET_CONFIG
from devtools.random_perflow_sd15 import CALIBRATION, LDM_VAE_PREFIX


def header(path) -> dict:
    """{key: (dtype, shape)} of a safetensors file, without loading it."""
    with safe_open(str(path), framework="pt") as f:
        return {key: (f.get_slice(key).get_dtype(), tuple(f.get_slice(key).get_shape())) for key in f.keys()}


def parameters(path) -> int:
    total = 0
    for _, shape in header(path).values():
        count = 1
        for size in shape:
            count *= size
        total += count
    return total


def test_sd15_folder_is_a_stable_diffusion_pipeline_sharing_the_instaflow_weights(perflow_sd15_models, instaflow_models):
    folder = perflow_sd15_models.folder
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    for part, name in [("unet", "diffusion_pytorch_model.safetensors"), ("text_encoder", "model.safetensors")]:
        assert os.path.samefile(folder / part / name, instaflow_models.diffusers_dir / part / name) or \
            header(folder / part / name) == header(instaflow_models.diffusers_dir / part / name)
    assert (folder / "tokenizer" / "vocab.json").is_file()


def test_sd15_single_file_holds_the_folders_calibrated_vae(perflow_sd15_models):
    vae = perflow_sd15_models.folder / "vae" / "diffusion_pytorch_model.safetensors"
    with safe_open(str(vae), framework="pt") as folder, safe_open(str(perflow_sd15_models.single_file), framework="pt") as single:
        for name in CALIBRATION:
            assert single.get_tensor(LDM_VAE_PREFIX + name).dtype == torch.float16
            assert torch.equal(single.get_tensor(LDM_VAE_PREFIX + name).float(), folder.get_tensor(name))


def test_delta_folder_has_two_variants_of_full_size_fp16_unet_deltas(perflow_delta_models, perflow_sd15_models):
    config = json.loads((perflow_delta_models.folder / "config.json").read_text())
    assert config["_class_name"] == "UNet2DConditionModel" and config["block_out_channels"] == UNET_CONFIG["block_out_channels"]
    unet = header(perflow_sd15_models.folder / "unet" / "diffusion_pytorch_model.safetensors")
    for variant in ("v0-1", "v0-0"):
        delta = header(perflow_delta_models.variant_file(variant))
        assert delta.keys() == unet.keys()
        assert {dtype for dtype, _ in delta.values()} == {"F16"}
        assert {key: shape for key, (_, shape) in delta.items()} == {key: shape for key, (_, shape) in unet.items()}


def test_delta_variants_differ_and_the_single_file_is_v0_1(perflow_delta_models):
    key = "conv_in.weight"
    with safe_open(str(perflow_delta_models.variant_file("v0-1")), framework="pt") as new, \
            safe_open(str(perflow_delta_models.variant_file("v0-0")), framework="pt") as old:
        assert not torch.equal(new.get_tensor(key), old.get_tensor(key))
        assert new.get_tensor(key).float().std() > 0
    assert os.path.samefile(perflow_delta_models.single_file, perflow_delta_models.variant_file("v0-1"))


def test_reduced_delta_file_holds_its_reference_folders_v0_1_numbers_under_ldm_keys(reduced_perflow_delta):
    with safe_open(str(reduced_perflow_delta.single_file), framework="pt") as ldm, \
            safe_open(str(reduced_perflow_delta.variant_file("v0-1")), framework="pt") as diffusers:
        assert "input_blocks.0.0.weight" in ldm.keys() and "conv_in.weight" in diffusers.keys()
        assert torch.equal(ldm.get_tensor("input_blocks.0.0.weight"), diffusers.get_tensor("conv_in.weight"))
        assert len(ldm.keys()) == len(diffusers.keys())


def test_sdxl_folder_is_an_sdxl_pipeline_with_v0_fix_variant_files(perflow_sdxl_models):
    folder, variant = perflow_sdxl_models.folder, perflow_sdxl_models.variant
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    for part, name in [("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"),
                       ("text_encoder", "model"), ("text_encoder_2", "model")]:
        assert (folder / part / f"{name}.{variant}.safetensors").is_file(), part
    assert json.loads((folder / "tokenizer_2" / "special_tokens_map.json").read_text())["pad_token"] == "!"
    assert json.loads((folder / "vae" / "config.json").read_text())["scaling_factor"] == 0.13025


def test_sdxl_text_encoders_are_full_size_clip_l_and_bigg(perflow_sdxl_models):
    folder, variant = perflow_sdxl_models.folder, perflow_sdxl_models.variant
    clip_l = parameters(folder / "text_encoder" / f"model.{variant}.safetensors")
    clip_g = parameters(folder / "text_encoder_2" / f"model.{variant}.safetensors")
    assert 1.2e8 < clip_l < 1.3e8
    assert 6.9e8 < clip_g < 7.0e8


def test_sdxl_unet_is_in_comfyui_ldm_layout_and_its_reference_copy_in_diffusers_layout(perflow_sdxl_models):
    unet = header(perflow_sdxl_models.folder / "unet" / f"diffusion_pytorch_model.{perflow_sdxl_models.variant}.safetensors")
    reference = header(perflow_sdxl_models.reference_unet / "diffusion_pytorch_model.safetensors")
    assert "label_emb.0.0.weight" in unet and "input_blocks.0.0.weight" in unet  # SDXL's LDM names
    assert "add_embedding.linear_1.weight" in reference and "conv_in.weight" in reference
    assert len(unet) == len(reference)
    assert unet["label_emb.0.0.weight"][1] == (1280, 2816)
    assert parameters(perflow_sdxl_models.reference_unet / "diffusion_pytorch_model.safetensors") < 6e8
