"""A flow family is one module: a throwaway third family, written as a module into a copy of the pack and
nowhere else, registers, lists, converts and refuses the wrong family like the published two.

The copy is the pack as it would be published (devtools/pack_snapshot.py) plus flow_math/flows/throwaway.py;
the only other step is the generated conversion rules file, rewritten by its generator as a developer would.
The throwaway family is a rectified flow with SD3's velocity sign (denoised = x - sigma * v), made up for
this test: what matters is that every part of the pack follows its record, not that it makes pictures.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.graphs import Graph
from devtools.object_info import combo_options
from devtools.pack_identity import PACK_NAME
from devtools.pack_snapshot import node_class_names, snapshot_repository
from devtools.server import ComfyServer, PromptFailed

REPO_ROOT = Path(__file__).resolve().parent.parent
SIZE = 64

THROWAWAY_MODULE = '''
"""A made-up third family for tests/test_flow_family_record.py."""
import torch

from .family import FlowFamily, NodeText, Preset


def timestep(sigma):
    return sigma * 1000.0


def sigma_from_timestep(t):
    return t / 1000.0


def denoised(x, sigma, model_output, prediction_type=None):
    return x - sigma.reshape(-1, *([1] * (x.ndim - 1))) * model_output


def noised_latent(latent, noise, sigma):
    s = sigma.reshape(-1, *([1] * (noise.ndim - 1)))
    return s * noise + (1.0 - s) * latent


def sigmas(steps, denoise=1.0):
    return torch.linspace(denoise, 0.0, steps + 1)


def _text(name):
    return NodeText(name, "InstaFlow/throwaway", f"{name} of the throwaway family.",
                    {"model": "model", "steps": "steps", "denoise": "denoise", "ckpt_name": "checkpoint",
                     "out:0": "first", "out:1": "second", "out:2": "third"})


FAMILY = FlowFamily(
    name="Throwaway", label="Throwaway Flow", folder="throwaway", architectures=("SD1.5",),
    needs="Throwaway needs an SD1.5 model",
    timestep=timestep, sigma=sigma_from_timestep, denoised=denoised, noised_latent=noised_latent, sigmas=sigmas,
    scheduler="throwaway", patch_node="ModelSamplingThrowaway", scheduler_node="ThrowawayScheduler",
    loader_node="ThrowawayLoader", scheduler_steps=(3, 100),
    presets=(Preset("throwaway", "Throwaway (3 steps, cfg 2)", steps=3, cfg=2.0, sampler="euler",
                    command="InstaFlow.ConvertToThrowaway", menu_label="Convert to Throwaway (3 steps)"),),
    patch_text=_text("Model Sampling Throwaway"), scheduler_text=_text("Throwaway Scheduler"),
    loader_text=_text("Load Throwaway Checkpoint"),
)
'''


@pytest.fixture(scope="module")
def pack_with_a_third_family(tmp_path_factory) -> Path:
    pack = snapshot_repository(REPO_ROOT, tmp_path_factory.mktemp("third_family") / PACK_NAME)
    (pack / "flow_math" / "flows" / "throwaway.py").write_text(THROWAWAY_MODULE, encoding="utf-8")
    subprocess.run([sys.executable, "-m", "workflow_conversion.conversion_rules"], cwd=pack, check=True,
                   capture_output=True, text=True)
    return pack


@pytest.fixture(scope="module")
def third_family_server(pack_with_a_third_family, reduced_instaflow, tmp_path_factory, comfyui_dir):
    models = tmp_path_factory.mktemp("third_family_models")
    (models / "throwaway").mkdir()
    (models / "throwaway" / "throwaway-sd15.safetensors").symlink_to(reduced_instaflow.single_file)
    with ComfyServer([models, reduced_instaflow.models_root], [(PACK_NAME, pack_with_a_third_family)],
                     tmp_path_factory.mktemp("third_family_work"), comfyui_dir=comfyui_dir,
                     extra_model_folders=("throwaway",)) as server:
        yield server


def converted_by_the_copy(pack: Path, workflow: dict, tmp_path: Path) -> tuple[dict, str]:
    """`python <pack> convert --preset throwaway`, the copy's own command line: (converted workflow, its report)."""
    source, target = tmp_path / "in.json", tmp_path / "out.json"
    source.write_text(json.dumps(workflow), encoding="utf-8")
    done = subprocess.run([sys.executable, str(pack), "convert", str(source), str(target), "--preset", "throwaway"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(target.read_text(encoding="utf-8")), done.stderr


def stock_graph(loader_class: str, ckpt_name: str, scheduler: str = "normal", sampler: str = "euler") -> dict:
    g = Graph()
    loader = g.add(loader_class, ckpt_name=ckpt_name)
    text = g.add("CLIPTextEncode", clip=loader[1], text="a lighthouse")
    latent = g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)
    sampled = g.add("KSampler", model=loader[0], seed=1, steps=3, cfg=2.0, sampler_name=sampler, scheduler=scheduler,
                    positive=text[0], negative=text[0], latent_image=latent[0], denoise=1.0)
    g.add("PreviewImage", images=g.add("VAEDecode", samples=sampled[0], vae=loader[2])[0])
    return g.api()


def test_its_three_nodes_and_its_scheduler_register(third_family_server, pack_with_a_third_family):
    info = third_family_server.object_info()
    assert {"ModelSamplingThrowaway", "ThrowawayScheduler", "ThrowawayLoader"} <= set(info)
    assert {"ModelSamplingThrowaway", "ThrowawayScheduler", "ThrowawayLoader"} <= set(node_class_names(pack_with_a_third_family))
    schedulers = combo_options(info, "KSampler", "scheduler")
    assert {"throwaway", "instaflow", "perflow"} <= set(schedulers)
    assert info["ThrowawayScheduler"]["input"]["required"]["steps"][1]["default"] == 3


def test_its_loader_lists_the_checkpoints_in_its_own_model_folder(third_family_server):
    info = third_family_server.object_info()
    assert "throwaway-sd15.safetensors" in combo_options(info, "ThrowawayLoader", "ckpt_name")
    assert "throwaway-sd15.safetensors" not in combo_options(info, "InstaFlowLoader", "ckpt_name")


def test_the_generated_rules_offer_its_preset_and_know_its_nodes(pack_with_a_third_family):
    rules = json.loads((pack_with_a_third_family / "web" / "instaflow_conversion_rules.json").read_text(encoding="utf-8"))
    assert rules["presets"]["throwaway"]["command"]["label"] == "Convert to Throwaway (3 steps)"
    assert "ModelSamplingThrowaway" in rules["families"]["instaflow"]["other_families"]
    assert "ModelSamplingThrowaway" in rules["warning_nodes"]


def test_the_convert_command_converts_a_stock_graph_to_it(pack_with_a_third_family, reduced_instaflow, tmp_path):
    converted, report = converted_by_the_copy(
        pack_with_a_third_family, stock_graph("CheckpointLoaderSimple", reduced_instaflow.single_file.name), tmp_path)
    inserted = [node for node in converted.values() if node["class_type"] == "ModelSamplingThrowaway"]
    sampler = next(node for node in converted.values() if node["class_type"] == "KSampler")
    assert len(inserted) == 1 and "inserted ModelSamplingThrowaway" in report
    assert (sampler["inputs"]["scheduler"], sampler["inputs"]["steps"], sampler["inputs"]["cfg"]) == ("throwaway", 3, 2.0)


def test_a_converted_graph_runs_on_the_server(third_family_server, pack_with_a_third_family, reduced_instaflow, tmp_path):
    converted, _ = converted_by_the_copy(
        pack_with_a_third_family, stock_graph("CheckpointLoaderSimple", reduced_instaflow.single_file.name), tmp_path)
    outputs = third_family_server.run(converted)
    preview = next(node_id for node_id, node in converted.items() if node["class_type"] == "PreviewImage")
    image = third_family_server.images(outputs, preview)[0]
    assert image.shape == (SIZE, SIZE, 3) and image.std() > 0


def test_the_instaflow_schedule_refuses_a_model_patched_for_it(third_family_server):
    graph = stock_graph("ThrowawayLoader", "throwaway-sd15.safetensors", scheduler="instaflow", sampler="rectified_flow")
    with pytest.raises(PromptFailed) as failed:
        third_family_server.run(graph)
    message = failed.value.exception_message
    assert "patched for Throwaway (ModelSamplingThrowaway / ThrowawayLoader)" in message
    assert "made for InstaFlow" in message and "scheduler throwaway" in message


def test_its_scheduler_refuses_a_model_patched_for_instaflow(third_family_server, reduced_instaflow):
    g = Graph()
    loader = g.add("CheckpointLoaderSimple", ckpt_name=reduced_instaflow.single_file.name)
    patched = g.add("ModelSamplingInstaFlow", model=loader[0])
    sigmas = g.add("ThrowawayScheduler", model=patched[0], steps=3, denoise=1.0)
    text = g.add("CLIPTextEncode", clip=loader[1], text="a lighthouse")
    latent = g.add("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1)
    sampled = g.add("SamplerCustom", model=patched[0], add_noise=True, noise_seed=1, cfg=1.0, positive=text[0],
                    negative=text[0], sampler=g.add("KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas[0],
                    latent_image=latent[0])
    g.add("PreviewImage", images=g.add("VAEDecode", samples=sampled[0], vae=loader[2])[0])
    with pytest.raises(PromptFailed) as failed:
        third_family_server.run(g.api())
    message = failed.value.exception_message
    assert "ThrowawayScheduler: the model is patched for InstaFlow" in message and "made for Throwaway" in message
