import { describe, expect, it } from "vitest";
import { showMinimap, viewOptions } from "./view";

describe("viewOptions", () => {
  it("lets a read-only preview zoom out further and fit tighter than the editor", () => {
    const editing = viewOptions(false);
    const preview = viewOptions(true);
    expect(preview.fit.minZoom).toBeLessThan(editing.fit.minZoom);
    expect(preview.fit.minZoom).toBeLessThanOrEqual(0.05);
    expect(preview.fit.padding).toBeLessThan(editing.fit.padding);
    // React Flow clamps a fit to the canvas's own zoom range.
    for (const view of [editing, preview]) {
      expect(view.minZoom).toBeLessThanOrEqual(view.fit.minZoom);
      expect(view.maxZoom).toBeGreaterThanOrEqual(view.fit.maxZoom);
    }
  });
});

describe("showMinimap", () => {
  it("defaults to on while editing and off when read-only", () => {
    expect(showMinimap(undefined, false)).toBe(true);
    expect(showMinimap(null, true)).toBe(false);
  });

  it("follows an explicit choice", () => {
    expect(showMinimap(false, false)).toBe(false);
    expect(showMinimap(true, true)).toBe(true);
  });
});
