import { describe, expect, it } from "vitest";
import {
  fromCanvas,
  graphSignature,
  structureSignature,
  nextEdgeId,
  nextNodeId,
  nodeFromPalette,
  normalizeGraph,
  toCanvasEdges,
  toCanvasNodes,
  type CanvasNode,
} from "./graph";
import type { FlowGraph, PaletteItem } from "./types";

function sampleGraph(): FlowGraph {
  return {
    nodes: [
      {
        id: "start",
        type: "event_trigger",
        position: { x: 0, y: 120 },
        data: { label: "Signup", category: "trigger", branches: [], is_trigger: true },
      },
      {
        id: "check",
        type: "if_condition",
        position: { x: 260.4, y: 119.6 },
        data: { label: "Opened?", category: "logic", branches: ["true", "false"], outputs: "branches" },
      },
    ],
    edges: [{ id: "e1", source: "start", target: "check", sourceHandle: null }],
    selected: "check",
  };
}

describe("normalizeGraph", () => {
  it("fills missing parts and rounds positions", () => {
    const graph = normalizeGraph({ nodes: sampleGraph().nodes } as FlowGraph);
    expect(graph.edges).toEqual([]);
    expect(graph.selected).toBeNull();
    expect(graph.nodes[1].position).toEqual({ x: 260, y: 120 });
  });

  it("drops a selection that names no node", () => {
    expect(normalizeGraph({ ...sampleGraph(), selected: "ghost" }).selected).toBeNull();
  });

  it("turns a missing sourceHandle into null", () => {
    const raw = { ...sampleGraph(), edges: [{ id: "e", source: "start", target: "check" }] } as unknown as FlowGraph;
    expect(normalizeGraph(raw).edges[0].sourceHandle).toBeNull();
  });

  it("treats null as an empty graph", () => {
    expect(normalizeGraph(null)).toEqual({ nodes: [], edges: [], selected: null });
  });
});

describe("round trip through React Flow nodes", () => {
  it("gives Python back the same graph", () => {
    const graph = normalizeGraph(sampleGraph());
    const back = fromCanvas(toCanvasNodes(graph, false), toCanvasEdges(graph));
    expect(back).toEqual(graph);
  });

  it("ignores React Flow internals and sub-pixel moves", () => {
    const graph = normalizeGraph(sampleGraph());
    const before = graphSignature(graph);
    const nodes: CanvasNode[] = toCanvasNodes(graph, false).map((node) => ({
      ...node,
      position: { x: node.position.x + 0.3, y: node.position.y - 0.2 },
      measured: { width: 210, height: 64 },
      width: 210,
      dragging: false,
    }));
    expect(graphSignature(fromCanvas(nodes, toCanvasEdges(graph)))).toBe(before);
  });

  it("notices a real move, a selection change and a new edge", () => {
    const graph = normalizeGraph(sampleGraph());
    const before = graphSignature(graph);
    const nodes = toCanvasNodes(graph, false);
    const moved = nodes.map((node) => (node.id === "start" ? { ...node, position: { x: 40, y: 120 } } : node));
    expect(graphSignature(fromCanvas(moved, toCanvasEdges(graph)))).not.toBe(before);
    const reselected = nodes.map((node) => ({ ...node, selected: node.id === "start" }));
    expect(fromCanvas(reselected, toCanvasEdges(graph)).selected).toBe("start");
    const edges = [...toCanvasEdges(graph), { id: "e2", source: "check", target: "start", sourceHandle: "true" }];
    expect(fromCanvas(nodes, edges).edges[1].sourceHandle).toBe("true");
  });

  it("keeps measurements of nodes React Flow already knows", () => {
    const graph = normalizeGraph(sampleGraph());
    const previous = toCanvasNodes(graph, false).map((node) => ({ ...node, measured: { width: 1, height: 2 } }));
    const again = toCanvasNodes(graph, false, previous);
    expect(again[0].measured).toEqual({ width: 1, height: 2 });
    expect(again[1].selected).toBe(true);
  });

  it("makes nodes undeletable when read-only", () => {
    const graph = normalizeGraph(sampleGraph());
    expect(toCanvasNodes(graph, true).every((node) => node.deletable === false)).toBe(true);
  });
});

