import { describe, expect, it } from "vitest";
import { categoryTitle, findPaletteItem, groupPalette } from "./palette";
import { readProps, DEFAULT_HEIGHT } from "./props";
import type { PaletteItem } from "./types";

const items: PaletteItem[] = [
  { type: "crm_update", category: "integration", label: "Update CRM" },
  { type: "if_condition", category: "logic", label: "If / else", branches: ["true", "false"] },
  { type: "email_send", category: "action", label: "Send email" },
  { type: "event_trigger", category: "trigger", label: "Event" },
  { type: "custom_thing", category: "custom", label: "Custom" },
  { type: "sms_send", category: "action", label: "Send SMS" },
];

describe("groupPalette", () => {
  it("orders categories like a flow and keeps item order inside a group", () => {
    const groups = groupPalette(items);
    expect(groups.map((group) => group.category)).toEqual(["trigger", "action", "logic", "integration", "custom"]);
    expect(groups[1].items.map((item) => item.type)).toEqual(["email_send", "sms_send"]);
  });
});

describe("categoryTitle", () => {
  it("names known categories and capitalises others", () => {
    expect(categoryTitle("trigger")).toBe("Triggers");
    expect(categoryTitle("logic")).toBe("Logic");
    expect(categoryTitle("data_sources")).toBe("Data sources");
  });
});

describe("findPaletteItem", () => {
  it("finds by type and returns undefined for unknown types", () => {
    expect(findPaletteItem(items, "sms_send")?.label).toBe("Send SMS");
    expect(findPaletteItem(items, "nope")).toBeUndefined();
  });
});

describe("readProps", () => {
  it("falls back to defaults for missing options", () => {
    const props = readProps({ graph: { nodes: [], edges: [] } });
    expect(props).toMatchObject({ palette: [], read_only: false, height: DEFAULT_HEIGHT, fit_view: true });
  });

  it("keeps the options Python passed", () => {
    const props = readProps({ graph: null, palette: items, read_only: true, height: 300, fit_view: false });
    expect(props).toMatchObject({ read_only: true, height: 300, fit_view: false });
    expect(props.palette).toHaveLength(items.length);
  });
});
