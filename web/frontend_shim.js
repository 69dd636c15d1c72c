// Every place where the pack's JavaScript reaches past the documented extension API, or where the ComfyUI frontends it
// is tested on differ for it (1.25.10 with ComfyUI 0.3.52, 1.32.9 with 0.3.75, 1.48.7 with 0.33.0, 1.58.1), each found
// by what the frontend has, not by its version, and each naming the versions its paths serve.

const linkById = (graph, id) => (id == null ? null : (graph.getLink?.(id) ?? graph.links?.get?.(id) ?? graph.links?.[id] ?? null));

// The link into input `index` of `node`. LiteGraph's node.getInputLink(slot) (1.32.9, 1.48.7, 1.58.1); reading the
// slot's own `link` id instead works everywhere but warns from 1.58.1 ("input.link is deprecated"), so it is only
// the fallback for a LiteGraph without getInputLink.
export function inputLinkAt(graph, node, index) {
  if (index < 0 || !node.inputs?.[index]) return null;
  if (typeof node.getInputLink === "function" && node.graph) return node.getInputLink(index);
  return linkById(graph, node.inputs[index].link);
}

// The links out of output `slot` of `node`, from the graph's link table (a Map from 1.32.9 on, an object in older
// LiteGraph). Not the slot's `links` ids: reading those warns from 1.58.1 ("output.links is deprecated").
export function outputLinksAt(graph, node, slot) {
  const links = graph.links instanceof Map ? [...graph.links.values()] : Object.values(graph.links ?? {});
  return links.filter((link) => link && link.origin_id === node.id && link.origin_slot === slot);
}

// The graph's nodes: `graph.nodes` in every tested frontend; `_nodes` in an older LiteGraph.
export const graphNodes = (graph) => [...(graph.nodes ?? graph._nodes)];

// Sets a widget's value the way the frontend's own UI does, so both renderers show it. The "Nodes 2.0" renderer
// (Vue nodes, 1.32.9 on) keeps its own copy of each widget's value and refreshes it only through the widget's callback,
// which it wraps; a bare `widget.value = x` changes the graph and the API prompt but leaves the DOM node showing the old
// value. LiteGraph's widget.setValue (every tested frontend; what a click on the classic canvas calls) assigns the
// value, calls the callback, then node.onWidgetChanged and bumps the graph's version. The rest is its fallback.
export function setWidgetValue(app, node, widget, value) {
  if (typeof widget.setValue === "function" && app.canvas) {
    widget.setValue(value, { e: undefined, node, canvas: app.canvas });
    return;
  }
  const old = widget.value;
  widget.value = value;
  widget.callback?.(widget.value, app.canvas, node);
  node.onWidgetChanged?.(widget.name ?? "", widget.value, old, widget);
  if (node.graph) node.graph._version++;
}

// One undo step around a change: the change tracker records nothing between the canvas's before-change and
// after-change (every tested frontend); without them, the tracker is asked to record the state once, at the end.
export function beginChange(app) {
  app.canvas?.emitBeforeChange?.();
}

export function endChange(app, graph) {
  const canvas = app.canvas;
  canvas?.emitAfterChange?.();
  if (!canvas?.emitAfterChange) app.extensionManager?.workflow?.activeWorkflow?.changeTracker?.checkState?.();
  graph.setDirtyCanvas?.(true, true);
}

// A read-only text widget that both renderers draw: the core MARKDOWN widget where the frontend exposes it
// (window.comfyAPI, every tested frontend), else LiteGraph's text widget.
export function readOnlyTextWidget(app, node, name, text) {
  const markdown = window.comfyAPI?.widgets?.ComfyWidgets?.MARKDOWN;
  if (markdown) {
    const { widget } = markdown(node, name, ["MARKDOWN", {}], app);
    widget.options.read_only = true;
    if (widget.element) widget.element.readOnly = widget.element.disabled = true;
    widget.serialize = widget.options.serialize = false; // never saved with the workflow, never sent to the server
    return widget;
  }
  return node.addWidget("text", name, text, () => {}, { serialize: false, read_only: true });
}

// "Nodes 2.0" (1.32.9 on: useGraphNodeManager) reads a node's widget list when the node is added to the graph; it
// follows later pushes only until the first widget callback fires on the node (a loaded API workflow's values, any edit
// in the UI), which replaces that list with a fixed copy. A widget added or removed after that never reaches the DOM
// node, and a widget added after the node was shown has no wrapped callback. Announcing the node again (the graph's
// onNodeAdded hook, which the renderer wraps) rebuilds its view of the node. Only for the graph on screen; the classic
// canvas needs none of it.
export function widgetsChanged(app, node) {
  const graph = node.graph;
  if (!LiteGraph.vueNodesMode || !graph || graph !== app.canvas?.graph) return;
  graph.onNodeAdded?.(node);
}

// Canvas right-click menu entries: the extension's getCanvasMenuItems hook from 1.28 (1.32.9, 1.48.7, 1.58.1); before
// (1.25.10, ComfyUI 0.3.52) the entries are appended by wrapping LGraphCanvas.getCanvasMenuOptions.
export function addLegacyCanvasMenuItems(app, items) {
  if (typeof app.collectCanvasMenuItems === "function") return;
  const original = LGraphCanvas.prototype.getCanvasMenuOptions;
  LGraphCanvas.prototype.getCanvasMenuOptions = function (...args) {
    const options = original.apply(this, args);
    options.push(null, ...items());
    return options;
  };
}
