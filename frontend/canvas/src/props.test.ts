import { describe, expect, it } from "vitest";
import { DEFAULT_HEIGHT, readProps } from "./props";

describe("readProps", () => {
  it("fills defaults for missing options", () => {
    const props = readProps(undefined);
    expect(props.graph).toEqual({ nodes: [], edges: [], selected: null });
    expect(props.palette).toEqual([]);
    expect(props.read_only).toBe(false);
    expect(props.height).toBe(DEFAULT_HEIGHT);
    expect(props.fit_view).toBe(true);
    expect(props.view_key).toBeNull();
    expect(props.minimap).toBe(true);
  });

  it("keeps valid options and drops malformed ones", () => {
    const props = readProps({ read_only: true, height: -3, fit_view: false, view_key: "v2" });
    expect(props.read_only).toBe(true);
    expect(props.height).toBe(DEFAULT_HEIGHT);
    expect(props.fit_view).toBe(false);
    expect(props.view_key).toBe("v2");
    expect(readProps({ view_key: 7 }).view_key).toBeNull();
    expect(props.minimap).toBe(false);
    expect(readProps({ read_only: true, minimap: true }).minimap).toBe(true);
  });
});
