"""Broken, foreign and hostile model files for the robustness tests, built once and cached.

    cache_root()/fixtures/<TAG>/models/
        checkpoints/robustness/             single files (listed by InstaFlowLoader and the stock loaders)
            truncated.safetensors           the reduced SD1.5 stand-in's file cut 1 MB after its header
            not-safetensors.safetensors     a text file with a .safetensors name
            empty.safetensors               0 bytes
            malicious-pickle.ckpt           a torch pickle whose __reduce__ would create PICKLE_MARKER
            fake-sd2-weights-only.ckpt      a benign torch pickle (tensors only) that ComfyUI detects as SD2
            fake-sdxl.safetensors           detected as SDXL
            fake-sd2.safetensors            detected as SD2.x
            fake-flux-unet-only.safetensors detected as Flux (a diffusion-model-only file, no key prefix)
            fake-sd15-unet-only.safetensors detected as SD1.5, but no text encoder or VAE
        instaflow/robustness/
            instaflow-reduced-sd15-flipped.safetensors
                                            the reduced stand-in's file with the UNet output layer negated:
                                            a valid, different model (for the replaced-file test)
        diffusers/robustness/
            missing-unet/ missing-vae/ missing-text_encoder/
                                            diffusers folders lacking one part (the others: placeholders)
            fake-sdxl/                      an SDXL diffusers folder (UNet detected as SDXL)
            malicious-pickle-unet/          unet/diffusion_pytorch_model.bin is the malicious pickle
        loras/robustness/fake-sdxl-lora.safetensors
                                            kohya SDXL LoRA keys (one that names an SD1.5 weight with an
                                            SDXL shape, two that do not exist in SD1.5)
        controlnet/robustness/fake-sdxl-controlnet.safetensors
                                            a tiny ControlNet with SDXL's conditioning (pooled/size vector
                                            input, 2048-dim text context) and shrunken channels

"Detection-only" fakes: ComfyUI recognises an architecture from the key names and from the shapes
of a few tensors. The build records which tensors ComfyUI's own detection reads (on the full key set
of the real architecture, built on the meta device), writes those with their real shapes and every
other key as a 1-element tensor, and checks that ComfyUI detects the written file as intended. The
values are int8 zeros: nothing may ever build a model from these files (a stock loader would try to
allocate the full-size model). The build imports ComfyUI in its subprocess only.
"""
from __future__ import annotations

import json
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.cached_fixture import ensure_built, fixture_base, script_main
from devtools.comfyui_source import comfyui_path

TAG = "instaflow-robustness-v2"
FAMILY = "instaflow-robustness"
PICKLE_MARKER_NAME = "PICKLE_PAYLOAD_WAS_EXECUTED"

# Names as the loaders list them (relative to their model folder).
TRUNCATED = "robustness/truncated.safetensors"
NOT_SAFETENSORS = "robustness/not-safetensors.safetensors"
EMPTY = "robustness/empty.safetensors"
MALICIOUS_PICKLE = "robustness/malicious-pickle.ckpt"
SD2_PICKLE = "robustness/fake-sd2-weights-only.ckpt"
SDXL = "robustness/fake-sdxl.safetensors"
SD2 = "robustness/fake-sd2.safetensors"
FLUX_UNET_ONLY = "robustness/fake-flux-unet-only.safetensors"
SD15_UNET_ONLY = "robustness/fake-sd15-unet-only.safetensors"
FLIPPED_MODEL = "robustness/instaflow-reduced-sd15-flipped.safetensors"
MISSING_PART_FOLDERS = {part: f"robustness/missing-{part}" for part in ("unet", "vae", "text_encoder")}
SDXL_DIFFUSERS = "robustness/fake-sdxl"
MALICIOUS_PICKLE_DIFFUSERS = "robustness/malicious-pickle-unet"
SDXL_LORA = "robustness/fake-sdxl-lora.safetensors"
SDXL_CONTROLNET = "robustness/fake-sdxl-controlnet.safetensors"


