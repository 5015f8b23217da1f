// One mawb node on the canvas: category colour, icon, title, one-line summary, diagnostics and
// run counts, an input handle on the left and one output handle per branch on the right.
import { Handle, Position, useUpdateNodeInternals, type NodeProps } from "@xyflow/react";
import { useEffect, useRef, type CSSProperties, type ReactElement } from "react";
import type { CanvasNode } from "./graph";
import { handleKey, handleLayout, type OutputHandle } from "./handles";
import { Icon } from "./icons";
import type { NodeCounts } from "./types";

const COUNT_LABELS: [keyof NodeCounts, string][] = [
  ["entered", "in"],
  ["contacts", "contacts"],
  ["waiting", "wait"],
  ["completed", "done"],
  ["failed", "failed"],
  ["converted", "conv"],
];

export function FlowNode({ id, data, selected, isConnectable }: NodeProps<CanvasNode>): ReactElement {
  const payload = data.payload;
  const layout = handleLayout(payload);
  useHandleRefresh(id, handleKey(payload));
  const color = payload.color || "#64748b";
  const classes = ["mawb-node", selected ? "is-selected" : "", payload.error ? "has-error" : ""];
  return (
    <div
      className={classes.filter(Boolean).join(" ")}
      style={nodeStyle(color, layout.outputs)}
      data-node-id={id}
      data-node-type={data.nodeType}
      title={payload.error || undefined}
    >
      {layout.hasInput && (
        <Handle type="target" position={Position.Left} className="mawb-handle-in" isConnectable={isConnectable} />
      )}
      <div className="mawb-node-head">
        <span className="mawb-node-icon">
          <Icon name={payload.icon} />
        </span>
        <span className="mawb-node-title">{payload.label || id}</span>
      </div>
      {payload.summary ? <div className="mawb-node-summary">{payload.summary}</div> : null}
      {payload.error ? (
        <div className="mawb-node-error" role="alert">
          {payload.error}
        </div>
      ) : null}
      <CountBadges counts={payload.counts} />
      {layout.outputs.map((handle) => (
        <Handle
          key={handle.id ?? "\u0000"}
          type="source"
          position={Position.Right}
          id={handle.id}
          isConnectable={isConnectable}
          className={handle.label ? "mawb-handle-out is-labelled" : "mawb-handle-out"}
          style={{ top: `${handle.topPercent}%` }}
          data-branch={handle.id ?? ""}
        >
          {handle.label ? <span className="mawb-handle-label">{handle.label}</span> : null}
        </Handle>
      ))}
    </div>
  );
}

function nodeStyle(color: string, outputs: OutputHandle[]): CSSProperties {
  const labelled = outputs.some((handle) => handle.label);
  return {
    "--mawb-node-color": color,
    minHeight: `${Math.max(48, outputs.length * 22 + 12)}px`,
    paddingRight: labelled ? "64px" : undefined,
  } as CSSProperties;
}

function CountBadges({ counts }: { counts?: NodeCounts | null }): ReactElement | null {
  if (!counts) return null;
  const shown = COUNT_LABELS.filter(([field]) => typeof counts[field] === "number");
  if (shown.length === 0) return null;
  return (
    <div className="mawb-node-counts">
      {shown.map(([field, label]) => (
        <span key={field} className={`mawb-count mawb-count-${field}`} title={field}>
          {label} <b>{counts[field]}</b>
        </span>
      ))}
    </div>
  );
}

/**
 * Tell React Flow to re-measure handles when the node's handle set changes (for example switch
 * cases edited in Python). Not on first appearance: React Flow measures new nodes itself, and
 * an extra refresh then disturbs fit-to-view.
 */
function useHandleRefresh(id: string, key: string): void {
  const updateNodeInternals = useUpdateNodeInternals();
  const previousKey = useRef(key);
  useEffect(() => {
    if (previousKey.current === key) return;
    previousKey.current = key;
    updateNodeInternals(id);
  }, [id, key, updateNodeInternals]);
}
