// Defensive reading of the `data` Python passes, so a missing option falls back to a default
// instead of breaking the canvas.
import { normalizeGraph } from "./graph";
import type { CanvasProps, PaletteItem } from "./types";
import { showMinimap } from "./view";

export const DEFAULT_HEIGHT = 560;

export function readProps(data: unknown): CanvasProps {
  const raw = (data ?? {}) as Partial<Record<keyof CanvasProps, unknown>>;
  const height = typeof raw.height === "number" && raw.height > 0 ? raw.height : DEFAULT_HEIGHT;
  const readOnly = raw.read_only === true;
  return {
    graph: normalizeGraph(raw.graph as CanvasProps["graph"] | undefined),
    palette: Array.isArray(raw.palette) ? (raw.palette as PaletteItem[]) : [],
    read_only: readOnly,
    height,
    fit_view: raw.fit_view !== false,
    view_key: typeof raw.view_key === "string" ? raw.view_key : null,
    minimap: showMinimap(raw.minimap, readOnly),
  };
}
