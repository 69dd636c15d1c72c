// "Convert to InstaFlow / 2-Rectified Flow / PeRFlow": rewrites the open SD1.5 graph for straight-flow sampling.
// The rules live in instaflow_conversion_rules.json next to this file, generated from the flow families' records
// (workflow_conversion/conversion_rules.py), commands and all; workflow_conversion/convert_api.py applies the same
// rules to API-format workflows (`python <pack> convert`) and is the reference: tests/conversion_corpus holds the
// cases on which both must give the same graph and the same report lines (tests/test_browser.py runs this side).
// Also shows the model-sampling nodes' run-time warning (a model of another architecture) on the node.
import { app } from "../../scripts/app.js";
import {
  addLegacyCanvasMenuItems, beginChange, endChange, graphNodes, inputLinkAt, outputLinksAt, readOnlyTextWidget,
  setWidgetValue, widgetsChanged,
} from "./frontend_shim.js";

const EXTENSION = "InstaFlow.ConvertGraph";
const RULES_URL = new URL("./instaflow_conversion_rules.json", import.meta.url);
const WARNING_KEY = "instaflow_warning"; // ui output key of the model-sampling nodes (comfyui_glue/architecture_warning.py)

let rulesPromise = null;
function loadRules() {
  rulesPromise ??= fetch(RULES_URL).then((r) => {
    if (!r.ok) throw new Error(`cannot read ${RULES_URL}: HTTP ${r.status}`);
    return r.json();
  });
  return rulesPromise;
}

// The frontend waits for an extension module before it starts the app, so the commands can come from the rules.
const RULES = await loadRules().catch((error) => {
  console.error("InstaFlow: the conversion commands are off:", error);
  return { presets: {}, warning_nodes: [] };
});
const COMMANDS = Object.fromEntries(Object.entries(RULES.presets).map(([preset, { command }]) => [preset, command]));
const WARNING_NODES = RULES.warning_nodes;

// The rules as one preset sees them: the top-level keys and those of the preset's family.
const presetRules = (rules, presetName) => ({ ...rules, ...rules.families[rules.presets[presetName].family] });
const resolve = (value, preset) => (typeof value === "string" && value.startsWith("$") ? preset[value.slice(1)] : value);
const typeOf = (node) => node.comfyClass ?? node.type;
const inputIndex = (node, name) => node.inputs?.findIndex((input) => input.name === name) ?? -1;
const inputLink = (graph, node, name) => inputLinkAt(graph, node, inputIndex(node, name));

// Legacy "Reroute" nodes and the legacy "Primitive" node are the frontend's own: they never reach the server. The
// export (and so the Python converter) sees through a reroute to the node behind it, and sees a primitive's value
// copied into the widget it feeds.
const REROUTE = "Reroute";
const PRIMITIVE = "PrimitiveNode";

function comboValues(widget) {
  const values = widget.options?.values;
  return typeof values === "function" ? values() : values;
}


class GraphConverter {
  constructor(graph, rules, presetName) {
    this.graph = graph;
    this.rules = rules;
    this.preset = rules.presets[presetName];
    this.report = { converted: [], inserted: [], replaced: [], skipped: [], notes: [], modelSamplingNode:
      rules.model_sampling_node.type, schedulerNode: rules.scheduler_node.type };
    // "origin_id:origin_slot" of the model's real source (behind any reroutes) -> the inserted model-sampling node
    this.insertedFor = new Map();
  }

  skip(sampler, why) {
    this.report.skipped.push([String(sampler.id), why]);
  }

  // The link's origin, behind any chain of legacy Reroute nodes: what the export names as the source.
  realOrigin(link) {
    const seen = new Set();
    let node = this.graph.getNodeById(link.origin_id);
    while (node && typeOf(node) === REROUTE && !seen.has(node.id)) {
      seen.add(node.id);
      const next = inputLinkAt(this.graph, node, 0);
      if (!next) break;
      link = next;
      node = this.graph.getNodeById(link.origin_id);
    }
    return { node, link };
  }

  setValues(node, values) {
    for (const [name, raw] of Object.entries(values)) {
      const value = resolve(raw, this.preset);
      const socket = node.inputs?.findIndex((input) => input.widget?.name === name) ?? -1;
      const link = inputLinkAt(this.graph, node, socket);
      let target = node, widget;
      if (link) {
        const { node: origin, link: real } = this.realOrigin(link);
        if (origin && typeOf(origin) === PRIMITIVE && origin.widgets?.length) {
          // Its value is what the widget holds when the graph runs, and it writes its own value there on every run:
          // so the value is set on the primitive, as the export-side converter sets it on the widget.
          target = origin;
          widget = origin.widgets[0];
        } else {
          this.report.notes.push(`node ${node.id} (${typeOf(node)}): ${name} is connected to node ${real.origin_id}; set it to ${JSON.stringify(value)} there`);
          continue;
        }
      }
      widget ??= node.widgets?.find((w) => w.name === name);
      if (!widget) {
        this.report.notes.push(`node ${node.id} (${typeOf(node)}) has no ${name} widget`);
        continue;
      }
      const options = comboValues(widget);
      if (Array.isArray(options) && !options.includes(value)) {
        this.report.notes.push(`node ${node.id} (${typeOf(node)}): ${name} has no option ${JSON.stringify(value)}`);
        continue;
      }
      setWidgetValue(app, target, widget, value);
    }
  }

