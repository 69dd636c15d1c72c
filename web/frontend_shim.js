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

// ------------------------------------------------------------------------------------------------ Live mode
// What web/instaflow_live.js needs from the frontend beyond app.registerExtension, settings, commands, toasts and
// api.queuePrompt / api.addEventListener. Found by what the page has, like the functions above.

// Whether the "Nodes 2.0" renderer (Vue nodes, setting Comfy.VueNodes.Enabled; 1.32.9, 1.48.7, 1.58.1) draws the nodes.
export const vueNodesShown = () => !!window.LiteGraph?.vueNodesMode;

// The node whose widget an edited page element is, or null (a settings field, the node search, a dialog). Classic
// canvas: a DOM widget's own element (`element` from 1.16, `inputEl` before; the prompt's textarea in 1.32.9, 1.48.7,
// 1.58.1). "Nodes 2.0": the widget sits inside the node's DOM element, which carries `data-node-id`.
export function nodeOfWidgetElement(app, element) {
  if (!(element instanceof Element)) return null;
  const graph = app.canvas?.graph ?? app.graph;
  const vueNode = element.closest?.("[data-node-id]");
  if (vueNode) return graph?.getNodeById?.(vueNode.getAttribute("data-node-id")) ?? null;
  for (const node of graphNodes(graph ?? { nodes: [] })) {
    if (node.widgets?.some((w) => w.element === element || w.inputEl === element)) return node;
  }
  return null;
}

// A widget's value as the page shows it. "Nodes 2.0" hands a textarea's text to the graph's widget on each input
// (1.48.7, 1.58.1) but an older renderer may only on blur; the element's text is what the user sees, so it is copied
// to the widget before the graph is read. Classic DOM widgets read their element already (widget.value is a getter).
export function syncWidgetFromElement(app, node, element) {
  if (!vueNodesShown() || !("value" in element)) return;
  const name = element.closest?.("[data-widget-name]")?.getAttribute("data-widget-name");
  const widget = node.widgets?.find((w) => w.name === name) ??
    (node.widgets?.filter((w) => typeof w.value === "string" && w.type !== "combo").length === 1
      ? node.widgets.find((w) => typeof w.value === "string" && w.type !== "combo") : null);
  if (widget && widget.value !== element.value) widget.value = element.value;
}

// Called after any recorded change of the open graph (a widget value, a link, a node added): the change tracker's
// "graphChanged" event on the api object (1.25.10, 1.32.9, 1.48.7, 1.58.1; not part of the documented events).
export function onGraphEdited(api, callback) {
  api.addEventListener("graphChanged", callback);
}

// The source of the output image a node shows now, once the page has it loaded; null for none. Classic canvas: the
// node's `imgs` (Image objects the canvas draws; 1.25.10 to 1.58.1). "Nodes 2.0": the <img> in the node's DOM element.
export function shownImageSource(app, node) {
  const loaded = (img) => img && img.complete && img.naturalWidth > 0;
  if (vueNodesShown()) {
    const imgs = [...document.querySelectorAll(`[data-node-id="${node.id}"] img`)].filter(loaded);
    return imgs.length ? imgs[imgs.length - 1].src : null;
  }
  const img = node.imgs?.[node.imageIndex ?? 0] ?? node.imgs?.[0];
  return loaded(img) ? img.src : null;
}
