"""Graphs for InstaFlowInversion: invert an input picture, regenerate from the result, save latents.

Shared by tests/test_inversion.py and bench/inversion_round_trip.py. Latents come back through stock
SaveLatent, which writes VAE latents (ComfyUI's LATENT units); multiply by SCALE for the scaled
latents the diffusers reference and the official pipelines work on.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from devtools.graphs import Graph, Node, encode

SCALE = 0.18215  # SD1.5 latent_format.scale_factor = vae.config.scaling_factor
PROMPT = "a castle next to a river"
EDITED = "a castle next to a river, winter scene"
NEGATIVE = "painting, unreal, twisted"


class InversionGraph:
    """InstaFlowLoader + LoadImage + VAEEncode + prompts, and builders for what is done with them.

    The same builder calls give the same node inputs, so ComfyUI serves repeated parts (the loader,
    the encoded image, an inversion already run) from its cache.
    """

    def __init__(self, model_name: str, image_name: str):
        self.g = Graph()
        self.loader = self.g.add("InstaFlowLoader", ckpt_name=model_name)
        self.model, self.clip, self.vae = self.loader[0], self.loader[1], self.loader[2]
        self.latent = self.g.add("VAEEncode", pixels=self.g.add("LoadImage", image=image_name)[0], vae=self.vae)[0]
        self._prompts: dict[str, Node] = {}

    def prompt(self, text: str) -> list:
        if text not in self._prompts:
            self._prompts[text] = encode(self.g, self.clip, text)
        return self._prompts[text][0]

    def broken(self, variant: str) -> list:
        """The model with one part of the convention broken (tests/comfy_test_nodes, InstaFlowBrokenVariant)."""
        return self.g.add("InstaFlowBrokenVariant", model=self.model, variant=variant)[0]

    def invert(self, steps: int, iterations: int, cfg: float = 1.0, prompt: str = PROMPT, model=None,
               latent=None) -> Node:
        """InstaFlowInversion: output 0 is the NOISE, output 1 the LATENT."""
        extra = {"negative": self.prompt(NEGATIVE)} if cfg != 1.0 else {}
        return self.g.add("InstaFlowInversion", model=model or self.model, positive=self.prompt(prompt),
                          latent_image=latent or self.latent, steps=steps, cfg=cfg, fixed_point_iterations=iterations,
                          **extra)

    def sample_advanced(self, noise, steps: int, cfg: float = 1.0, prompt: str = PROMPT, latent=None) -> Node:
        """Stock SamplerCustomAdvanced + KSamplerSelect(rectified_flow) + InstaFlowScheduler; BasicGuider at cfg 1,
        CFGGuider with the negative prompt otherwise."""
        if cfg == 1.0:
            guider = self.g.add("BasicGuider", model=self.model, conditioning=self.prompt(prompt))
        else:
            guider = self.g.add("CFGGuider", model=self.model, positive=self.prompt(prompt),
                                negative=self.prompt(NEGATIVE), cfg=cfg)
        return self.g.add("SamplerCustomAdvanced", noise=noise, guider=guider[0],
                          sampler=self.g.add("KSamplerSelect", sampler_name="rectified_flow")[0],
                          sigmas=self.g.add("InstaFlowScheduler", model=self.model, steps=steps, denoise=1.0)[0],
                          latent_image=latent or self.latent)

    def regenerate(self, inversion: Node, steps: int, cfg: float = 1.0, prompt: str = PROMPT) -> Node:
        """SamplerCustomAdvanced from the inversion's NOISE."""
        return self.sample_advanced(inversion[0], steps, cfg, prompt)

    def regenerate_all_in_one(self, inversion: Node, steps: int, cfg: float = 1.0, prompt: str = PROMPT) -> Node:
        """InstaFlowSampler from the inversion's LATENT."""
        extra = {"negative": self.prompt(NEGATIVE)} if cfg != 1.0 else {}
        return self.g.add("InstaFlowSampler", model=self.model, seed=0, steps=steps, cfg=cfg, positive=self.prompt(prompt),
                          latent_image=inversion[1], denoise=1.0, **extra)

    def fresh(self, seed: int, steps: int, prompt: str) -> Node:
        """The same sampler from seeded noise: an unrelated image of `prompt`."""
        return self.sample_advanced(self.g.add("RandomNoise", noise_seed=seed)[0], steps, prompt=prompt)

    def save_latent(self, samples, prefix: str) -> Node:
        return self.g.add("SaveLatent", samples=samples, filename_prefix=prefix)

    def save_image(self, samples, prefix: str) -> Node:
        image = self.g.add("VAEDecode", samples=samples, vae=self.vae)
        return self.g.add("SaveImage", images=image[0], filename_prefix=prefix)


def saved_latent(server, outputs: dict, node: Node) -> torch.Tensor:
    """A SaveLatent node's latent, scaled (times SCALE)."""
    ref = outputs[node.id]["latents"][0]
    path = Path(server.work_dir) / "output" / ref.get("subfolder", "") / ref["filename"]
    return load_file(str(path))["latent_tensor"] * SCALE


def rms(t: torch.Tensor) -> float:
    return float(t.double().pow(2).mean().sqrt())