  // Follows MODEL links upstream (through LoRA loaders, patches, reroutes) to the node that makes the model.
  traceModel(link) {
    let patched = false;
    const seen = new Set();
    for (;;) {
      const node = this.graph.getNodeById(link.origin_id);
      if (!node) return { problem: `the model comes from node ${link.origin_id}, which is not in the workflow` };
      if (seen.has(node.id)) return { problem: "the model links form a cycle" };
      seen.add(node.id);
      const type = typeOf(node);
      if (this.rules.already_patched.includes(type)) patched = true;
      if (this.rules.other_architectures.includes(type) || this.rules.other_families.includes(type)) return { root: type, patched, other: type };
      const next = type === REROUTE ? inputLinkAt(this.graph, node, 0) : inputLink(this.graph, node, this.rules.model_input);
      if (!next) return { root: type, patched };
      link = next;
    }
  }

  // Samplers whose models come from one output share one inserted node, whichever reroutes they reach it through.
  insertModelSampling(sampler, link) {
    const { link: real } = this.realOrigin(link);
    const key = `${real.origin_id}:${real.origin_slot}`;
    let patch = this.insertedFor.get(key);
    if (!patch) {
      const rule = this.rules.model_sampling_node;
      patch = LiteGraph.createNode(rule.type);
      patch.size[0] = Math.max(patch.size[0], 330); // room for its title
      // Placed before it is added: "Nodes 2.0" takes a new node's position into its layout store when it is added.
      patch.pos = [sampler.pos[0], sampler.pos[1] - patch.size[1] - 70]; // just above the sampler
      this.graph.add(patch);
      this.graph.getNodeById(link.origin_id).connect(link.origin_slot, patch, inputIndex(patch, this.rules.model_input));
      this.setValues(patch, rule.set);
      this.insertedFor.set(key, patch);
      this.report.inserted.push(String(patch.id));
    }
    patch.connect(0, sampler, inputIndex(sampler, this.rules.model_input));
  }

  convertSampler(sampler) {
    const type = typeOf(sampler);
    const rule = this.rules.samplers[type];
    // The node whose model input the sampler runs: the sampler itself, or the guider of a SamplerCustomAdvanced.
    let holder = sampler, guiderRule = null;
    if (rule.guider_input) {
      const guiderLink = inputLink(this.graph, sampler, rule.guider_input);
      const guider = guiderLink && this.realOrigin(guiderLink).node;
      if (!guider) return this.skip(sampler, `${type} has no guider connected`);
      guiderRule = this.rules.guiders[typeOf(guider)];
      if (!guiderRule) {
        return this.skip(sampler, `its guider is ${typeOf(guider)}, not one the converter knows (${Object.keys(this.rules.guiders).join(", ")})`);
      }
      holder = guider;
    }
    const link = inputLink(this.graph, holder, this.rules.model_input);
    if (!link) return this.skip(sampler, `${typeOf(holder)} has no model connected`);
    const { root, patched, other, problem } = this.traceModel(link);
    if (problem) return this.skip(sampler, problem);
    if (other && this.rules.other_families.includes(other)) {
      return this.skip(sampler, `its model passes through ${other}: set up for another flow family`);
    }
    if (other) return this.skip(sampler, `its model passes through ${other}: not an SD1.5 graph`);
    if (!this.rules.model_sources.includes(root)) {
      return this.skip(sampler,
        `its model comes from ${root}, not from a known SD1.5 checkpoint loader (${this.rules.model_sources.join(", ")})`);
    }
    if (!patched) this.insertModelSampling(holder, link);
    if (guiderRule) this.setValues(holder, guiderRule.set);
    this.setValues(sampler, rule.set ?? {});
    if (rule.sampler_input) this.convertSamplerSource(sampler, inputLink(this.graph, sampler, rule.sampler_input));
    if (rule.sigmas_input) this.convertSigmaSource(sampler, holder, inputLink(this.graph, sampler, rule.sigmas_input));
    this.report.converted.push(String(sampler.id));
  }