@dataclass(frozen=True)
class RobustnessModels:
    models_root: Path
    pickle_marker: Path  # must never exist: it is created only if the malicious pickle's code runs

    def checkpoint(self, name: str) -> Path:
        return self.models_root / "checkpoints" / name

    def instaflow(self, name: str) -> Path:
        return self.models_root / "instaflow" / name

    def diffusers(self, name: str) -> Path:
        return self.models_root / "diffusers" / name


def pickle_marker() -> Path:
    return fixture_base(TAG) / PICKLE_MARKER_NAME


def ensure_robustness_models(source_single_file: Path) -> RobustnessModels:
    """The cached fixture, built from an SD1.5 single file (the reduced stand-in, devtools/reduced_sd15.py) on first use."""
    root = ensure_built(TAG, FAMILY, Path(__file__).resolve(), [
        "--arg", f"source={source_single_file}", "--arg", f"comfyui={comfyui_path()}",
        "--arg", f"marker={pickle_marker()}"])
    return RobustnessModels(models_root=root, pickle_marker=pickle_marker())


# ----------------------------------------------------------------------------------------------
# Build (subprocess): python robustness_models.py --build-into DIR --arg source=F --arg comfyui=D ...


class _Recording(dict):
    """A state dict that remembers which tensors were read (their shapes matter to detection)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in self:
            self.read.add(key)
        return super().get(key, default)


def _detection_only(full: dict, detect):
    """full: key -> tensor (meta is fine). Returns the int8 zero state dict that `detect` sees the same."""
    import torch

    recording = _Recording(full)
    config = detect(recording)
    if config is None:
        raise RuntimeError("ComfyUI did not detect the full-size key set")
    return {key: torch.zeros(tuple(full[key].shape) if key in recording.read else (1,), dtype=torch.int8)
            for key in full}, type(config).__name__


def _meta_diffusers_unet(config: dict) -> dict:
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel(**config).state_dict()


SDXL_UNET = dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=[320, 640, 1280],
                 down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                 up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                 transformer_layers_per_block=[1, 2, 10], attention_head_dim=[5, 10, 20], cross_attention_dim=2048,
                 use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816)
SD2_UNET = dict(sample_size=96, in_channels=4, out_channels=4, layers_per_block=2,
                block_out_channels=[320, 640, 1280, 1280],
                down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
                attention_head_dim=[5, 10, 20, 20], cross_attention_dim=1024, use_linear_projection=True)
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=[320, 640, 1280, 1280],
                 down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                 up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
                 attention_head_dim=8, cross_attention_dim=768)
# The keys Flux detection looks at (comfy/model_detection.py), with Flux.1-dev's shapes; one double and
# one single block are enough to be counted.
FLUX_KEYS = {
    "img_in.weight": (3072, 64), "txt_in.weight": (3072, 4096), "vector_in.in_layer.weight": (3072, 768),
    "guidance_in.in_layer.weight": (3072, 256), "time_in.in_layer.weight": (3072, 256),
    "double_blocks.0.img_attn.norm.key_norm.scale": (128,), "double_blocks.0.img_attn.qkv.weight": (9216, 3072),
    "single_blocks.0.linear1.weight": (21504, 3072), "final_layer.linear.weight": (64, 3072),
}


def _ldm_unet(diffusers_sd: dict, comfy_detection, comfy_utils) -> dict:
    """Diffusers UNet keys -> ComfyUI/LDM UNet keys (no prefix), shapes kept."""
    unet_config = comfy_detection.unet_config_from_diffusers_unet(diffusers_sd)
    mapping = comfy_utils.unet_to_diffusers(unet_config)  # diffusers key -> LDM key
    return {mapping[key]: tensor for key, tensor in diffusers_sd.items() if key in mapping}


def _detect_ldm(prefix: str, comfy_detection):
    return lambda sd: comfy_detection.model_config_from_unet(sd, prefix)


def _save(path: Path, sd: dict, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=metadata)


def _write_fakes(root: Path, comfy_detection, comfy_utils) -> None:
    import torch

    checkpoints = root / "checkpoints"
    for name, config, expected in [(SDXL, SDXL_UNET, "SDXL"), (SD2, SD2_UNET, "SD20")]:
        ldm = {"model.diffusion_model." + k: v for k, v in _ldm_unet(_meta_diffusers_unet(config), comfy_detection, comfy_utils).items()}
        fake, found = _detection_only(ldm, _detect_ldm("model.diffusion_model.", comfy_detection))
        assert found == expected, (name, found)
        _save(checkpoints / name, fake)
        if expected == "SD20":  # the same detection-only weights as a benign, tensors-only torch pickle
            torch.save({"state_dict": fake}, checkpoints / SD2_PICKLE)

    sd15 = _ldm_unet(_meta_diffusers_unet(SD15_UNET), comfy_detection, comfy_utils)
    fake, found = _detection_only(sd15, _detect_ldm("", comfy_detection))
    assert found == "SD15", found
    _save(checkpoints / SD15_UNET_ONLY, fake)

    flux = {k: torch.empty(shape, device="meta") for k, shape in FLUX_KEYS.items()}
    fake, found = _detection_only(flux, _detect_ldm("", comfy_detection))
    assert found == "Flux", found
    _save(checkpoints / FLUX_UNET_ONLY, fake)

    sdxl_diffusers, found = _detection_only(_meta_diffusers_unet(SDXL_UNET), comfy_detection.model_config_from_diffusers_unet)
    assert found == "SDXL", found
    folder = root / "diffusers" / SDXL_DIFFUSERS
    _save(folder / "unet" / "diffusion_pytorch_model.safetensors", sdxl_diffusers)
    (folder / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel", **SDXL_UNET}, indent=2))
    for part, weights in [("vae", "diffusion_pytorch_model.safetensors"), ("text_encoder", "model.safetensors"),
                          ("text_encoder_2", "model.safetensors")]:
        _placeholder(folder / part / weights)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))

    # The written files must be detected exactly as intended (shapes read from disk).
    from safetensors.torch import load_file
    for name, prefix, expected in [(SDXL, "model.diffusion_model.", "SDXL"), (SD2, "model.diffusion_model.", "SD20"),
                                   (SD15_UNET_ONLY, "", "SD15"), (FLUX_UNET_ONLY, "", "Flux")]:
        found = comfy_detection.model_config_from_unet(load_file(str(checkpoints / name)), prefix)
        assert type(found).__name__ == expected, (name, found)


def _placeholder(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"placeholder: never read, the folder is refused before loading\n")


class _MaliciousPayload:
    """Pickles as a call to open(marker, "w"): unpickling it with arbitrary objects creates the marker."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_broken_files(root: Path, source: Path, marker: Path) -> None:
    import torch

    checkpoints = root / "checkpoints"
    (checkpoints / "robustness").mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as f:
        header_length = struct.unpack("<Q", f.read(8))[0]
        f.seek(0)
        (checkpoints / TRUNCATED).write_bytes(f.read(8 + header_length + 1_000_000))
    (checkpoints / NOT_SAFETENSORS).write_text("This is a text file, not a model.\n" * 20)
    (checkpoints / EMPTY).write_bytes(b"")

    payload = {"state_dict": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1),
                              "payload": _MaliciousPayload(str(marker))}}
    torch.save(payload, checkpoints / MALICIOUS_PICKLE)

    diffusers = root / "diffusers"
    parts = {"unet": "diffusion_pytorch_model.safetensors", "vae": "diffusion_pytorch_model.safetensors",
             "text_encoder": "model.safetensors"}
    for missing, folder_name in MISSING_PART_FOLDERS.items():
        folder = diffusers / folder_name
        for part, weights in parts.items():
            if part != missing:
                _placeholder(folder / part / weights)
        (folder / "model_index.json").write_text(json.dumps({"_class_name": "RectifiedFlowPipeline"}))
    folder = diffusers / MALICIOUS_PICKLE_DIFFUSERS
    (folder / "unet").mkdir(parents=True)
    shutil.copyfile(checkpoints / MALICIOUS_PICKLE, folder / "unet" / "diffusion_pytorch_model.bin")
    _placeholder(folder / "vae" / parts["vae"])
    _placeholder(folder / "text_encoder" / parts["text_encoder"])
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "RectifiedFlowPipeline"}))


