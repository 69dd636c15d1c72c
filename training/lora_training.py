"""Training a LoRA on teacher pairs with the reflow or the distillation objective (ComfyUI glue).

The objectives are flow_math/flow_objectives.py; this module runs them on a ComfyUI model the way core
TrainLoraNode runs its own (comfy_extras/nodes_train.py in 0.3.75): a clone of the model with
trainable LoRA adapters (training/lora_adapters.py: forward hooks, not core's weight wrappers), the training dtype as the model's compute dtype plus autocast,
core's gradient checkpointing, the model loaded in full, outside inference mode. The student is called
through its own model sampling (BaseModel.apply_model returns the image estimate), which must be
InstaFlow's, so the objectives see exactly the convention sampling uses.

Interrupting (Cancel) stops between two steps: the LoRA trained so far is written to
`<output>/loras/instaflow_<objective>_interrupted_<steps>_steps_<n>_.safetensors` (the format core
SaveLoRA writes), then the prompt stops as interrupted prompts do.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import torch
from safetensors.torch import save_file

import comfy.model_management
import comfy.model_sampling
import comfy.utils
import folder_paths

from ..model_loaders.architecture import require_sd15_model
from ..flow_math import flow_objectives
from ..comfyui_glue.model_sampling import samples_as_or_unpatched
from ..flow_math.flows.instaflow import FAMILY as INSTAFLOW
from .lora_adapters import create_loras, lora_forward_path, lora_state, trainable_base_weights, with_lora_applied
from .pairs_file import FlowPairs
from .teacher_pairs import model_identity

OBJECTIVES = ("reflow", "distill")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
OPTIMIZERS = {"AdamW": torch.optim.AdamW, "Adam": torch.optim.Adam, "SGD": torch.optim.SGD}


@dataclass(frozen=True)
class TrainSettings:
    steps: int
    learning_rate: float
    rank: int
    batch_size: int
    seed: int
    training_dtype: str = "fp32"
    lora_dtype: str = "fp32"
    optimizer: str = "AdamW"
    gradient_checkpointing: bool = True
    loss: str = "l2"  # distillation only: flow_objectives.DISTILL_LOSSES


def check_student(model, pairs: FlowPairs, who: str) -> None:
    """The student is an SD1.5-architecture model patched for InstaFlow, of the pairs' model kind."""
    if not samples_as_or_unpatched(model, INSTAFLOW, who, "reflow and distillation training"):
        sampling = model.get_model_object("model_sampling")
        samples_as = ("EPS (noise prediction, a stock SD1.5 checkpoint)"
                      if isinstance(sampling, comfy.model_sampling.EPS) else type(sampling).__name__)
        raise ValueError(
            f"{who}: the student model samples as {samples_as}, not as an InstaFlow rectified flow. Reflow and "
            "distillation train a velocity (noise -> image) at sigma in [0, 1]: put ModelSamplingInstaFlow after "
            "the loader (or load it with Load InstaFlow Checkpoint), then connect it here.")
    require_sd15_model(model, who)
    architecture, channels, context_dim = model_identity(model)
    header = pairs.header
    pair_channels = int(header["latent_shape"].split(",")[0])
    if (architecture, channels, context_dim) != (header["architecture"], pair_channels, int(header["context_dim"])):
        raise ValueError(
            f"{who}: the pairs in {pairs.folder} come from a {header['architecture']} model ({pair_channels}-channel "
            f"latents, text context {header['context_dim']}); the student is a {architecture} model ({channels}-channel "
            f"latents, text context {context_dim}). Make pairs with a teacher of the student's kind.")


