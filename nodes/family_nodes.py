"""Each flow family's three nodes, built from its record (flow_math/flows/<family>.py): the model-sampling patch
(MODEL -> MODEL), the scheduler (MODEL -> SIGMAS for SamplerCustom) and the checkpoint loader (MODEL, CLIP,
VAE, already patched). Their names, texts and settings are the record's; what they do is the same for every
family, so it is written once here."""
from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..comfyui_glue.architecture_warning import UI_KEY, patch_with_architecture_warning
from ..comfyui_glue.model_sampling import patch_official, patch_sampling
from ..comfyui_glue.schedules import sigmas_for_model
from ..flow_math.flows import FlowFamily
from ..model_loaders.checkpoint import load_checkpoint
from ..model_loaders.model_fingerprint import model_fingerprint
from ..model_loaders.model_folders import list_models, listed_or_reason
from .schema_cache import schema_kept_while


def _node_class(node_id: str, body: dict) -> type[io.ComfyNode]:
    return type(node_id, (io.ComfyNode,), {"__module__": __name__, **body})


def model_sampling_node(family: FlowFamily) -> type[io.ComfyNode]:
    text = family.patch_text

    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        inputs = [io.Model.Input("model", tooltip=text.tooltips["model"])]
        if family.prediction_types:
            inputs.append(io.Combo.Input("prediction_type", options=list(family.prediction_types),
                                         default=family.prediction_types[0], tooltip=text.tooltips["prediction_type"]))
        return io.Schema(node_id=family.patch_node, display_name=text.display_name, category=text.category,
                         description=text.description, inputs=inputs,
                         outputs=[io.Model.Output(tooltip=text.tooltips["out:0"])])

    @classmethod
    def execute(cls, model, prediction_type=None):
        patched, warning = patch_with_architecture_warning(
            model, family, family.patch_node, lambda m: patch_sampling(m, family, prediction_type))
        return io.NodeOutput(patched, ui={UI_KEY: [warning]} if warning else None)

    return _node_class(family.patch_node, {"define_schema": define_schema, "execute": execute})


def scheduler_node(family: FlowFamily) -> type[io.ComfyNode]:
    text = family.scheduler_text
    default_steps, max_steps = family.scheduler_steps

    @classmethod
    @schema_kept_while()
    def define_schema(cls):
        return io.Schema(
            node_id=family.scheduler_node, display_name=text.display_name, category=text.category,
            description=text.description,
            inputs=[io.Model.Input("model", tooltip=text.tooltips["model"]),
                    io.Int.Input("steps", default=default_steps, min=1, max=max_steps, tooltip=text.tooltips["steps"]),
                    io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01, tooltip=text.tooltips["denoise"])],
            outputs=[io.Sigmas.Output(tooltip=text.tooltips["out:0"])])

    @classmethod
    def execute(cls, model, steps, denoise):
        return io.NodeOutput(sigmas_for_model(model, family, steps, denoise, family.scheduler_node))

    return _node_class(family.scheduler_node, {"define_schema": define_schema, "execute": execute})


def loader_node(family: FlowFamily) -> type[io.ComfyNode]:
    text = family.loader_text

    @classmethod
    @schema_kept_while(lambda: list_models(family.folder))
    def define_schema(cls, models):
        return io.Schema(
            node_id=family.loader_node, display_name=text.display_name, category=text.category,
            description=text.description,
            inputs=[io.Combo.Input("ckpt_name", options=list(models), tooltip=text.tooltips["ckpt_name"])],
            outputs=[io.Model.Output(tooltip=text.tooltips["out:0"]), io.Clip.Output(tooltip=text.tooltips["out:1"]),
                     io.Vae.Output(tooltip=text.tooltips["out:2"])])

    @classmethod
    def validate_inputs(cls, ckpt_name):
        return listed_or_reason(ckpt_name, family.folder)

    @classmethod
    def fingerprint_inputs(cls, ckpt_name):
        # ComfyUI re-runs the loader when this value changes: a model file replaced on disk is reloaded.
        return model_fingerprint(ckpt_name, family.folder)

    @classmethod
    def execute(cls, ckpt_name):
        model, clip, vae, architecture = load_checkpoint(ckpt_name, family)
        return io.NodeOutput(patch_official(model, family, architecture), clip, vae)

    return _node_class(family.loader_node, {"define_schema": define_schema, "validate_inputs": validate_inputs,
                                            "fingerprint_inputs": fingerprint_inputs, "execute": execute})


def family_nodes(family: FlowFamily) -> list[type[io.ComfyNode]]:
    return [loader_node(family), model_sampling_node(family), scheduler_node(family)]
