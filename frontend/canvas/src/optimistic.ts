// Until Python answers an edit (a rerun away), the canvas redraws the one error it can work out
// alone: "no trigger leads here", the same rule as Python's validation (nodes no trigger
// reaches, when the flow has a trigger). A dropped step is outlined at once, a connected one
// cleared at once; every other error stays as Python last drew it, and Python's answer
// replaces all of it.
import type { CanvasNode } from "./graph";
import type { FlowGraph, NodeData } from "./types";

export const UNREACHABLE_MESSAGE = "no trigger leads here; connect it or delete it";

/** Ids of the nodes no trigger leads to (none when the graph has no trigger at all). */
export function unreachableIds(graph: FlowGraph): Set<string> {
  const triggers = graph.nodes.filter((node) => node.data.is_trigger === true).map((node) => node.id);
  if (triggers.length === 0) return new Set();
  const next = new Map<string, string[]>();
  for (const edge of graph.edges) {
    next.set(edge.source, [...(next.get(edge.source) ?? []), edge.target]);
  }
  const reached = new Set(triggers);
  const queue = [...triggers];
  while (queue.length > 0) {
    for (const target of next.get(queue.pop() as string) ?? []) {
      if (!reached.has(target)) {
        reached.add(target);
        queue.push(target);
      }
    }
  }
  return new Set(graph.nodes.filter((node) => !reached.has(node.id)).map((node) => node.id));
}

/** The error to show for a node: Python's other errors plus the locally known reachability. */
export function optimisticError(data: NodeData, unreachable: boolean): string | null {
  const others = Array.isArray(data.other_errors)
    ? data.other_errors.filter((message): message is string => typeof message === "string")
    : null;
  if (others === null) return data.error ?? null; // Python did not say which error is which
  return [...others, ...(unreachable ? [UNREACHABLE_MESSAGE] : [])].join("; ") || null;
}

/** `nodes` with their errors redrawn for `graph` (the canvas as it is now); unchanged nodes
 * are the same objects, so React Flow re-renders only the ones whose outline changed. */
export function withOptimisticErrors(nodes: CanvasNode[], graph: FlowGraph): CanvasNode[] {
  const unreachable = unreachableIds(graph);
  return nodes.map((node) => {
    const error = optimisticError(node.data.payload, unreachable.has(node.id));
    if ((node.data.payload.error ?? null) === error) return node;
    return { ...node, data: { ...node.data, payload: { ...node.data.payload, error } } };
  });
}
