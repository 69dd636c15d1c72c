"""What a ComfyUI user sees of the pack on a real server: nodes, lists, model names."""
import pytest

from devtools.object_info import combo_options

# Also runs on the oldest supported ComfyUI (.ci/run).
pytestmark = pytest.mark.oldest

PACK_NODES = ["InstaFlowLoader", "ModelSamplingInstaFlow", "InstaFlowScheduler", "InstaFlowSampler"]
PACK_NODES += ["InstaFlowInterpolatedNoise", "InstaFlowInterpolatedConditioning"]  # latent interpolation
PACK_NODES += ["PeRFlowLoader", "ModelSamplingPeRFlow", "PeRFlowScheduler", "PeRFlowDeltaWeights"]


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.object_info()


@pytest.mark.parametrize("node", PACK_NODES)
def test_node_is_listed_under_the_instaflow_category_with_a_description(object_info, node):
    info = object_info[node]
    assert info["category"].startswith("InstaFlow")
    assert info["description"]


@pytest.mark.parametrize("node", PACK_NODES)
def test_every_input_and_output_has_a_tooltip(object_info, node):
    info = object_info[node]
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            assert spec[1].get("tooltip"), f"{node}.{name} has no tooltip"
    assert len(info["output_tooltips"]) == len(info["output"])
    assert all(info["output_tooltips"])


def test_rectified_flow_sampler_and_instaflow_scheduler_are_in_stock_ksampler(object_info):
    assert "rectified_flow" in combo_options(object_info, "KSampler", "sampler_name")
    assert "instaflow" in combo_options(object_info, "KSampler", "scheduler")
    assert "rectified_flow" in combo_options(object_info, "KSamplerAdvanced", "sampler_name")


def test_perflow_scheduler_is_in_stock_ksampler(object_info):
    assert "perflow" in combo_options(object_info, "KSampler", "scheduler")
    assert "perflow" in combo_options(object_info, "KSamplerAdvanced", "scheduler")


def test_rectified_flow_sampler_is_in_ksampler_select(object_info):
    assert "rectified_flow" in combo_options(object_info, "KSamplerSelect", "sampler_name")


def test_registration_keeps_stock_entries_and_another_packs_sampler(object_info):
    samplers = combo_options(object_info, "KSampler", "sampler_name")
    assert {"euler", "dpmpp_2m", "other_pack_euler"} <= set(samplers)
    assert samplers.count("rectified_flow") == 1
    assert {"simple", "karras", "normal"} <= set(combo_options(object_info, "KSampler", "scheduler"))


def test_sampler_defaults_are_one_step_without_guidance(object_info):
    required = object_info["InstaFlowSampler"]["input"]["required"]
    assert required["steps"][1]["default"] == 1
    assert required["cfg"][1]["default"] == 1.0
    assert required["denoise"][1]["default"] == 1.0
    assert "negative" in object_info["InstaFlowSampler"]["input"]["optional"]


def test_loader_lists_diffusers_folders_and_single_files_but_not_their_parts(object_info, instaflow_models):
    names = combo_options(object_info, "InstaFlowLoader", "ckpt_name")
    assert instaflow_models.name in names  # the diffusers folder
    assert instaflow_models.single_file.name in names
    assert not [n for n in names if "/unet/" in n or n.startswith(instaflow_models.name + "/")]