def _write_flipped_model(root: Path, source: Path) -> None:
    """A copy of `source` with model.diffusion_model.out.2 (the UNet's output conv) negated in place."""
    target = root / "instaflow" / FLIPPED_MODEL
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    with open(target, "r+b") as f:
        header_length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_length))
        for key in ("model.diffusion_model.out.2.weight", "model.diffusion_model.out.2.bias"):
            entry = header[key]
            assert entry["dtype"] == "F16", entry
            start, end = entry["data_offsets"]
            f.seek(8 + header_length + start)
            raw = bytearray(f.read(end - start))
            for i in range(1, len(raw), 2):  # little-endian fp16: the sign bit is the high byte's top bit
                raw[i] ^= 0x80
            f.seek(8 + header_length + start)
            f.write(raw)


def _write_sdxl_lora(root: Path) -> None:
    import torch

    g = torch.Generator().manual_seed(7)
    sd = {}
    for name, (fan_in, fan_out) in {
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k": (2048, 640),  # SD1.5 has 768 -> 640
        "lora_unet_input_blocks_7_1_transformer_blocks_5_attn1_to_q": (1280, 1280),  # no such block in SD1.5
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj": (1280, 1280),  # SDXL's second text encoder
    }.items():
        sd[f"{name}.lora_down.weight"] = torch.randn(4, fan_in, generator=g).half() * 0.1
        sd[f"{name}.lora_up.weight"] = torch.randn(fan_out, 4, generator=g).half() * 0.1
        sd[f"{name}.alpha"] = torch.tensor(4.0).half()
    _save(root / "loras" / SDXL_LORA, sd)


