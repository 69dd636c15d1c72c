"""LoRA layers for training: core's adapter modules, trained on the forward path (ComfyUI glue).

Every linear and conv layer of the UNet gets one of core's trainable LoRA modules (comfy.weight_adapter
LoRA create_train: lora_up, lora_down, alpha; up starts random, down at zero, so training starts from
the model itself). The state dict uses ComfyUI's key names (`diffusion_model.<layer>.lora_up.weight`,
`.lora_down.weight`, `.alpha`): it is the LORA_MODEL core SaveLoRA writes and stock LoraLoader /
LoraModelLoader apply as W + alpha / rank * up @ down.

While training, a forward hook adds alpha / rank * up(down(x)) to each layer's output, as PEFT and
kohya do. Core TrainLoraNode instead puts the modules on the weights (add_weight_wrapper), which
builds every adapted weight and its full-size gradient at each step, weight-sized work that does not
shrink with the image (docs/performance.md has the figures). After training, the LoRA's state dict is applied to a model clone the way stock
LoraLoader applies a file (comfy.sd.load_lora_for_models, strength 1): ComfyUI merges it into the
weights once when the model loads, so the model the node returns samples as the saved LoRA loaded by
LoraLoader does, at the model's own speed, not rebuilding every adapted weight at each call as core's
weight wrappers would.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

import comfy.sd
import comfy.utils
from comfy.weight_adapter import adapter_maps

_UNET_PREFIX = "diffusion_model."


def trainable_base_weights(module: torch.nn.Module) -> None:
    """Autograd cannot save inference-mode tensors, and ComfyUI loads models inside inference mode: replace
    such frozen weights by normal copies of the same values (one layer at a time)."""
    for name, param in list(module.named_parameters()):
        if param.is_inference():
            comfy.utils.set_attr_param(module, name, param.detach().clone())


def create_loras(base_model: torch.nn.Module, rank: int, dtype: torch.dtype, seed: int) -> dict:
    """{layer name: (layer, core LoRA train module)} for the UNet's linear and (ungrouped) conv layers."""
    lora_cls = adapter_maps["LoRA"]  # core's trainable LoRA: the state dict core SaveLoRA writes
    loras = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the up matrices' random initialisation
        for name, layer in base_model.named_modules():
            if not name.startswith(_UNET_PREFIX) or not isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
                continue
            if isinstance(layer, torch.nn.Conv2d) and (layer.groups != 1 or isinstance(layer.padding, str)):
                continue
            adapter = lora_cls.create_train(layer.weight.detach().cpu(), rank=rank, alpha=1.0)
            loras[name] = (layer, adapter.to(device=layer.weight.device, dtype=dtype))
    return loras


def lora_state(loras: dict) -> dict:
    return {f"{name}.{key}": value for name, (_layer, adapter) in loras.items()
            for key, value in adapter.named_parameters()}


def _lora_output(layer, adapter, x):
    down, up = adapter.lora_down.weight, adapter.lora_up.weight
    x = x.to(down.dtype) if not torch.is_autocast_enabled() else x
    if isinstance(layer, torch.nn.Conv2d):
        hidden = F.conv2d(x, down.reshape(down.shape[0], *layer.weight.shape[1:]), None, layer.stride, layer.padding,
                          layer.dilation)
        out = F.conv2d(hidden, up[:, :, None, None])
    else:
        out = F.linear(F.linear(x, down), up)
    return out * (adapter.alpha / adapter.rank)


@contextlib.contextmanager
def lora_forward_path(loras: dict):
    """While inside, every LoRA layer's output is layer(x) + alpha / rank * up(down(x))."""
    handles = [layer.register_forward_hook(
        lambda module, args, output, adapter=adapter: output + _lora_output(module, adapter, args[0]).to(output.dtype))
        for layer, adapter in loras.values()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def with_lora_applied(model, lora: dict):
    """A clone of `model` with the LORA_MODEL state dict `lora` applied at strength 1, as LoraLoader applies a file."""
    return comfy.sd.load_lora_for_models(model, None, lora, 1.0, 0.0)[0]
