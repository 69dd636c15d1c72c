"""The model files the example workflows declare, and random test models standing in for them.

Each template names the files its loaders read in `properties.models` on the loader node ({name, url,
directory}: what ComfyUI's missing-models dialog lists and downloads). Tests put a random model under
each declared name, in the declared folder of a writable models root (symlinks into the cached
fixtures), so the templates run exactly as saved; removing the links brings back the "models absent"
state a new user starts from.

Stand-ins, by declared name, on the reduced SD1.5 stand-in (devtools/reduced_sd15.py) wherever the file is
SD1.5: the templates are tested for running as saved; the equivalence modules test the weights' layouts.
- SD1.5 split files (`<model>_unet`, `_text_encoder`, `_vae` of InstaFlow-0.9B, 2-RF and PeRFlow SD1.5):
  the UNet is the reduced single file (stock UNETLoader reads a checkpoint's UNet keys only; the reduced
  UNet loads only in the LDM layout), the text encoder and VAE are the diffusers files of its reference
  folder (for PeRFlow, the reduced PeRFlow twin's);
- PeRFlow SDXL split files (`_unet`, `_clip_l`, `_clip_g`, `_vae`): unet/, text_encoder/,
  text_encoder_2/, vae/ of the `perflow-random-sdxl` test model;
- the PeRFlow delta file: the reduced twin's v0-1 delta (LDM layout);
- checkpoints and the ControlNet: the reduced SD1.5 base / finetune and ControlNet twins, the SDXL-refiner
  stand-in.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "example_workflows"

SD15_SPLIT_MODELS = ("instaflow_0_9B", "2_rectified_flow", "perflow_sd15_dreamshaper")
SD15_PARTS = {"unet": ("unet", "diffusion_pytorch_model"), "text_encoder": ("text_encoder", "model"),
              "vae": ("vae", "diffusion_pytorch_model")}
SDXL_SPLIT_MODELS = ("perflow_sdxl_base",)
SDXL_PARTS = {"unet": ("unet", "diffusion_pytorch_model"), "clip_l": ("text_encoder", "model"),
              "clip_g": ("text_encoder_2", "model"), "vae": ("vae", "diffusion_pytorch_model")}
PERFLOW_SDXL_TEST_MODEL = "perflow-random-sdxl"


def example_paths() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*.json"))


def declared_models(workflow: dict) -> list[dict]:
    """[{name, url, directory, node_id, node_type, widgets}] for every properties.models entry of a UI workflow."""
    out = []
    for node in workflow["nodes"]:
        for entry in (node.get("properties") or {}).get("models") or []:
            out.append({**entry, "node_id": node["id"], "node_type": node["type"],
                        "widgets": list(node.get("widgets_values") or [])})
    return out


def all_declared_models() -> dict[str, dict]:
    """name -> {name, url, directory} over every template (the tests check that one name means one file)."""
    found = {}
    for path in example_paths():
        for entry in declared_models(json.loads(path.read_text(encoding="utf-8"))):
            found.setdefault(entry["name"], {k: entry[k] for k in ("name", "url", "directory")})
    return found


def weights_in(folder: Path, stem: str) -> Path | None:
    """`<stem>.safetensors` in folder, else its highest-sorting variant (`<stem>.v0-fix.safetensors`, ...)."""
    plain = folder / f"{stem}.safetensors"
    if plain.is_file():
        return plain
    variants = sorted(folder.glob(f"{stem}.*.safetensors"), reverse=True)
    return variants[0] if variants else None


@dataclass
class StandIns:
    """Where the random test models are: the fixtures the suite builds, and the server's models roots."""
    sd15: object  # devtools.reduced_sd15.ReducedInstaFlow
    perflow_sd15: object  # random_perflow_sd15.RandomPeRFlowSD15, the reduced twin
    controlnet: object  # random_controlnet.RandomControlNet, the reduced twin
    weight_delta: object  # random_weight_delta.RandomWeightDelta, the reduced twin
    perflow_delta: object  # random_perflow_delta.RandomPeRFlowDelta, the reduced twin
    sdxl_refiner: object  # RandomSDXLRefiner
    models_roots: list  # searched for the PeRFlow SDXL test model (models/perflow/<name>/)

    def perflow_folder(self, name: str) -> Path | None:
        for root in self.models_roots:
            if (Path(root) / "perflow" / name).is_dir():
                return Path(root) / "perflow" / name
        return None

    def _sd15_part(self, model: str, part: str) -> Path | None:
        checkpoint, folder = ((self.perflow_sd15.single_file, self.perflow_sd15.folder) if model.startswith("perflow")
                              else (self.sd15.single_file, self.sd15.diffusers_dir))
        if part == "unet":
            return checkpoint
        sub, weights = SD15_PARTS[part]
        return weights_in(folder / sub, weights)

    def source(self, name: str) -> Path | None:
        """The file standing in for the declared `name`, or None when that test model is not available."""
        stem = name.removesuffix(".safetensors")
        for model in SD15_SPLIT_MODELS:
            part = stem.removeprefix(model + "_")
            if stem.startswith(model + "_") and part in SD15_PARTS:
                return self._sd15_part(model, part)
        for model in SDXL_SPLIT_MODELS:
            part = stem.removeprefix(model + "_")
            if stem.startswith(model + "_") and part in SDXL_PARTS:
                folder = self.perflow_folder(PERFLOW_SDXL_TEST_MODEL)
                sub, weights = SDXL_PARTS[part]
                return weights_in(folder / sub, weights) if folder else None
        if stem.startswith("perflow_sd15_delta_weights"):
            return self.perflow_delta.single_file
        return {"v1-5-pruned-emaonly-fp16": self.weight_delta.base, "DreamShaper_8_pruned": self.weight_delta.finetune,
                "sd_xl_refiner_1.0": self.sdxl_refiner.single_file,
                "control_v11f1p_sd15_depth_fp16": self.controlnet.file}.get(stem)


@contextlib.contextmanager
def linked_template_models(scratch, stand_ins: StandIns):
    """Links every declared file that has a stand-in into the scratch models root; yields {name: link}; unlinks after."""
    links = {}
    try:
        for name, entry in all_declared_models().items():
            source = stand_ins.source(name)
            if source is None:
                continue
            link = scratch.path(entry["directory"], name)
            if link.is_symlink() or link.exists():
                link.unlink()
            links[name] = scratch.symlink(entry["directory"], name, Path(source).resolve())
        yield links
    finally:
        for link in links.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
