// The editable flow canvas. Local React Flow state is the source of truth while the user edits;
// Python's graph replaces it only when Python really changed it (see sync.ts), and edits go
// back to Python debounced, never mid-drag, and only when the graph changed.
import {
  addEdge,
  applyEdgeChanges,
  applyNodeChanges,
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  useStore,
  type Connection,
  type Edge,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent, type ReactElement } from "react";
import { FlowNode } from "./FlowNode";
import {
  CANVAS_NODE_TYPE,
  fromCanvas,
  graphSignature,
  nextEdgeId,
  nextNodeId,
  nodeFromPalette,
  normalizeGraph,
  structureSignature,
  toCanvasEdges,
  toCanvasNode,
  toCanvasNodes,
  type CanvasNode,
} from "./graph";
import { withOptimisticErrors } from "./optimistic";
import { Palette } from "./Palette";
import { DRAG_MIME, findPaletteItem } from "./palette";
import { Debouncer, decideSync, shouldApplyIncoming, shouldRefit, syncDelay } from "./sync";
import type { CanvasProps, FlowGraph } from "./types";
import { viewOptions, type FitOptions } from "./view";

const NODE_TYPES = { [CANVAS_NODE_TYPE]: FlowNode };
const DELETE_KEYS = ["Delete", "Backspace"];
/** Small enough to leave the corner of a drawer-width canvas to the flow it overviews. */
const MINIMAP_SIZE = { width: 120, height: 80 };
/** Where a dropped node's top-left corner lands relative to the cursor (about its centre). */
const DROP_OFFSET = { x: 100, y: 28 };

export interface CanvasAppProps extends CanvasProps {
  sendGraph: (graph: FlowGraph) => void;
}

export function CanvasApp(props: CanvasAppProps): ReactElement {
  return (
    <ReactFlowProvider>
      <FlowCanvas {...props} />
    </ReactFlowProvider>
  );
}

function FlowCanvas({
  graph,
  palette,
  read_only,
  height,
  fit_view,
  view_key,
  minimap,
  sendGraph,
}: CanvasAppProps): ReactElement {
  const incoming = useMemo(() => normalizeGraph(graph), [graph]);
  const incomingSignature = useMemo(() => graphSignature(incoming), [incoming]);
  const answered = useMemo(() => structureSignature({ ...incoming, selected: null }), [incoming]);
  const [nodes, setNodes] = useState<CanvasNode[]>(() => toCanvasNodes(incoming, read_only));
  const [edges, setEdges] = useState<Edge[]>(() => toCanvasEdges(incoming));
  const baseline = useRef(incomingSignature);
  const baselineStructure = useRef(structureSignature(incoming));
  const known = useMemo(() => ({ signature: baseline, structure: baselineStructure }), []);
  const lastIncoming = useRef<string | null>(incomingSignature);
  const send = useRef(sendGraph);
  send.current = sendGraph;

  useEffect(() => {
    const apply = shouldApplyIncoming(incomingSignature, lastIncoming.current, baseline.current);
    lastIncoming.current = incomingSignature;
    if (!apply) return;
    baseline.current = incomingSignature;
    baselineStructure.current = structureSignature(incoming);
    setNodes((previous) => toCanvasNodes(incoming, read_only, previous));
    setEdges(toCanvasEdges(incoming));
  }, [incoming, incomingSignature, read_only]);

  const [pressed, press] = usePressed();
  useGraphSync(nodes, edges, known, send, pressed);
  const shownNodes = useOptimisticNodes(nodes, edges, answered);
  const view = viewOptions(read_only);
  const onMoveStart = useFitUntilTouched(view_key, fit_view, view.fit);

  const onNodesChange = useCallback(
    (changes: NodeChange<CanvasNode>[]) => setNodes((current) => applyNodeChanges(changes, current)),
    [],
  );
  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => setEdges((current) => applyEdgeChanges(changes, current)),
    [],
  );
  const onConnect = useCallback(
    (connection: Connection) =>
      setEdges((current) => {
        const id = nextEdgeId(
          connection.source,
          connection.sourceHandle,
          connection.target,
          current.map((edge) => edge.id),
        );
        return addEdge({ ...connection, id }, current);
      }),
    [],
  );
  const { onDragOver, onDrop } = usePaletteDrop(palette, read_only, setNodes);

  return (
    <div className={read_only ? "mawb-canvas is-read-only" : "mawb-canvas"} style={{ height: `${height}px` }}>
      {read_only ? null : <Palette items={palette} />}
      <div className="mawb-flow" onDragOver={onDragOver} onDrop={onDrop} onPointerDownCapture={press}>
        <ReactFlow<CanvasNode, Edge>
          nodes={shownNodes}
          edges={edges}
          nodeTypes={NODE_TYPES}
          onNodesChange={onNodesChange}
          onEdgesChange={onEdgesChange}
          onConnect={onConnect}
          fitView={fit_view}
          fitViewOptions={view.fit}
          onMoveStart={onMoveStart}
          nodesDraggable={!read_only}
          nodesConnectable={!read_only}
          edgesReconnectable={false}
          elementsSelectable
          deleteKeyCode={read_only ? null : DELETE_KEYS}
          minZoom={view.minZoom}
          maxZoom={view.maxZoom}
        >
          <Background gap={16} />
          {minimap ? (
            <MiniMap pannable zoomable nodeColor={miniMapColor} style={MINIMAP_SIZE} />
          ) : null}
          <Controls showInteractive={!read_only} />
        </ReactFlow>
      </div>
    </div>
  );
}

