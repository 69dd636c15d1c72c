"""Convert an API-format ComfyUI workflow from SD1.5 sampling to InstaFlow, 2-Rectified Flow or PeRFlow,
following the rule set in web/instaflow_conversion_rules.json (generated from the flow families' records by
conversion_rules.py; the frontend's "Convert to ..." commands read the same file).

For every KSampler / KSamplerAdvanced / SamplerCustom / SamplerCustomAdvanced (through its CFGGuider or
BasicGuider) whose MODEL comes (through LoRA loaders and other model patches) from a known checkpoint loader:
- the preset's model-sampling node (ModelSamplingInstaFlow; PeRFlow: ModelSamplingPeRFlow with
  prediction_type diff_eps) goes right before the sampler's model input, unless the model chain already
  has one (or starts at the family's loader); samplers sharing one upstream output share it;
- the sampler gets the preset's sampler, scheduler, steps and cfg (InstaFlow: rectified_flow / instaflow,
  1 step, cfg 1; 2-RF: 4 steps, cfg 1.5; PeRFlow: euler / perflow, 4 steps, cfg 4.5);
- for SamplerCustom and SamplerCustomAdvanced, its KSamplerSelect gets the preset's sampler and its sigma
  source (BasicScheduler, KarrasScheduler) becomes the family's scheduler node (InstaFlowScheduler,
  PeRFlowScheduler) with the preset's steps (keeping BasicScheduler's denoise), fed by the same model as the
  sampler; a CFGGuider gets the preset's cfg.
Samplers inside a subgraph (ids "outer:inner", as the frontend's API export writes them) are reported, not
converted. Every other node, value and link is left as it was. The frontend command
(web/instaflow_convert.js) does the same to the graph on the canvas; tests/conversion_corpus holds the cases
on which both are checked to agree, report lines included. Standard library only: this module is imported by
`python <pack> convert` (no ComfyUI) as well as from the package.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

RULES_PATH = Path(__file__).resolve().parent.parent / "web" / "instaflow_conversion_rules.json"


class ConversionError(ValueError):
    """The input is not an API-format workflow, or the preset is unknown."""


@dataclass
class ConversionReport:
    converted: list[str] = field(default_factory=list)  # sampler node ids
    inserted: list[str] = field(default_factory=list)  # new model-sampling node ids
    replaced: list[str] = field(default_factory=list)  # sigma sources turned into the family's scheduler node
    skipped: dict[str, str] = field(default_factory=dict)  # sampler node id -> why it was left alone
    notes: list[str] = field(default_factory=list)  # things the user should check by hand
    model_sampling_node: str = "ModelSamplingInstaFlow"
    scheduler_node: str = "InstaFlowScheduler"

    def lines(self) -> list[str]:
        out = [f"converted sampler {i}" for i in self.converted]
        out += [f"inserted {self.model_sampling_node} as node {i}" for i in self.inserted]
        out += [f"replaced sigma source {i} by {self.scheduler_node}" for i in self.replaced]
        out += [f"skipped node {i}: {why}" for i, why in self.skipped.items()]
        return out + [f"note: {n}" for n in self.notes]


def load_rules(path: Path | str = RULES_PATH) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def preset_rules(rules: dict, preset: str) -> dict:
    """The rules as one preset sees them: the top-level keys and those of the preset's family."""
    return {**rules, **rules["families"][rules["presets"][preset]["family"]]}


