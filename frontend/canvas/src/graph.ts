// Pure conversions between mawb's FlowGraph and React Flow's nodes/edges. React Flow adds
// internal fields (measured, dragging, width, ...) that must never reach Python, and positions
// are rounded so a sub-pixel jitter is not mistaken for an edit.
import type { Edge, Node } from "@xyflow/react";
import type { CanvasNodeData, FlowGraph, GraphEdge, GraphNode, NodeData, PaletteItem, XY } from "./types";

export const CANVAS_NODE_TYPE = "mawb";

export type CanvasNode = Node<CanvasNodeData, typeof CANVAS_NODE_TYPE>;

export function emptyGraph(): FlowGraph {
  return { nodes: [], edges: [], selected: null };
}

/** Accept whatever Python sent and fill the optional parts, so the rest of the code can trust it. */
export function normalizeGraph(raw: Partial<FlowGraph> | null | undefined): FlowGraph {
  if (!raw) return emptyGraph();
  const nodes = (raw.nodes ?? []).map((node) => ({
    id: String(node.id),
    type: String(node.type),
    position: roundPosition(node.position ?? { x: 0, y: 0 }),
    data: node.data ?? ({ label: String(node.id), category: "action" } as NodeData),
  }));
  const edges = (raw.edges ?? []).map((edge) => ({
    id: String(edge.id),
    source: String(edge.source),
    target: String(edge.target),
    sourceHandle: edge.sourceHandle ?? null,
    ...(edge.label ? { label: String(edge.label) } : {}),
  }));
  const known = new Set(nodes.map((node) => node.id));
  const selected = raw.selected != null && known.has(raw.selected) ? raw.selected : null;
  return { nodes, edges, selected };
}

export function roundPosition(position: XY): XY {
  return { x: Math.round(position.x), y: Math.round(position.y) };
}

export function toCanvasNodes(graph: FlowGraph, readOnly: boolean, previous: CanvasNode[] = []): CanvasNode[] {
  // Keep React Flow's measurements of nodes it already knows, so re-applying a graph from
  // Python does not make every node flash through an unmeasured state.
  const measured = new Map(previous.map((node) => [node.id, node.measured]));
  return graph.nodes.map((node) => ({
    id: node.id,
    type: CANVAS_NODE_TYPE,
    position: { ...node.position },
    data: { nodeType: node.type, payload: node.data },
    selected: node.id === graph.selected,
    deletable: !readOnly,
    ...(measured.get(node.id) ? { measured: measured.get(node.id) } : {}),
  }));
}

export function toCanvasNode(node: GraphNode, readOnly: boolean): CanvasNode {
  return toCanvasNodes({ nodes: [node], edges: [], selected: null }, readOnly)[0];
}

export function toCanvasEdges(graph: FlowGraph): Edge[] {
  return graph.edges.map((edge) => ({
    id: edge.id,
    source: edge.source,
    target: edge.target,
    sourceHandle: edge.sourceHandle,
    ...(edge.label ? { label: edge.label, className: "mawb-edge-counted", labelBgPadding: [4, 2] as [number, number] } : {}),
  }));
}

/** The graph Python should see for the current canvas, free of React Flow internals. */
export function fromCanvas(nodes: CanvasNode[], edges: Edge[]): FlowGraph {
  const graphNodes: GraphNode[] = nodes.map((node) => ({
    id: node.id,
    type: node.data.nodeType,
    position: roundPosition(node.position),
    data: node.data.payload,
  }));
  const graphEdges: GraphEdge[] = edges.map((edge) => ({
    id: edge.id,
    source: edge.source,
    target: edge.target,
    sourceHandle: edge.sourceHandle ?? null,
    ...(typeof edge.label === "string" && edge.label ? { label: edge.label } : {}),
  }));
  const selectedNode = nodes.find((node) => node.selected);
  return { nodes: graphNodes, edges: graphEdges, selected: selectedNode ? selectedNode.id : null };
}

/** A canonical string for a graph: equal strings mean the graphs are equal for Python. */
export function graphSignature(graph: FlowGraph): string {
  return stableStringify(graph);
}

/** The signature of what the graph is, positions left out (moving a node changes nothing). */
export function structureSignature(graph: FlowGraph): string {
  return stableStringify({ ...graph, nodes: graph.nodes.map(({ position: _, ...node }) => node) });
}

function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${stableStringify(item)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** A fresh node id derived from the type: `email_send_1`, `email_send_2`, ... */
export function nextNodeId(type: string, existingIds: Iterable<string>): string {
  const taken = new Set(existingIds);
  const base = type.replace(/[^A-Za-z0-9_]+/g, "_") || "node";
  for (let index = 1; ; index += 1) {
    const candidate = `${base}_${index}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** A fresh edge id that says what it connects, e.g. `check__true__welcome`. */
export function nextEdgeId(
  source: string,
  sourceHandle: string | null | undefined,
  target: string,
  existingIds: Iterable<string>,
): string {
  const taken = new Set(existingIds);
  const base = `${source}__${sourceHandle ?? "out"}__${target}`;
  if (!taken.has(base)) return base;
  for (let index = 2; ; index += 1) {
    const candidate = `${base}_${index}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** The node a palette drop creates: default data from the palette item. */
export function nodeFromPalette(item: PaletteItem, id: string, position: XY): GraphNode {
  const data: NodeData = {
    label: item.label,
    category: item.category,
    color: item.color ?? null,
    icon: item.icon ?? null,
    summary: "",
    branches: [...(item.branches ?? [])],
    outputs: item.outputs ?? "single",
    is_trigger: item.is_trigger ?? item.category === "trigger",
    error: null,
    counts: null,
    params: { ...(item.params ?? {}) },
  };
  return { id, type: item.type, position: roundPosition(position), data };
}