/**
 * The nodes as drawn: while the canvas differs from the graph Python last sent (an edit on its
 * way; a selection alone changes no error), their reachability errors are redrawn locally (`optimistic.ts`); what is sent to Python
 * is never touched.
 */
function useOptimisticNodes(nodes: CanvasNode[], edges: Edge[], answered: string): CanvasNode[] {
  return useMemo(() => {
    const current = fromCanvas(nodes, edges);
    const unchanged = structureSignature({ ...current, selected: null }) === answered;
    return unchanged ? nodes : withOptimisticErrors(nodes, current);
  }, [nodes, edges, answered]);
}

function miniMapColor(node: CanvasNode): string {
  if (node.data.payload.error) return "#dc2626";
  return node.data.payload.color || "#64748b";
}

/**
 * Keep the whole graph in view until the user moves the view: fit again when Python asks (its
 * view key changed, e.g. after an auto layout Streamlit delivered to this same canvas) and when
 * the canvas changes size before the user panned or zoomed (a canvas mounted while its column
 * was still being laid out would otherwise stay fitted to that transient size). React Flow
 * queues a fit requested before the nodes are measured. Returns the `onMoveStart` handler that
 * notices the user taking over.
 */
function useFitUntilTouched(viewKey: string | null, fitOnMount: boolean, options: FitOptions) {
  const { fitView } = useReactFlow();
  const width = useStore((state) => state.width);
  const height = useStore((state) => state.height);
  const untouched = useRef(fitOnMount);
  const lastKey = useRef<string | null>(viewKey);
  useEffect(() => {
    if (!shouldRefit(viewKey, lastKey.current)) return;
    lastKey.current = viewKey;
    untouched.current = true;
    void fitView(options);
  }, [viewKey, fitView, options]);
  useEffect(() => {
    if (untouched.current && width > 0 && height > 0) void fitView(options);
  }, [width, height, fitView, options]);
  // A move without an event is one React Flow made itself (fitting); only the user's count.
  return useCallback((event: MouseEvent | TouchEvent | null) => {
    if (event) untouched.current = false;
  }, []);
}

/** What Python last knew about: the graph's signature and its structure's (positions left out). */
interface Baseline {
  signature: { current: string };
  structure: { current: string };
}

/**
 * Send the canvas graph to Python, never mid-drag, only when it changed: a structural change
 * almost at once, a move after a pause (`syncDelay`).
 */
function useGraphSync(
  nodes: CanvasNode[],
  edges: Edge[],
  baseline: Baseline,
  send: { current: (graph: FlowGraph) => void },
  pressed: boolean,
): void {
  const current = useMemo(() => fromCanvas(nodes, edges), [nodes, edges]);
  const signature = useMemo(() => graphSignature(current), [current]);
  const dragging = pressed || nodes.some((node) => node.dragging);
  const debouncer = useRef<Debouncer | null>(null);
  debouncer.current ??= new Debouncer();

  useEffect(() => {
    const timer = debouncer.current as Debouncer;
    const decision = decideSync({ current: signature, baseline: baseline.signature.current, dragging });
    if (decision !== "schedule") {
      timer.cancel();
      return;
    }
    const structure = structureSignature(current);
    timer.run(() => {
      baseline.signature.current = signature;
      baseline.structure.current = structure;
      send.current(current);
    }, syncDelay(structure, baseline.structure.current));
  }, [current, signature, dragging, baseline, send]);

  useEffect(() => () => debouncer.current?.cancel(), []);
}

/**
 * Whether a pointer pressed on the canvas is still down: a gesture in progress (the selection
 * a press makes is sent when the press ends, not in the middle of the drag it may start).
 */
function usePressed(): [boolean, () => void] {
  const [pressed, setPressed] = useState(false);
  useEffect(() => {
    if (!pressed) return;
    const release = () => setPressed(false);
    const events = ["pointerup", "pointercancel", "dragend"] as const;
    events.forEach((name) => window.addEventListener(name, release, true));
    return () => events.forEach((name) => window.removeEventListener(name, release, true));
  }, [pressed]);
  return [pressed, useCallback(() => setPressed(true), [])];
}

/** Accept palette items dropped on the canvas and create a node where they land. */
function usePaletteDrop(
  palette: CanvasProps["palette"],
  readOnly: boolean,
  setNodes: (update: (current: CanvasNode[]) => CanvasNode[]) => void,
) {
  const { screenToFlowPosition } = useReactFlow();
  const onDragOver = useCallback(
    (event: DragEvent<HTMLDivElement>) => {
      if (readOnly || !event.dataTransfer.types.includes(DRAG_MIME)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
    },
    [readOnly],
  );
  const onDrop = useCallback(
    (event: DragEvent<HTMLDivElement>) => {
      if (readOnly) return;
      const item = findPaletteItem(palette, event.dataTransfer.getData(DRAG_MIME));
      if (!item) return;
      event.preventDefault();
      const point = screenToFlowPosition({ x: event.clientX, y: event.clientY });
      const position = { x: point.x - DROP_OFFSET.x, y: point.y - DROP_OFFSET.y };
      setNodes((current) => {
        const id = nextNodeId(item.type, current.map((node) => node.id));
        const created = { ...toCanvasNode(nodeFromPalette(item, id, position), false), selected: true };
        return [...current.map((node) => (node.selected ? { ...node, selected: false } : node)), created];
      });
    },
    [palette, readOnly, screenToFlowPosition],
  );
  return { onDragOver, onDrop };
}
