"""The record each flow family fills in once, in its own module (flow_math/flows/<family>.py). Torch only.

Everything outside flow_math/flows/ that differs between the families reads it: the model-sampling patch and its
node, the scheduler and its node, the loader's model folder and node, the checks that refuse a model
patched for another family, the architecture check, the conversion rules (web/instaflow_conversion_rules.json
is generated from these records) and the node reference. A family module that defines FAMILY is found by
flow_math/flows/__init__.py; nothing else has to be edited to add one.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    """One "Convert to ..." choice: the official settings of one published model of the family."""
    key: str          # the conversion's preset name (`python <pack> convert --preset KEY`)
    label: str        # what the conversion's report and the CLI's help say
    steps: int
    cfg: float
    sampler: str      # the ComfyUI sampler that steps it exactly
    command: str      # the frontend command's id, e.g. "InstaFlow.ConvertToInstaFlow" (keybindings refer to it)
    menu_label: str   # its entry under Edit > InstaFlow


@dataclass(frozen=True)
class NodeText:
    """What one of the family's three nodes shows: its name, place in the menu, help line and tooltips."""
    display_name: str
    category: str
    description: str
    tooltips: Mapping[str, str]  # input name, or "out:<index>" for an output -> tooltip


@dataclass(frozen=True)
class FlowFamily:
    # Who it is
    name: str                    # "InstaFlow": the tag on its model-sampling object, and the messages' word for it
    label: str                   # "InstaFlow / 2-Rectified Flow": how users know it
    folder: str                  # models/<folder>, also the folder_paths key
    architectures: tuple[str, ...]   # the UNets it was trained from ("SD1.5", "SDXL", "SD2.x")
    needs: str                   # the refusal's words for what it needs, e.g. "PeRFlow needs an SD1.5, SDXL or SD2.x model"
    # Its convention (ComfyUI's model_sampling quantities), in its own module's functions
    timestep: Callable           # sigma -> UNet timestep
    sigma: Callable              # UNet timestep -> sigma
    denoised: Callable           # (x, sigma, model_output, prediction_type) -> image estimate
    noised_latent: Callable      # (image_latent, noise, sigma tensor) -> the point at sigma on its noise path
    sigmas: Callable             # (steps, denoise) -> its official schedule, ending at 0
    prediction_types: tuple[str, ...] = ()              # choices when the UNet output means different things
    official_prediction_type: Mapping[str, str] = field(default_factory=dict)  # architecture -> the released models'
    # How ComfyUI and its graphs name its parts
    scheduler: str = ""          # its entry in ComfyUI's scheduler list
    patch_node: str = ""         # the model-sampling node (MODEL -> MODEL)
    scheduler_node: str = ""     # the SIGMAS node for SamplerCustom
    loader_node: str = ""        # the checkpoint loader (MODEL, CLIP, VAE), already patched
    also_patched_by: tuple[str, ...] = ()   # other pack nodes whose MODEL output samples as this family
    presets: tuple[Preset, ...] = ()
    scheduler_steps: tuple[int, int] = (1, 10000)       # the scheduler node's steps: default, maximum
    schedule_fits_other_flows: bool = False  # plain uniform flow sigmas: also fine for SD3, Flux and other flow models
    patch_text: NodeText | None = None
    scheduler_text: NodeText | None = None
    loader_text: NodeText | None = None

    @property
    def patched_by(self) -> tuple[str, ...]:
        """Every node whose MODEL output already samples as this family."""
        return (self.patch_node, self.loader_node, *self.also_patched_by)

    def model_sampling_settings(self, architecture: str | None) -> dict:
        """The model-sampling object's settings for a model of `architecture`, as the family's releases use them."""
        if not self.prediction_types:
            return {}
        return {"prediction_type": self.official_prediction_type.get(architecture, self.prediction_types[0])}
