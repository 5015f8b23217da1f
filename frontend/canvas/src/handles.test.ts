import { describe, expect, it } from "vitest";
import { handleKey, handleLayout } from "./handles";

describe("handleLayout", () => {
  it("gives a node without branches one unlabelled output", () => {
    const layout = handleLayout({ label: "Email", category: "action", branches: [] });
    expect(layout.hasInput).toBe(true);
    expect(layout.outputs).toEqual([{ id: null, label: null, topPercent: 50 }]);
  });

  it("gives one labelled output per branch, spread evenly", () => {
    const layout = handleLayout({ label: "If", category: "logic", branches: ["true", "false"] });
    expect(layout.outputs.map((handle) => handle.id)).toEqual(["true", "false"]);
    expect(layout.outputs.map((handle) => handle.label)).toEqual(["true", "false"]);
    expect(layout.outputs.map((handle) => handle.topPercent)).toEqual([33, 67]);
  });

  it("ignores duplicate and empty branch names", () => {
    const layout = handleLayout({ label: "S", category: "logic", branches: ["a", "", "a", "default"] });
    expect(layout.outputs.map((handle) => handle.id)).toEqual(["a", "default"]);
  });

  it("gives triggers no input", () => {
    expect(handleLayout({ label: "T", category: "trigger", is_trigger: true }).hasInput).toBe(false);
  });
});

describe("handleKey", () => {
  const base = { label: "Switch", category: "logic", branches: ["saas", "default"] };

  it("stays the same when only text changes", () => {
    expect(handleKey({ ...base, label: "Other", summary: "x" })).toBe(handleKey(base));
  });

  it("changes when a case is added or renamed", () => {
    expect(handleKey({ ...base, branches: ["saas", "retail", "default"] })).not.toBe(handleKey(base));
    expect(handleKey({ ...base, branches: ["b2b", "default"] })).not.toBe(handleKey(base));
  });

  it("tells a single unlabelled output from a branch literally named like it", () => {
    expect(handleKey({ ...base, branches: [] })).not.toBe(handleKey({ ...base, branches: ["null"] }));
  });

  it("changes when a node becomes a trigger", () => {
    expect(handleKey({ ...base, is_trigger: true })).not.toBe(handleKey(base));
  });
});
