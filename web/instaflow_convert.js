// "Convert to InstaFlow / 2-Rectified Flow / PeRFlow": rewrites the open SD1.5 graph for straight-flow sampling.
// The rules live in instaflow_conversion_rules.json next to this file, generated from the flow families' records
// (workflow_conversion/conversion_rules.py), commands and all; workflow_conversion/convert_api.py applies the same
// rules to API-format workflows (`python <pack> convert`), so both stay in step.
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

function comboValues(widget) {
  const values = widget.options?.values;
  return typeof values === "function" ? values() : values;
}


class GraphConverter {
  constructor(graph, rules, presetName) {
    this.graph = graph;
    this.rules = rules;
    this.preset = rules.presets[presetName];
    this.report = { converted: [], inserted: [], replaced: [], skipped: {}, notes: [] };
    this.insertedFor = new Map(); // "origin_id:origin_slot" -> the inserted model-sampling node
  }

  setValues(node, values) {
    for (const [name, raw] of Object.entries(values)) {
      const value = resolve(raw, this.preset);
      const socket = node.inputs?.findIndex((input) => input.widget?.name === name) ?? -1;
      const link = inputLinkAt(this.graph, node, socket);
      if (link) {
        this.report.notes.push(`node ${node.id} (${typeOf(node)}): ${name} is connected to node ${link.origin_id}; set it to ${JSON.stringify(value)} there`);
        continue;
      }
      const widget = node.widgets?.find((w) => w.name === name);
      if (!widget) {
        this.report.notes.push(`node ${node.id} (${typeOf(node)}) has no ${name} widget`);
        continue;
      }
      const options = comboValues(widget);
      if (Array.isArray(options) && !options.includes(value)) {
        this.report.notes.push(`node ${node.id} (${typeOf(node)}): ${name} has no option ${JSON.stringify(value)}`);
        continue;
      }
      setWidgetValue(app, node, widget, value);
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
      const next = type === "Reroute" ? inputLinkAt(this.graph, node, 0) : inputLink(this.graph, node, this.rules.model_input);
      if (!next) return { root: type, patched };
      link = next;
    }
  }

  insertModelSampling(sampler, link) {
    const key = `${link.origin_id}:${link.origin_slot}`;
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
      this.report.inserted.push(patch.id);
    }
    patch.connect(0, sampler, inputIndex(sampler, this.rules.model_input));
  }

  convertSampler(sampler) {
    const type = typeOf(sampler);
    const rule = this.rules.samplers[type];
    const link = inputLink(this.graph, sampler, this.rules.model_input);
    if (!link) return void (this.report.skipped[sampler.id] = `${type} has no model connected`);
    const { root, patched, other, problem } = this.traceModel(link);
    if (problem) return void (this.report.skipped[sampler.id] = problem);
    if (other && this.rules.other_families.includes(other)) {
      return void (this.report.skipped[sampler.id] = `its model passes through ${other}: set up for another flow family`);
    }
    if (other) return void (this.report.skipped[sampler.id] = `its model passes through ${other}: not an SD1.5 graph`);
    if (!this.rules.model_sources.includes(root)) {
      return void (this.report.skipped[sampler.id] =
        `its model comes from ${root}, not from a known SD1.5 checkpoint loader (${this.rules.model_sources.join(", ")})`);
    }
    if (!patched) this.insertModelSampling(sampler, link);
    this.setValues(sampler, rule.set ?? {});
    if (rule.sampler_input) this.convertSamplerSource(sampler, inputLink(this.graph, sampler, rule.sampler_input));
    if (rule.sigmas_input) this.convertSigmaSource(sampler, inputLink(this.graph, sampler, rule.sigmas_input));
    this.report.converted.push(sampler.id);
  }

  convertSamplerSource(sampler, link) {
    const source = link && this.graph.getNodeById(link.origin_id);
    const rule = source && this.rules.sampler_selects[typeOf(source)];
    if (!rule) {
      this.report.notes.push(`node ${sampler.id}: its sampler comes from ${source ? typeOf(source) : "nothing"}; use KSamplerSelect with ${this.preset.sampler_name}`);
      return;
    }
    this.setValues(source, rule.set);
  }

  convertSigmaSource(sampler, link) {
    let source = link && this.graph.getNodeById(link.origin_id);
    const rule = source && this.rules.sigma_sources[typeOf(source)];
    if (!rule) {
      this.report.notes.push(`node ${sampler.id}: its sigmas come from ${source ? typeOf(source) : "nothing"}; use ${this.rules.scheduler_node.type}`);
      return;
    }
    const target = this.rules.scheduler_node;
    const kept = Object.fromEntries(rule.keep.map((name) => [name, source.widgets?.find((w) => w.name === name)])
      .filter(([, widget]) => widget).map(([name, widget]) => [name, widget.value]));
    if (typeOf(source) !== target.type) source = this.replaceSigmaSource(sampler, source, target);
    this.setValues(source, { ...Object.fromEntries(Object.entries(target.set).filter(([name]) => !(name in kept))), ...kept });
  }

  // A new scheduler node (InstaFlowScheduler, PeRFlowScheduler) where the old scheduler was: same outputs, model from the sampler's model.
  replaceSigmaSource(sampler, old, target) {
    const scheduler = LiteGraph.createNode(target.type);
    scheduler.pos = [...old.pos]; // before it is added, as in insertModelSampling
    this.graph.add(scheduler);
    const model = inputLink(this.graph, sampler, this.rules.model_input);
    this.graph.getNodeById(model.origin_id).connect(model.origin_slot, scheduler, inputIndex(scheduler, target.model_input));
    const targets = outputLinksAt(this.graph, old, 0).map((l) => [this.graph.getNodeById(l.target_id), l.target_slot]);
    for (const [node, slot] of targets) scheduler.connect(0, node, slot);
    this.graph.remove(old);
    this.report.replaced.push(scheduler.id);
    return scheduler;
  }
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
  const skipped = Object.entries(report.skipped).map(([id, why]) => `node ${id}: ${why}`);
  const lines = [...skipped, ...report.notes];
  if (report.converted.length) {
    toast(lines.length ? "warn" : "success", rules.presets[presetName].label,
      `Converted ${report.converted.length} sampler(s), inserted ${report.inserted.length} ${presetRules(rules, presetName).model_sampling_node.type}.` +
      (lines.length ? ` ${lines.join("; ")}` : ""));
  } else {
    toast("warn", COMMANDS[presetName].label, `Nothing to convert: no KSampler / KSamplerAdvanced / SamplerCustom fed by an SD1.5 checkpoint loader.${lines.length ? " " + lines.join("; ") : ""}`);
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
    window.InstaFlow = { convertGraph, runConversion, loadRules }; // for scripting and the browser tests
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
