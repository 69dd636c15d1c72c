"""The converter corpus (tests/conversion_corpus/, described in devtools/conversion_corpus.py) on the Python converter,
the reference: for every case, the converted graph and the report lines are the expected ones, and each case's
essential result holds as stated here. tests/test_browser.py runs the frontend command on the same cases.
"""
from __future__ import annotations

import pytest

from devtools.conversion_corpus import case_names, load_case, new_node_ids
from workflow_conversion.convert_api import convert_api_workflow

from test_convert_workflow import comfyui_default_api_workflow

CASES = case_names()


def converted(name: str) -> tuple[dict, list[str], dict]:
    case = load_case(name)
    graph, report = convert_api_workflow(case.input, case.preset)
    return graph, report.lines(), case.input


def settings(node: dict) -> tuple:
    inputs = node["inputs"]
    return inputs["sampler_name"], inputs["scheduler"], inputs["steps"], inputs["cfg"]


def only_changes(before: dict, after: dict, changed: set[str]) -> None:
    """Nodes other than `changed` (and the new ones) are as they were."""
    assert {k: v for k, v in after.items() if k in before and k not in changed} == \
        {k: v for k, v in before.items() if k not in changed}


@pytest.mark.parametrize("name", CASES)
def test_each_case_converts_to_its_expected_graph_and_report(name):
    case = load_case(name)
    assert case.expected is not None and case.report is not None, \
        f"{name}: run `python -m devtools.conversion_corpus {name}` and review the result"
    graph, report = convert_api_workflow(case.input, case.preset)
    assert graph == case.expected
    assert report.lines() == case.report


def test_the_corpus_covers_the_graphs_users_bring():
    assert set(CASES) >= {"default_graph", "sampler_custom", "sampler_custom_advanced", "lora_chain", "two_samplers",
                          "reroutes", "subgraph", "linked_widgets"}
    # Reroutes, Primitive nodes and subgraphs exist only in the frontend's saved graph: those cases carry it.
    assert all(load_case(name).ui is not None for name in ("reroutes", "subgraph", "linked_widgets"))


def test_default_graph_is_comfyuis_own(comfyui_dir):
    assert load_case("default_graph").input == comfyui_default_api_workflow(comfyui_dir)


# ------------------------------------------------------------------------------ what each case must come to


def test_default_graph_ksampler_reads_instaflow_one_step_through_one_new_model_sampling_node():
    graph, lines, before = converted("default_graph")
    (patch,) = new_node_ids(graph, before)
    assert graph[patch] == {"class_type": "ModelSamplingInstaFlow", "inputs": {"model": ["4", 0]}}
    assert graph["3"]["inputs"]["model"] == [patch, 0]
    assert settings(graph["3"]) == ("rectified_flow", "instaflow", 1, 1.0)
    only_changes(before, graph, {"3"})
    assert lines == ["converted sampler 3", f"inserted ModelSamplingInstaFlow as node {patch}"]


def test_sampler_custom_gets_euler_cfg_4_5_and_its_basic_scheduler_becomes_perflow_scheduler_keeping_denoise():
    graph, lines, before = converted("sampler_custom")
    (patch,) = new_node_ids(graph, before)
    assert graph[patch] == {"class_type": "ModelSamplingPeRFlow", "inputs": {"model": ["4", 0], "prediction_type": "diff_eps"}}
    assert graph["12"]["inputs"]["model"] == [patch, 0] and graph["12"]["inputs"]["cfg"] == 4.5
    assert graph["10"]["inputs"] == {"sampler_name": "euler"}
    assert graph["11"] == {"class_type": "PeRFlowScheduler", "inputs": {"model": [patch, 0], "steps": 4, "denoise": 0.6}}
    only_changes(before, graph, {"10", "11", "12"})
    assert "replaced sigma source 11 by PeRFlowScheduler" in lines


def test_sampler_custom_advanced_is_converted_through_its_cfg_guider():
    graph, lines, before = converted("sampler_custom_advanced")
    (patch,) = new_node_ids(graph, before)
    guider = graph["11"]["inputs"]
    assert graph[patch]["class_type"] == "ModelSamplingInstaFlow" and guider["model"] == [patch, 0]
    assert guider["cfg"] == 1.5  # 2-Rectified Flow's cfg, on the guider: the sampler has none
    assert graph["12"]["inputs"] == {"sampler_name": "rectified_flow"}
    assert graph["13"] == {"class_type": "InstaFlowScheduler", "inputs": {"model": [patch, 0], "steps": 4, "denoise": 1.0}}
    assert graph["14"] == before["14"]  # its own inputs are all links
    only_changes(before, graph, {"11", "12", "13"})
    assert lines[0] == "converted sampler 14"


def test_lora_chain_stays_upstream_of_the_new_node():
    graph, _, before = converted("lora_chain")
    (patch,) = new_node_ids(graph, before)
    assert graph[patch]["inputs"]["model"] == ["11", 0]  # after LoraLoader 10 -> LoraLoaderModelOnly 11
    assert graph["3"]["inputs"]["model"] == [patch, 0]
    assert settings(graph["3"]) == ("rectified_flow", "instaflow", 1, 1.0)
    only_changes(before, graph, {"3"})


def test_two_samplers_on_one_model_share_one_model_sampling_perflow_and_both_read_euler_perflow():
    graph, lines, before = converted("two_samplers")
    (patch,) = new_node_ids(graph, before)
    assert graph["3"]["inputs"]["model"] == graph["11"]["inputs"]["model"] == [patch, 0]
    assert settings(graph["3"]) == settings(graph["11"]) == ("euler", "perflow", 4, 4.5)
    assert graph["11"]["inputs"]["start_at_step"] == 10  # the second pass's own settings stay
    assert lines[:2] == ["converted sampler 3", "converted sampler 11"]


def test_reroutes_are_seen_through_and_both_samplers_share_one_new_node():
    graph, lines, before = converted("reroutes")
    (patch,) = new_node_ids(graph, before)
    assert graph[patch]["inputs"]["model"] == ["4", 0]
    assert graph["3"]["inputs"]["model"] == graph["11"]["inputs"]["model"] == [patch, 0]
    assert settings(graph["3"]) == settings(graph["11"]) == ("rectified_flow", "instaflow", 1, 1.0)
    ui_types = {node["type"] for node in load_case("reroutes").ui["nodes"]}
    assert "Reroute" in ui_types


def test_a_sampler_inside_a_subgraph_is_reported_not_converted():
    graph, lines, before = converted("subgraph")
    assert graph["12:3"] == before["12:3"]
    assert "skipped node 12:3: it is inside subgraph node 12; the converter leaves subgraphs alone" in lines
    assert settings(graph["11"]) == ("rectified_flow", "instaflow", 1, 1.0)  # the top-level sampler is converted
    assert "converted sampler 11" in lines and "converted sampler 12:3" not in lines


def test_linked_widgets_primitive_values_are_set_and_a_node_fed_value_is_left_with_a_note():
    graph, lines, before = converted("linked_widgets")
    ui = load_case("linked_widgets").ui
    assert sum(node["type"] == "PrimitiveNode" for node in ui["nodes"]) == 2  # steps and scheduler, in the frontend
    ksampler = graph["3"]["inputs"]
    assert (ksampler["sampler_name"], ksampler["scheduler"], ksampler["steps"]) == ("rectified_flow", "instaflow", 1)
    assert ksampler["cfg"] == ["12", 0] and graph["12"] == before["12"]  # PrimitiveFloat keeps its 6.5
    assert "note: node 3 (KSampler): cfg is connected to node 12; set it to 1 there" in lines