def _is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _shown(value) -> str:
    """A value as a note quotes it: as the frontend's JSON.stringify writes it (cfg 1.0 as 1), so that both
    converters word their notes alike."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value)


def _resolve(value, preset: dict):
    if isinstance(value, str) and value.startswith("$"):
        return preset[value[1:]]
    return value


def _check_api_format(workflow) -> None:
    if not isinstance(workflow, dict):
        raise ConversionError("expected an API-format workflow: a JSON object of node id -> {class_type, inputs}")
    if isinstance(workflow.get("nodes"), list):
        raise ConversionError("this is a UI-format workflow (it has a \"nodes\" list). Convert it in ComfyUI with "
                              "Edit > InstaFlow > Convert to InstaFlow, or export it with File > Export (API) first")
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or "class_type" not in node or not isinstance(node.get("inputs"), dict):
            raise ConversionError(f"node {node_id!r} has no class_type/inputs: not an API-format workflow")


class _Converter:
    def __init__(self, workflow: dict, rules: dict, preset: dict, object_info: dict | None = None):
        self.wf = workflow
        self.object_info = object_info
        self.rules = rules
        self.preset = preset
        self.report = ConversionReport(model_sampling_node=rules["model_sampling_node"]["type"],
                                       scheduler_node=rules["scheduler_node"]["type"])
        self.model_input = rules["model_input"]
        self._inserted_for: dict[tuple[str, int], str] = {}
        # The frontend numbers the nodes of the top-level graph and of every subgraph from one counter, so a new node
        # gets the next number after all of them ("10:3" counts as 10 and 3).
        numeric = [int(part) for k in workflow for part in str(k).split(":") if part.isdigit()]
        self._next_id = max(numeric, default=0) + 1

    def new_id(self) -> str:
        while str(self._next_id) in self.wf:
            self._next_id += 1
        node_id = str(self._next_id)
        self._next_id += 1
        return node_id

    def set_values(self, node_id: str, values: dict) -> None:
        inputs = self.wf[node_id]["inputs"]
        for name, value in values.items():
            if _is_link(inputs.get(name)):
                self.report.notes.append(f"node {node_id} ({self.wf[node_id]['class_type']}): {name} is connected to "
                                         f"node {inputs[name][0]}; set it to {_shown(_resolve(value, self.preset))} there")
                continue
            value = _resolve(value, self.preset)
            if (problem := self.refusal(node_id, name, value)) is not None:
                self.report.notes.append(problem)
                continue
            inputs[name] = value

    def refusal(self, node_id: str, name: str, value) -> str | None:
        """Why the server would refuse `value` for this input, as the frontend command finds it from the node's widget:
        no such widget, or a choice the list does not offer (the sampler or scheduler of a pack that is not loaded).
        Only with the server's node definitions (/object_info); without them every value is written."""
        class_type = self.wf[node_id]["class_type"]
        info = (self.object_info or {}).get(class_type)
        if info is None:
            return None
        spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}.get(name)
        if spec is None:
            return f"node {node_id} ({class_type}) has no {name} widget"
        kind = spec[0]
        options = kind if isinstance(kind, list) else (spec[1].get("options") if kind == "COMBO" and len(spec) > 1 else None)
        if options is not None and value not in options:
            return f"node {node_id} ({class_type}): {name} has no option {_shown(value)}"
        return None

    def trace_model(self, link) -> tuple[str | None, bool, str | None, str | None]:
        """Follow MODEL links upstream: (root class, already patched, other-architecture or -family node, problem)."""
        patched, seen = False, set()
        while True:
            node_id = link[0]
            if node_id in seen:
                return None, patched, None, "the model links form a cycle"
            seen.add(node_id)
            node = self.wf.get(node_id)
            if node is None:
                return None, patched, None, f"the model comes from node {node_id}, which is not in the workflow"
            class_type = node["class_type"]
            if class_type in self.rules["already_patched"]:
                patched = True
            if class_type in self.rules["other_architectures"] or class_type in self.rules["other_families"]:
                return class_type, patched, class_type, None
            upstream = node["inputs"].get(self.model_input)
            if not _is_link(upstream):
                return class_type, patched, None, None
            link = upstream

    def convert_sampler(self, node_id: str) -> None:
        node = self.wf[node_id]
        class_type = node["class_type"]
        rule = self.rules["samplers"][class_type]
        # The node whose model input the sampler runs: the sampler itself, or the guider of a SamplerCustomAdvanced.
        holder_id, guider_rule = node_id, None
        if "guider_input" in rule:
            link = node["inputs"].get(rule["guider_input"])
            guider = self.wf.get(link[0]) if _is_link(link) else None
            if guider is None:
                self.report.skipped[node_id] = f"{class_type} has no guider connected"
                return
            if guider["class_type"] not in self.rules["guiders"]:
                self.report.skipped[node_id] = (f"its guider is {guider['class_type']}, not one the converter knows "
                                                f"({', '.join(self.rules['guiders'])})")
                return
            holder_id, guider_rule = link[0], self.rules["guiders"][guider["class_type"]]
        holder = self.wf[holder_id]
        model_link = holder["inputs"].get(self.model_input)
        if not _is_link(model_link):
            self.report.skipped[node_id] = f"{holder['class_type']} has no model connected"
            return
        root, patched, other, problem = self.trace_model(model_link)
        if problem:
            self.report.skipped[node_id] = problem
            return
        if other in self.rules["other_families"]:
            self.report.skipped[node_id] = f"its model passes through {other}: set up for another flow family"
            return
        if other:
            self.report.skipped[node_id] = f"its model passes through {other}: not an SD1.5 graph"
            return
        if root not in self.rules["model_sources"]:
            self.report.skipped[node_id] = (f"its model comes from {root}, not from a known SD1.5 checkpoint loader "
                                            f"({', '.join(self.rules['model_sources'])})")
            return
        if not patched:
            key = (model_link[0], model_link[1])
            if key not in self._inserted_for:
                new_id = self.new_id()
                patch = self.rules["model_sampling_node"]
                self.wf[new_id] = {"class_type": patch["type"], "inputs": {self.model_input: list(model_link)}}
                self.set_values(new_id, patch["set"])
                self._inserted_for[key] = new_id
                self.report.inserted.append(new_id)
            holder["inputs"][self.model_input] = [self._inserted_for[key], 0]
        if guider_rule:
            self.set_values(holder_id, guider_rule["set"])
        self.set_values(node_id, rule.get("set", {}))
        if "sampler_input" in rule:
            self.convert_sampler_source(node_id, node["inputs"].get(rule["sampler_input"]))
        if "sigmas_input" in rule:
            self.convert_sigma_source(node_id, node["inputs"].get(rule["sigmas_input"]), holder["inputs"][self.model_input])
        self.report.converted.append(node_id)

    def convert_sampler_source(self, sampler_id: str, link) -> None:
        source = self.wf.get(link[0]) if _is_link(link) else None
        if source is None or source["class_type"] not in self.rules["sampler_selects"]:
            what = source["class_type"] if source else "nothing"
            self.report.notes.append(f"node {sampler_id}: its sampler comes from {what}; use KSamplerSelect with "
                                     f"{self.preset['sampler_name']}")
            return
        self.set_values(link[0], self.rules["sampler_selects"][source["class_type"]]["set"])

    def convert_sigma_source(self, sampler_id: str, link, model_link) -> None:
        source = self.wf.get(link[0]) if _is_link(link) else None
        target = self.rules["scheduler_node"]
        if source is None or source["class_type"] not in self.rules["sigma_sources"]:
            what = source["class_type"] if source else "nothing"
            self.report.notes.append(f"node {sampler_id}: its sigmas come from {what}; use {target['type']}")
            return
        keep = {name: source["inputs"][name] for name in self.rules["sigma_sources"][source["class_type"]]["keep"]
                if name in source["inputs"]}
        if source["class_type"] != target["type"]:
            # Replaced in place: the node keeps its id, so every link from its output still holds.
            source["class_type"] = target["type"]
            source["inputs"] = {target["model_input"]: list(model_link)}
            self.report.replaced.append(link[0])
        self.set_values(link[0], {name: value for name, value in target["set"].items() if name not in keep})
        source["inputs"].update(keep)


