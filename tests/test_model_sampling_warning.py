"""ModelSamplingInstaFlow fed a model that is clearly not SD1.5: a warning on the node, not a failed run.

The warning travels as the node's ui output "instaflow_warning" (what the frontend receives in its
`executed` message and web/instaflow_convert.js draws on the node) and as a line in the server log.
PreviewAny (a stock output node that takes anything) makes the graphs runnable without sampling.
"""
import pytest

from devtools.graphs import Graph

WARNING_KEY = "instaflow_warning"


def model_sampling_graph(load_model) -> tuple[dict, str]:
    g = Graph()
    model = load_model(g)
    patched = g.add("ModelSamplingInstaFlow", model=model)
    g.add("PreviewAny", source=patched[0])
    return g.api(), patched.id


@pytest.fixture(scope="module")
def sd3_outputs(comfy_server, tiny_foreign_model):
    prompt, node_id = model_sampling_graph(
        lambda g: g.add("UNETLoader", unet_name=tiny_foreign_model.name, weight_dtype="default")[0])
    return comfy_server.run(prompt, timeout=120), node_id


def test_non_sd15_model_runs_through_with_a_warning_naming_its_architecture(sd3_outputs):
    outputs, node_id = sd3_outputs
    (warning,) = outputs[node_id][WARNING_KEY]
    assert "SD3" in warning and "SD1.5" in warning
    assert warning.startswith("ModelSamplingInstaFlow")


def test_warning_is_written_to_the_server_log(sd3_outputs, comfy_server):
    outputs, node_id = sd3_outputs
    (warning,) = outputs[node_id][WARNING_KEY]
    assert f"{warning} The model is patched for InstaFlow sampling anyway" in comfy_server.log_text()


def test_sd15_model_gives_no_warning(comfy_server, reduced_instaflow):
    prompt, node_id = model_sampling_graph(
        lambda g: g.add("CheckpointLoaderSimple", ckpt_name=reduced_instaflow.single_file.name)[0])
    outputs = comfy_server.run(prompt, timeout=300)
    assert WARNING_KEY not in outputs.get(node_id, {})
