// Palette ordering and the drag payload. Pure so the grouping can be unit-tested.
import type { PaletteItem } from "./types";

export const DRAG_MIME = "application/x-mawb-node-type";

const CATEGORY_ORDER = ["trigger", "action", "logic", "integration"];

export interface PaletteGroup {
  category: string;
  items: PaletteItem[];
}

/** Group palette items by category: known categories first in flow order, then the rest by name. */
export function groupPalette(items: PaletteItem[]): PaletteGroup[] {
  const groups = new Map<string, PaletteItem[]>();
  for (const item of items) {
    const list = groups.get(item.category) ?? [];
    list.push(item);
    groups.set(item.category, list);
  }
  const rank = (category: string): number => {
    const index = CATEGORY_ORDER.indexOf(category);
    return index === -1 ? CATEGORY_ORDER.length : index;
  };
  return [...groups.entries()]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([category, list]) => ({ category, items: list }));
}

const CATEGORY_TITLES: Record<string, string> = {
  trigger: "Triggers",
  action: "Actions",
  logic: "Logic",
  integration: "Integrations",
};

export function categoryTitle(category: string): string {
  const known = CATEGORY_TITLES[category];
  if (known) return known;
  const words = category.replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function findPaletteItem(items: PaletteItem[], type: string): PaletteItem | undefined {
  return items.find((item) => item.type === type);
}
