// How the canvas frames the flow. An editing canvas keeps room around the flow and a minimap to
// navigate; a read-only preview (gallery, monitor) must show the whole flow at once, so it may
// zoom out much further, fits tightly and leaves the minimap out unless Python asks for it.

export interface FitOptions {
  padding: number;
  minZoom: number;
  maxZoom: number;
}

export interface ViewOptions {
  fit: FitOptions;
  minZoom: number;
  maxZoom: number;
}

const MAX_ZOOM = 2;
const EDITING: ViewOptions = { fit: { padding: 0.2, minZoom: 0.2, maxZoom: 1.2 }, minZoom: 0.2, maxZoom: MAX_ZOOM };
const READ_ONLY: ViewOptions = { fit: { padding: 0.04, minZoom: 0.05, maxZoom: 1.2 }, minZoom: 0.05, maxZoom: MAX_ZOOM };

export function viewOptions(readOnly: boolean): ViewOptions {
  return readOnly ? READ_ONLY : EDITING;
}

/** Python's explicit `minimap` choice, else on while editing and off for read-only previews. */
export function showMinimap(minimap: unknown, readOnly: boolean): boolean {
  return typeof minimap === "boolean" ? minimap : !readOnly;
}
