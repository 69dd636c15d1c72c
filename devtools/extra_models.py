"""Models the device check needs beyond the tests' fixtures: random TAESD weights, and clutter.

- ensure_random_taesd(): models_root/vae_approx/taesd_{encoder,decoder}.safetensors, ComfyUI's TAESD
  architecture (comfy/taesd/taesd.py) with seeded random weights, built once into the fixture cache
  like the tests' models. For timing only: the images it decodes are noise. ComfyUI's VAELoader lists
  it as "taesd" when both files are in a vae_approx folder.
- make_clutter(root): 1,000 small files with model extensions in the folders the pack lists
  (instaflow, checkpoints, perflow; some in subfolders), as a user's model folders would hold.

    python -m devtools.extra_models --build-into DIR --arg comfyui=PATH     (the TAESD build subprocess)
"""
from __future__ import annotations

import sys
from pathlib import Path

from devtools.cached_fixture import ensure_built, script_main
from devtools.comfyui_source import comfyui_path

TAESD_TAG = "instaflow-random-taesd-v1"
SEED = 20240512
CLUTTER_FILES = 1000
_CLUTTER = (("instaflow", 400), ("checkpoints", 400), ("perflow", 200))


def ensure_random_taesd() -> Path:
    """The models root holding vae_approx/taesd_*; built on first use (a few seconds)."""
    return ensure_built(TAESD_TAG, "instaflow-random-taesd", Path(__file__).resolve(), ["--arg", f"comfyui={comfyui_path()}"])


def _build_taesd(models_root: Path, comfyui: str) -> None:
    sys.path.insert(0, comfyui)
    import torch
    from safetensors.torch import save_file

    import comfy.options

    comfy.options.enable_args_parsing()  # ComfyUI's device set-up runs at import: no GPU -> --cpu
    sys.argv = [sys.argv[0], *([] if torch.cuda.is_available() else ["--cpu"])]
    from comfy.taesd.taesd import Decoder, Encoder

    torch.manual_seed(SEED)
    folder = models_root / "vae_approx"
    folder.mkdir(parents=True)
    for name, module in (("taesd_encoder", Encoder(latent_channels=4)), ("taesd_decoder", Decoder(latent_channels=4))):
        with torch.no_grad():  # ComfyUI's layers skip PyTorch's initialisation: give every weight a value
            for param in module.parameters():
                if param.ndim > 1:
                    torch.nn.init.kaiming_uniform_(param, a=5 ** 0.5)
                else:
                    param.zero_()
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / f"{name}.safetensors"))


def make_clutter(root: Path, files: int = CLUTTER_FILES) -> Path:
    """root/{instaflow,checkpoints,perflow}/...: `files` small model-named files (a quarter in subfolders)."""
    total = sum(n for _, n in _CLUTTER)
    made = 0
    for folder, share in _CLUTTER:
        count = share * files // total if folder != _CLUTTER[-1][0] else files - made
        for i in range(count):
            sub = f"collection_{(i // 4) % 8}/" if i % 4 == 0 else ""
            path = root / folder / f"{sub}clutter_{folder}_{i:04d}.safetensors"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_bytes(b"{}")
        made += count
    return root


if __name__ == "__main__":
    script_main(_build_taesd, sys.argv[1:], __doc__.splitlines()[0])
