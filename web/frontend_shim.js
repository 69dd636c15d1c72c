// The few places where the ComfyUI frontends this pack is tested on differ for it (1.32.9 with ComfyUI 0.3.75,
// 1.48.7 with 0.33.0, 1.58.1), each found by what the frontend has, not by its version.

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
