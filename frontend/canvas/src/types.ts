// The JSON contract shared with mawb/ui/canvas.py. Python sends a FlowGraph (plus a palette
// and display options) and receives the edited FlowGraph back in the same shape.

export type OutputsKind = "single" | "branches" | "fanout";

export interface NodeCounts {
  entered?: number | null;
  contacts?: number | null;
  waiting?: number | null;
  completed?: number | null;
  failed?: number | null;
  converted?: number | null;
}

export interface NodeData {
  label: string;
  category: string;
  color?: string | null;
  icon?: string | null;
  summary?: string | null;
  branches?: string[] | null;
  outputs?: OutputsKind | null;
  is_trigger?: boolean | null;
  error?: string | null;
  counts?: NodeCounts | null;
  params?: Record<string, unknown> | null;
  [extra: string]: unknown;
}

export interface XY {
  x: number;
  y: number;
}

export interface GraphNode {
  id: string;
  type: string;
  position: XY;
  data: NodeData;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  sourceHandle: string | null;
  /** Text drawn on the edge (the monitor's contacts that took it); kept as Python sent it. */
  label?: string | null;
}

export interface FlowGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  selected: string | null;
}

export interface PaletteItem {
  type: string;
  category: string;
  label: string;
  icon?: string | null;
  color?: string | null;
  help?: string | null;
  branches?: string[] | null;
  outputs?: OutputsKind | null;
  is_trigger?: boolean | null;
  params?: Record<string, unknown> | null;
}

/** Everything `flow_canvas` passes as the component's `data`. */
export interface CanvasProps {
  graph: FlowGraph;
  palette: PaletteItem[];
  read_only: boolean;
  height: number;
  fit_view: boolean;
  /** Python changes this to ask for a fit to view (e.g. after an auto layout); null: never. */
  view_key: string | null;
  /** Whether the minimap shows; Python may omit it (on while editing, off when read-only). */
  minimap: boolean;
}

/** What a rendered React Flow node carries: the mawb node type and its untouched data. */
export interface CanvasNodeData {
  nodeType: string;
  payload: NodeData;
  [key: string]: unknown;
}