def _write_sdxl_controlnet(root: Path, comfy) -> None:
    import torch

    import comfy.cldm.cldm
    import comfy.controlnet
    import comfy.ops

    torch.manual_seed(11)
    net = comfy.cldm.cldm.ControlNet(
        image_size=32, in_channels=4, model_channels=32, hint_channels=3, num_res_blocks=[1, 1], channel_mult=[1, 2],
        dropout=0.0, num_classes="sequential", adm_in_channels=2816, num_head_channels=32, use_spatial_transformer=True,
        transformer_depth=[0, 1], transformer_depth_middle=1, context_dim=2048, use_linear_in_transformer=True,
        operations=comfy.ops.disable_weight_init, device="cpu", dtype=torch.float32)
    sd = {k: (torch.randn_like(v) * 0.02).half() for k, v in net.state_dict().items()}
    path = root / "controlnet" / SDXL_CONTROLNET
    _save(path, sd)
    control = comfy.controlnet.load_controlnet_state_dict(dict(sd))  # ComfyUI must accept it as a ControlNet
    assert control is not None and control.control_model.num_classes == "sequential"


def build(models_root: Path, source: str, comfyui: str, marker: str) -> None:
    sys.path.insert(0, comfyui)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True  # before comfy.model_management is imported: no GPU probing
    import comfy.model_detection
    import comfy.utils

    models_root.mkdir(parents=True)
    _write_broken_files(models_root, Path(source), Path(marker))
    _write_fakes(models_root, comfy.model_detection, comfy.utils)
    _write_sdxl_lora(models_root)
    _write_sdxl_controlnet(models_root, comfy)
    _write_flipped_model(models_root, Path(source))


if __name__ == "__main__":
    script_main(build, sys.argv[1:], __doc__.splitlines()[0])
