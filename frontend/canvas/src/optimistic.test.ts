import { describe, expect, it } from "vitest";
import { normalizeGraph, toCanvasNodes } from "./graph";
import { optimisticError, UNREACHABLE_MESSAGE, unreachableIds, withOptimisticErrors } from "./optimistic";
import type { FlowGraph, GraphNode } from "./types";

function step(id: string, trigger = false, extra: Record<string, unknown> = {}): GraphNode {
  return { id, type: trigger ? "manual_trigger" : "delay_action", position: { x: 0, y: 0 },
    data: { label: id, category: trigger ? "trigger" : "action", is_trigger: trigger, other_errors: [], ...extra } };
}

function graph(nodes: GraphNode[], pairs: [string, string][]): FlowGraph {
  return normalizeGraph({
    nodes,
    edges: pairs.map(([source, target]) => ({ id: `${source}-${target}`, source, target, sourceHandle: null })),
    selected: null,
  });
}

describe("unreachableIds", () => {
  it("follows edges from every trigger, loops included", () => {
    const g = graph([step("start", true), step("a"), step("b"), step("loose"), step("c")],
      [["start", "a"], ["a", "b"], ["b", "a"], ["loose", "c"]]);
    expect([...unreachableIds(g)].sort()).toEqual(["c", "loose"]);
  });

  it("flags nothing while the flow has no trigger (Python reports the missing trigger)", () => {
    expect(unreachableIds(graph([step("a"), step("b")], [])).size).toBe(0);
  });
});

describe("optimisticError", () => {
  it("keeps Python's other errors and adds or drops the reachability one", () => {
    const data = { label: "x", category: "action", other_errors: ["days: should be at least 1"] };
    expect(optimisticError(data, true)).toBe(`days: should be at least 1; ${UNREACHABLE_MESSAGE}`);
    expect(optimisticError(data, false)).toBe("days: should be at least 1");
    expect(optimisticError({ label: "x", category: "action", other_errors: [] }, false)).toBeNull();
  });

  it("leaves Python's error alone when it did not say which is which", () => {
    expect(optimisticError({ label: "x", category: "action", error: "bad" }, false)).toBe("bad");
  });
});

describe("withOptimisticErrors", () => {
  it("outlines a dropped step at once and clears it once connected, keeping other nodes", () => {
    const dropped = graph([step("start", true), step("new")], []);
    const nodes = toCanvasNodes(dropped, false);
    const shown = withOptimisticErrors(nodes, dropped);
    expect(shown[0]).toBe(nodes[0]);
    expect(shown[1].data.payload.error).toBe(UNREACHABLE_MESSAGE);
    const connected = graph([step("start", true), step("new", false, { error: UNREACHABLE_MESSAGE })],
      [["start", "new"]]);
    expect(withOptimisticErrors(toCanvasNodes(connected, false), connected)[1].data.payload.error).toBeNull();
  });
});