  convertSamplerSource(sampler, link) {
    const source = link && this.realOrigin(link).node;
    const rule = source && this.rules.sampler_selects[typeOf(source)];
    if (!rule) {
      this.report.notes.push(`node ${sampler.id}: its sampler comes from ${source ? typeOf(source) : "nothing"}; use KSamplerSelect with ${this.preset.sampler_name}`);
      return;
    }
    this.setValues(source, rule.set);
  }

  convertSigmaSource(sampler, holder, link) {
    let source = link && this.realOrigin(link).node;
    const rule = source && this.rules.sigma_sources[typeOf(source)];
    if (!rule) {
      this.report.notes.push(`node ${sampler.id}: its sigmas come from ${source ? typeOf(source) : "nothing"}; use ${this.rules.scheduler_node.type}`);
      return;
    }
    const target = this.rules.scheduler_node;
    const kept = Object.fromEntries(rule.keep.map((name) => [name, source.widgets?.find((w) => w.name === name)])
      .filter(([, widget]) => widget).map(([name, widget]) => [name, widget.value]));
    if (typeOf(source) !== target.type) source = this.replaceSigmaSource(holder, source, target);
    this.setValues(source, { ...Object.fromEntries(Object.entries(target.set).filter(([name]) => !(name in kept))), ...kept });
  }

  // The family's scheduler node (InstaFlowScheduler, PeRFlowScheduler) in the old scheduler's place, under its id (as
  // the export-side converter changes the node's type in place): same outputs, model from the sampler's model.
  replaceSigmaSource(holder, old, target) {
    const targets = outputLinksAt(this.graph, old, 0).map((l) => [this.graph.getNodeById(l.target_id), l.target_slot]);
    const { id, pos } = old;
    this.graph.remove(old);
    const scheduler = LiteGraph.createNode(target.type);
    scheduler.id = id; // LiteGraph keeps a new node's id when no node has it
    scheduler.pos = [...pos]; // before it is added, as in insertModelSampling
    this.graph.add(scheduler);
    const model = inputLink(this.graph, holder, this.rules.model_input);
    this.graph.getNodeById(model.origin_id).connect(model.origin_slot, scheduler, inputIndex(scheduler, target.model_input));
    for (const [node, slot] of targets) scheduler.connect(0, node, slot);
    this.report.replaced.push(String(scheduler.id));
    return scheduler;
  }
}

// Samplers inside subgraphs, with the ids the export gives them ("outer:inner"): reported, not converted (the
// command changes the graph on screen only; inside an opened subgraph, that graph is the subgraph).
function subgraphSamplers(graph, rules, prefix = "") {
  const found = [];
  for (const node of graphNodes(graph)) {
    const inner = node.subgraph;
    if (!inner || !(node.isSubgraphNode?.() ?? true)) continue;
    const path = `${prefix}${node.id}`;
    for (const child of graphNodes(inner)) {
      if (typeOf(child) in rules.samplers) found.push([`${path}:${child.id}`, path]);
    }
    found.push(...subgraphSamplers(inner, rules, `${path}:`));
  }
  return found;
}

// The report as the Python converter's ConversionReport.lines() words it, line for line.
export function reportLines(report) {
  return [
    ...report.converted.map((id) => `converted sampler ${id}`),
    ...report.inserted.map((id) => `inserted ${report.modelSamplingNode} as node ${id}`),
    ...report.replaced.map((id) => `replaced sigma source ${id} by ${report.schedulerNode}`),
    ...report.skipped.map(([id, why]) => `skipped node ${id}: ${why}`),
    ...report.notes.map((note) => `note: ${note}`),
  ];
}

export function convertGraph(graph, allRules, presetName) {
  if (!allRules.presets[presetName]) throw new Error(`unknown preset ${presetName}`);
  const rules = presetRules(allRules, presetName);
  for (const type of [rules.model_sampling_node.type, rules.scheduler_node.type]) {
    if (!LiteGraph.registered_node_types[type]) throw new Error(`node type ${type} is not loaded: is the InstaFlow pack installed?`);
  }
  const converter = new GraphConverter(graph, rules, presetName);
  const samplers = graphNodes(graph).filter((node) => typeOf(node) in rules.samplers).sort((a, b) => a.id - b.id);
  for (const sampler of samplers) converter.convertSampler(sampler);
  const nested = subgraphSamplers(graph, rules).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [id, outer] of nested) converter.report.skipped.push([id, `it is inside subgraph node ${outer}; the converter leaves subgraphs alone`]);
  return converter.report;
}

function toast(severity, summary, detail) {
  const manager = app.extensionManager?.toast;
  if (manager) manager.add({ severity, summary, detail, life: severity === "error" ? 10000 : 6000 });
  else console[severity === "error" ? "error" : "log"](`${summary}: ${detail}`);
}

