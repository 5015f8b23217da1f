// Line icons drawn as inline SVG. Headless Chromium (and many servers) have no emoji font, so
// icons must ship with the bundle. Shapes follow the Feather icon style (24x24, 2px stroke).
import type { ReactElement } from "react";

const SHAPES: Record<string, ReactElement> = {
  play: <polygon points="6 4 20 12 6 20 6 4" />,
  clock: (
    <>
      <circle cx="12" cy="12" r="9" />
      <polyline points="12 7 12 12 15 14" />
    </>
  ),
  activity: <polyline points="22 12 18 12 15 21 9 3 6 12 2 12" />,
  zap: <polygon points="13 2 3 14 12 14 11 22 21 10 12 10 13 2" />,
  webhook: (
    <>
      <circle cx="12" cy="6" r="3" />
      <circle cx="6" cy="17" r="3" />
      <circle cx="18" cy="17" r="3" />
      <path d="M10.5 8.6 7.5 14.4M9 17h6M13.5 8.6l3 5.8" />
    </>
  ),
  hand: (
    <path d="M8 13V5a1.5 1.5 0 0 1 3 0v6M11 10V3.5a1.5 1.5 0 0 1 3 0V10M14 10V5a1.5 1.5 0 0 1 3 0v9a7 7 0 0 1-7 7h-1a6 6 0 0 1-5-2.7L2.5 15a1.5 1.5 0 0 1 2.4-1.8L8 16" />
  ),
  mail: (
    <>
      <rect x="3" y="5" width="18" height="14" rx="2" />
      <polyline points="3 7 12 13 21 7" />
    </>
  ),
  message: <path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z" />,
  bell: <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9M13.7 21a2 2 0 0 1-3.4 0" />,
  share: (
    <>
      <circle cx="18" cy="5" r="3" />
      <circle cx="6" cy="12" r="3" />
      <circle cx="18" cy="19" r="3" />
      <path d="M8.6 13.5l6.8 4M15.4 6.5l-6.8 4" />
    </>
  ),
  hourglass: <path d="M6 2h12M6 22h12M7 2c0 6 10 6 10 10S7 16 7 22M17 2c0 6-10 6-10 10s10 4 10 10" />,
  "check-circle": (
    <>
      <circle cx="12" cy="12" r="9" />
      <polyline points="8 12 11 15 16 9" />
    </>
  ),
  edit: <path d="M12 20h9M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z" />,
  globe: (
    <>
      <circle cx="12" cy="12" r="9" />
      <path d="M3 12h18M12 3a14 14 0 0 1 0 18M12 3a14 14 0 0 0 0 18" />
    </>
  ),
  branch: (
    <>
      <circle cx="6" cy="6" r="2.5" />
      <circle cx="6" cy="18" r="2.5" />
      <circle cx="18" cy="8" r="2.5" />
      <path d="M6 8.5v7M18 10.5c0 4-6 3-11 5.5" />
    </>
  ),
  switch: <path d="M3 12h6M9 12l4-6h8M9 12l4 6h8M13 12h8" />,
  repeat: <path d="M17 2l4 4-4 4M3 11V9a3 3 0 0 1 3-3h15M7 22l-4-4 4-4M21 13v2a3 3 0 0 1-3 3H3" />,
  split: <path d="M3 12h7M10 12l5-6h6M10 12l5 6h6M18 3l3 3-3 3M18 15l3 3-3 3" />,
  merge: <path d="M3 6h6l5 6h7M3 18h6l5-6M18 9l3 3-3 3" />,
  database: (
    <>
      <ellipse cx="12" cy="5" rx="8" ry="3" />
      <path d="M4 5v14c0 1.7 3.6 3 8 3s8-1.3 8-3V5M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3" />
    </>
  ),
  "user-plus": (
    <>
      <circle cx="9" cy="7" r="4" />
      <path d="M2 21v-2a4 4 0 0 1 4-4h6a4 4 0 0 1 4 4v2M19 8v6M16 11h6" />
    </>
  ),
  "user-check": (
    <>
      <circle cx="9" cy="7" r="4" />
      <path d="M2 21v-2a4 4 0 0 1 4-4h6a4 4 0 0 1 4 4v2" />
      <polyline points="16 11 18 13 22 9" />
    </>
  ),
  download: <path d="M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4M7 10l5 5 5-5M12 15V3" />,
  send: <path d="M22 2 11 13M22 2l-7 20-4-9-9-4z" />,
};

const FALLBACK = <circle cx="12" cy="12" r="4" />;

export const ICON_NAMES: readonly string[] = Object.keys(SHAPES);

export function hasIcon(name: string | null | undefined): boolean {
  return name != null && Object.prototype.hasOwnProperty.call(SHAPES, name);
}

export function Icon({ name, size = 16 }: { name?: string | null; size?: number }): ReactElement {
  const shape = hasIcon(name) ? SHAPES[name as string] : FALLBACK;
  return (
    <svg
      className="mawb-icon"
      data-icon={hasIcon(name) ? name : "dot"}
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      strokeWidth={2}
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden="true"
    >
      {shape}
    </svg>
  );
}
