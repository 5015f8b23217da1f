// Entry point Streamlit loads as an ES module. Streamlit calls the default export again on every
// data change, so each parentElement (a ShadowRoot) keeps one React root that is re-rendered;
// the cleanup runs only when Streamlit unmounts the component.
import "@xyflow/react/dist/style.css";
import "./canvas.css";
import type { FrontendRenderer, FrontendState } from "@streamlit/component-v2-lib";
import { createRoot, type Root } from "react-dom/client";
import { CanvasApp } from "./Canvas";
import { readProps } from "./props";
import type { FlowGraph } from "./types";

interface CanvasState extends FrontendState {
  graph: FlowGraph | null;
}

interface Mounted {
  root: Root;
  container: HTMLElement;
}

const mounted = new WeakMap<object, Mounted>();

function mount(parent: ShadowRoot | HTMLElement): Mounted {
  const existing = mounted.get(parent);
  if (existing) return existing;
  const container = document.createElement("div");
  container.className = "mawb-canvas-root";
  parent.appendChild(container);
  const created = { root: createRoot(container), container };
  mounted.set(parent, created);
  return created;
}

const renderCanvas: FrontendRenderer<CanvasState, unknown> = ({ data, parentElement, setStateValue }) => {
  const target = mount(parentElement);
  const props = readProps(data);
  target.root.render(<CanvasApp {...props} sendGraph={(graph) => setStateValue("graph", graph)} />);
  return () => {
    target.root.unmount();
    target.container.remove();
    mounted.delete(parentElement);
  };
};

export default renderCanvas;