// "Nodes 2.0" renders each new node as a DOM element, measures it and writes its size and position back to the graph
// some frames later (more on a busy machine); those writes must land inside the command's undo step, or the next
// check records them as a step of their own and one undo takes back only them. So the step stays open until the
// graph, as the change tracker serializes it, has not changed for 3 frames and 100 ms have passed. A hidden tab draws
// no frames: there the wait is 200 ms; the 2 s cap keeps a tab hidden mid-command from holding the step open.
const layoutSettled = (graph) => new Promise((resolve) => {
  const start = performance.now();
  let finished = false, last = null, still = 0;
  const finish = () => { if (!finished) { finished = true; resolve(); } };
  setTimeout(finish, document.hidden ? 200 : 2000);
  const frame = () => {
    if (finished) return;
    const state = JSON.stringify(graph.serialize?.() ?? null);
    still = state === last ? still + 1 : 0;
    last = state;
    if (still >= 3 && performance.now() - start >= 100) finish();
    else requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
});

// One undo step: the change tracker records nothing between before-change and after-change.
async function runConversion(presetName) {
  const rules = await loadRules();
  const graph = app.canvas?.graph ?? app.graph;
  beginChange(app);
  let report;
  try {
    report = convertGraph(graph, rules, presetName);
  } catch (error) {
    toast("error", COMMANDS[presetName].label, String(error?.message ?? error));
    console.error(error);
    return null;
  } finally {
    await layoutSettled(graph);
    endChange(app, graph);
  }
  const skipped = report.skipped.map(([id, why]) => `node ${id}: ${why}`);
  const lines = [...skipped, ...report.notes];
  if (report.converted.length) {
    toast(lines.length ? "warn" : "success", rules.presets[presetName].label,
      `Converted ${report.converted.length} sampler(s), inserted ${report.inserted.length} ${presetRules(rules, presetName).model_sampling_node.type}.` +
      (lines.length ? ` ${lines.join("; ")}` : ""));
  } else {
    toast("warn", COMMANDS[presetName].label, `Nothing to convert: no KSampler / KSamplerAdvanced / SamplerCustom / SamplerCustomAdvanced fed by an SD1.5 checkpoint loader.${lines.length ? " " + lines.join("; ") : ""}`);
  }
  return report;
}

// The warning is a read-only text widget on the node (as the core Preview Any node shows its text), so it shows in
// both renderers: the classic canvas and the Vue-based "Nodes 2.0" (which does not call onDrawForeground).
const WARNING_WIDGET = "instaflow_warning";

function showWarning(node, text) {
  node.instaflowWarning = text || null;
  let widget = node.widgets?.find((w) => w.name === WARNING_WIDGET);
  if (!text) {
    if (widget) {
      node.removeWidget(widget);
      widgetsChanged(app, node);
    }
  } else {
    const added = !widget;
    widget ??= readOnlyTextWidget(app, node, WARNING_WIDGET, text);
    if (added) widget.value = `⚠ ${text}`;
    else setWidgetValue(app, node, widget, `⚠ ${text}`); // through its callback, which "Nodes 2.0" follows
    const [width, height] = node.computeSize?.() ?? node.size;
    node.setSize?.([Math.max(node.size[0], width, 360), Math.max(node.size[1], height, 160)]);
    if (added) widgetsChanged(app, node); // after the value and size are set: the renderer copies both
  }
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: EXTENSION,
  commands: Object.entries(COMMANDS).map(([preset, { id, label, tooltip }]) => ({
    id,
    label,
    icon: "pi pi-bolt",
    tooltip,
    function: () => runConversion(preset),
  })),
  menuCommands: [{ path: ["Edit", "InstaFlow"], commands: Object.values(COMMANDS).map((c) => c.id) }],
  // Canvas right-click menu (frontend >= 1.28: getCanvasMenuItems; older ones: addLegacyCanvasMenuItems in setup).
  getCanvasMenuItems() {
    return [null, ...Object.values(COMMANDS).map(({ id, label }) => ({
      content: label,
      callback: () => app.extensionManager.command.execute(id),
    }))];
  },
  async setup() {
    addLegacyCanvasMenuItems(app, () => Object.keys(COMMANDS).map((preset) => ({
      content: COMMANDS[preset].label, callback: () => runConversion(preset) })));
    window.InstaFlow = { convertGraph, reportLines, runConversion, loadRules }; // for scripting and the browser tests
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!WARNING_NODES.includes(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.[WARNING_KEY]?.join(" ");
      showWarning(this, text);
      if (text) toast("warn", nodeData.display_name ?? nodeData.name, text);
    };
  },
});