def convert_api_workflow(workflow: dict, preset: str | None = None, rules: dict | None = None,
                         object_info: dict | None = None) -> tuple[dict, ConversionReport]:
    """(converted copy of `workflow`, report). `preset`: a key of the rules' presets ("instaflow", "2rf", "perflow").
    `object_info`: the server's node definitions (GET /object_info); with them, a value the server would refuse is
    left as it was and noted, as the frontend command does."""
    rules = rules or load_rules()
    _check_api_format(workflow)
    name = preset or rules["default_preset"]
    if name not in rules["presets"]:
        raise ConversionError(f"unknown preset {name!r}; choose one of {', '.join(rules['presets'])}")
    converter = _Converter(copy.deepcopy(workflow), preset_rules(rules, name), rules["presets"][name], object_info)
    for node_id in sorted(converter.wf, key=lambda k: (not str(k).isdigit(), int(k) if str(k).isdigit() else 0, str(k))):
        if converter.wf[node_id]["class_type"] not in rules["samplers"]:
            continue
        if ":" in str(node_id):
            # The frontend command converts the graph on screen and does not enter subgraphs; this converter, given the
            # flattened export, says the same rather than convert what the command would leave.
            converter.report.skipped[node_id] = (f"it is inside subgraph node {str(node_id).rsplit(':', 1)[0]}; "
                                                 f"the converter leaves subgraphs alone")
            continue
        converter.convert_sampler(node_id)
    return converter.wf, converter.report
