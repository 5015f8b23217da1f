// Which connection points a node shows. A node with branches gets one labelled output per
// branch (the handle id is the branch name, which becomes the edge's sourceHandle); a node
// without branches gets one unlabelled output whose id is null. Triggers take no input.
import type { NodeData } from "./types";

export interface OutputHandle {
  id: string | null;
  label: string | null;
  /** Vertical position as a percentage of the node height. */
  topPercent: number;
}

export interface HandleLayout {
  hasInput: boolean;
  outputs: OutputHandle[];
}

export function handleLayout(data: NodeData): HandleLayout {
  const branches = uniqueBranches(data.branches);
  const outputs: OutputHandle[] =
    branches.length === 0
      ? [{ id: null, label: null, topPercent: 50 }]
      : branches.map((branch, index) => ({
          id: branch,
          label: branch,
          topPercent: Math.round(((index + 1) * 100) / (branches.length + 1)),
        }));
  return { hasInput: !data.is_trigger, outputs };
}

/** A key that changes exactly when the node's set of handles changes. */
export function handleKey(data: NodeData): string {
  const layout = handleLayout(data);
  const outputs = layout.outputs.map((handle) => handle.id ?? "\u0000").join("\u0001");
  return `${layout.hasInput ? "in" : "no-in"}|${outputs}`;
}

function uniqueBranches(branches: string[] | null | undefined): string[] {
  const seen = new Set<string>();
  const result: string[] = [];
  for (const branch of branches ?? []) {
    const name = String(branch);
    if (name && !seen.has(name)) {
      seen.add(name);
      result.push(name);
    }
  }
  return result;
}
