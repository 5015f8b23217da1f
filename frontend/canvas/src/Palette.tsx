// The node palette: every node type grouped by category, each item HTML5-draggable onto the
// canvas (the drop handler in Canvas.tsx reads the type from the drag payload).
import type { DragEvent, ReactElement } from "react";
import { Icon } from "./icons";
import { categoryTitle, DRAG_MIME, groupPalette } from "./palette";
import type { PaletteItem } from "./types";

export function Palette({ items }: { items: PaletteItem[] }): ReactElement {
  const onDragStart = (event: DragEvent<HTMLDivElement>, type: string): void => {
    event.dataTransfer.setData(DRAG_MIME, type);
    event.dataTransfer.setData("text/plain", type);
    event.dataTransfer.effectAllowed = "move";
  };
  return (
    <aside className="mawb-palette" aria-label="Node palette">
      <div className="mawb-palette-hint">Drag a step onto the canvas</div>
      {groupPalette(items).map((group) => (
        <section key={group.category} className="mawb-palette-group">
          <h4>{categoryTitle(group.category)}</h4>
          {group.items.map((item) => (
            <div
              key={item.type}
              className="mawb-palette-item"
              draggable
              data-palette-type={item.type}
              title={item.help ?? item.label}
              onDragStart={(event) => onDragStart(event, item.type)}
              style={{ borderLeftColor: item.color ?? "#64748b" }}
            >
              <span className="mawb-palette-icon" style={{ color: item.color ?? "#64748b" }}>
                <Icon name={item.icon} size={14} />
              </span>
              <span>{item.label}</span>
            </div>
          ))}
        </section>
      ))}
    </aside>
  );
}
