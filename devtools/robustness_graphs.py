"""Small InstaFlow graphs for the robustness tests, with the knob each test turns."""
from __future__ import annotations

from devtools.graphs import Graph, Node, decode_and_save, encode

PROMPT = "a red bicycle"


def instaflow_graph(model_name: str, *, width: int = 64, height: int = 64, batch: int = 1, steps: int = 1,
                    cfg: float = 1.0, denoise: float = 1.0, seed: int = 0, latent=None, model_node=None,
                    with_negative: bool = False, prefix: str = "robustness") -> tuple[Graph, Node]:
    """InstaFlowLoader -> [model_node(g, model)] -> InstaFlowSampler -> VAEDecode -> SaveImage.

    latent(g) may build the latent_image input (default: EmptyLatentImage width x height x batch);
    model_node(g, model_output) may insert nodes between the loader and the sampler.
    """
    g = Graph()
    loader = g.add("InstaFlowLoader", ckpt_name=model_name)
    model = loader[0] if model_node is None else model_node(g, loader[0])
    latent_image = (g.add("EmptyLatentImage", width=width, height=height, batch_size=batch)[0] if latent is None
                    else latent(g))
    extra = {"negative": encode(g, loader[1], "")[0]} if with_negative else {}
    sampled = g.add("InstaFlowSampler", model=model, seed=seed, steps=steps, cfg=cfg, positive=encode(g, loader[1], PROMPT)[0],
                    latent_image=latent_image, denoise=denoise, **extra)
    return g, decode_and_save(g, sampled[0], loader[2], prefix)


def checkpoint_ksampler_graph(checkpoint_name: str, *, sampler_name: str = "rectified_flow", scheduler: str = "instaflow",
                              steps: int = 1, cfg: float = 1.0, patch: bool = True, model_node=None,
                              prefix: str = "robustness_ksampler") -> tuple[Graph, Node]:
    """CheckpointLoaderSimple -> [ModelSamplingInstaFlow] -> [model_node] -> KSampler -> VAEDecode -> SaveImage."""
    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=checkpoint_name)
    model = g.add("ModelSamplingInstaFlow", model=ckpt[0])[0] if patch else ckpt[0]
    if model_node is not None:
        model = model_node(g, model)
    sampled = g.add("KSampler", model=model, seed=0, steps=steps, cfg=cfg, sampler_name=sampler_name, scheduler=scheduler,
                    positive=encode(g, ckpt[1], PROMPT)[0], negative=encode(g, ckpt[1], "")[0],
                    latent_image=g.add("EmptyLatentImage", width=64, height=64, batch_size=1)[0], denoise=1.0)
    return g, decode_and_save(g, sampled[0], ckpt[2], prefix)