def train_flow_lora(model, pairs: FlowPairs, objective: str, settings: TrainSettings, who: str):
    """Returns (model with the trained adapters, LORA_MODEL state dict, {"loss": [...]}, steps trained)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"{who}: objective must be one of {OBJECTIVES}, got {objective!r}")
    if objective == "distill" and settings.loss not in flow_objectives.DISTILL_LOSSES:
        raise ValueError(f"{who}: loss must be one of {flow_objectives.DISTILL_LOSSES}, got {settings.loss!r}")
    check_student(model, pairs, who)
    training_dtype, lora_dtype = DTYPES[settings.training_dtype], DTYPES[settings.lora_dtype]
    patcher = model.clone()
    if training_dtype != (patcher.model.manual_cast_dtype or patcher.model.get_dtype()):
        patcher.set_model_compute_dtype(training_dtype)  # (it also makes every layer cast its weights: only if needed)
    comfy.model_management.load_models_gpu([patcher], memory_required=1e20, force_full_load=True)
    with torch.inference_mode(False):
        trainable_base_weights(patcher.model.diffusion_model)
        patcher.model.requires_grad_(False)
        loras = create_loras(patcher.model, settings.rank, lora_dtype, settings.seed)
        state = lora_state(loras)
        optimizer = OPTIMIZERS[settings.optimizer]([p for p in state.values() if p.requires_grad],
                                                   lr=settings.learning_rate)
        undo_checkpointing = (gradient_checkpointing(patcher.model.diffusion_model)
                              if settings.gradient_checkpointing else (lambda: None))
        try:
            with lora_forward_path(loras):
                losses, interrupted = _loop(patcher, pairs, objective, settings, optimizer, training_dtype, who)
        finally:
            undo_checkpointing()
        for _layer, adapter in loras.values():
            adapter.requires_grad_(False)
        lora = {key: value.detach().clone() for key, value in state.items()}
    if interrupted:
        path = _save_interrupted(lora, objective, len(losses))
        logging.warning("%s: interrupted after %d of %d steps; the LoRA trained so far is in %s",
                        who, len(losses), settings.steps, path)
        raise comfy.model_management.InterruptProcessingException()
    return with_lora_applied(model, lora), lora, {"loss": losses}, len(losses)


def gradient_checkpointing(diffusion_model):
    """Core's gradient checkpointing of the UNet's top-level blocks (what core's TrainLoraNode uses); returns
    the undo function."""
    from comfy_extras.nodes_train import find_all_highest_child_module_with_forward, patch, unpatch

    blocks = find_all_highest_child_module_with_forward(diffusion_model)
    for block in blocks:
        patch(block)

    def undo():
        for block in blocks:
            unpatch(block)
    return undo


def _batches(pairs: FlowPairs, samples: list) -> list[list]:
    """Sub-batches of the samples whose prompts have the same token length (so they stack)."""
    groups: dict[tuple, list] = {}
    for sample in samples:
        groups.setdefault(tuple(pairs.conditioning[sample[0]].shape), []).append(sample)
    return list(groups.values())


def _loop(patcher, pairs, objective, settings, optimizer, training_dtype, who):
    device = patcher.load_device
    base = patcher.model
    generator = torch.Generator().manual_seed(settings.seed)
    progress = comfy.utils.ProgressBar(settings.steps)
    losses: list[float] = []
    autocast = torch.autocast(device.type, dtype=training_dtype, enabled=training_dtype != torch.float32)
    started = time.perf_counter()
    try:
        for _ in range(settings.steps):
            if comfy.model_management.processing_interrupted():
                return losses, True
            samples = flow_objectives.step_samples(len(pairs), objective, settings.batch_size, generator)
            total = 0.0
            for group in _batches(pairs, samples):
                index = [i for i, _sigma in group]
                noise = pairs.noise[index].clone().to(device)
                latent = base.process_latent_in(pairs.latent[index].clone()).to(device)  # LATENT -> the model's space
                context = torch.cat([pairs.conditioning[i] for i in index]).clone().to(device)
                sigmas = torch.stack([sigma for _i, sigma in group]).to(device)

                def denoised_fn(x, sigma, context=context):
                    return base.apply_model(x, sigma.to(device), c_crossattn=context).float()

                with autocast:
                    if objective == "reflow":
                        loss = flow_objectives.reflow_loss(denoised_fn, latent, noise, sigmas)
                    else:
                        loss = flow_objectives.distill_loss(denoised_fn, latent, noise, settings.loss)
                (loss * (len(group) / len(samples))).backward()
                total += loss.item() * len(group) / len(samples)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(total)
            progress.update(1)
            if len(losses) % 10 == 0 or len(losses) == settings.steps:
                logging.info("%s: step %d/%d, %s loss %.5f", who, len(losses), settings.steps, objective, total)
    except comfy.model_management.InterruptProcessingException:  # Cancel: from the progress hook, or (0.33.0) a layer
        return losses, True
    seconds = time.perf_counter() - started
    logging.info("%s: %d steps in %.1f s (%.2f s/step), loss %.5f -> %.5f%s", who, len(losses), seconds,
                 seconds / max(1, len(losses)), losses[0], losses[-1], _peak_memory(device))
    return losses, False


def _peak_memory(device) -> str:
    if device.type == "cuda":
        return f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
    return ""


def _save_interrupted(lora: dict, objective: str, steps: int) -> str:
    prefix = f"loras/instaflow_{objective}_interrupted_{steps}_steps"
    folder, filename, counter, _subfolder, _prefix = folder_paths.get_save_image_path(
        prefix, folder_paths.get_output_directory())
    path = os.path.join(folder, f"{filename}_{counter:05}_.safetensors")
    save_file({k: v.contiguous() for k, v in lora.items()}, path)
    return path