describe("graphSignature", () => {
  it("does not depend on key order", () => {
    const a = { nodes: [], edges: [], selected: null };
    const b = { selected: null, edges: [], nodes: [] };
    expect(graphSignature(a)).toBe(graphSignature(b));
  });

  it("changes when node data changes", () => {
    const graph = sampleGraph();
    const edited = structuredClone(graph);
    edited.nodes[1].data.branches = ["true", "false", "maybe"];
    expect(graphSignature(edited)).not.toBe(graphSignature(graph));
  });
});

describe("structureSignature", () => {
  it("ignores moves but not edges, steps or the selection", () => {
    const graph = normalizeGraph(sampleGraph());
    const before = structureSignature(graph);
    const moved = { ...graph, nodes: graph.nodes.map((node) => ({ ...node, position: { x: 9, y: 9 } })) };
    expect(structureSignature(moved)).toBe(before);
    expect(structureSignature({ ...graph, edges: [] })).not.toBe(before);
    expect(structureSignature({ ...graph, nodes: graph.nodes.slice(1) })).not.toBe(before);
    expect(structureSignature({ ...graph, selected: "start" })).not.toBe(before);
  });
});

describe("ids", () => {
  it("derives node ids from the type and never reuses one", () => {
    expect(nextNodeId("email_send", ["welcome"])).toBe("email_send_1");
    expect(nextNodeId("email_send", ["email_send_1", "email_send_3"])).toBe("email_send_2");
    expect(nextNodeId("weird type!", [])).toBe("weird_type__1");
  });

  it("names edges after what they connect and keeps them unique", () => {
    expect(nextEdgeId("check", "true", "welcome", [])).toBe("check__true__welcome");
    expect(nextEdgeId("start", null, "check", ["start__out__check"])).toBe("start__out__check_2");
  });
});

describe("nodeFromPalette", () => {
  const ifItem: PaletteItem = {
    type: "if_condition",
    category: "logic",
    label: "If / else",
    icon: "branch",
    color: "#d97706",
    help: "Branch on a condition",
    branches: ["true", "false"],
    outputs: "branches",
  };

  it("copies the palette defaults", () => {
    const node = nodeFromPalette(ifItem, "if_condition_1", { x: 10.6, y: 20.2 });
    expect(node).toMatchObject({ id: "if_condition_1", type: "if_condition", position: { x: 11, y: 20 } });
    expect(node.data).toMatchObject({ label: "If / else", color: "#d97706", branches: ["true", "false"] });
    expect(node.data.is_trigger).toBe(false);
  });

  it("does not share the branch list with the palette", () => {
    const node = nodeFromPalette(ifItem, "x", { x: 0, y: 0 });
    node.data.branches?.push("maybe");
    expect(ifItem.branches).toEqual(["true", "false"]);
  });

  it("marks trigger-category items as triggers", () => {
    const trigger = nodeFromPalette({ type: "manual_trigger", category: "trigger", label: "Manual" }, "m", { x: 0, y: 0 });
    expect(trigger.data.is_trigger).toBe(true);
  });
});

describe("edge labels", () => {
  it("draws Python's edge label and hands it back unchanged, so a label is never an edit", () => {
    const graph = normalizeGraph({
      nodes: sampleGraph().nodes,
      edges: [{ id: "e", source: "start", target: "check", sourceHandle: null, label: "523 contacts" }],
      selected: null,
    });
    const edges = toCanvasEdges(graph);
    expect(edges[0].label).toBe("523 contacts");
    const back = fromCanvas(toCanvasNodes(graph, true), edges);
    expect(graphSignature(back)).toBe(graphSignature(graph));
  });

  it("leaves unlabelled edges without a label", () => {
    const graph = normalizeGraph(sampleGraph());
    expect(toCanvasEdges(graph).every((edge) => edge.label === undefined)).toBe(true);
  });
});
