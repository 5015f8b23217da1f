// When the canvas tells Python about an edit. Each send reruns the Builder's fragment, so we
// send only real changes, never mid-drag (a drag would otherwise rerun it dozens of times).
// A move waits for the user to pause (nudging a node is often several moves); a change of
// what the flow is (a step dropped or deleted, an edge drawn, a selection) goes almost at once:
// its result (errors, the step's settings) is what the user waits for. The short delay only
// gathers the changes of one gesture (deleting a step deletes its edges too).
export const SYNC_DELAY_MS = 250;
export const STRUCTURE_DELAY_MS = 30;

/** How long to wait before sending: short when more than positions changed. */
export function syncDelay(structure: string, baselineStructure: string): number {
  return structure === baselineStructure ? SYNC_DELAY_MS : STRUCTURE_DELAY_MS;
}

export type SyncDecision = "idle" | "wait-for-drag" | "schedule";

export interface SyncState {
  /** Signature of the graph currently on the canvas. */
  current: string;
  /** Signature of the graph Python last knew about (received from it or sent to it). */
  baseline: string;
  dragging: boolean;
}

export function decideSync(state: SyncState): SyncDecision {
  if (state.current === state.baseline) return "idle";
  if (state.dragging) return "wait-for-drag";
  return "schedule";
}

/**
 * Whether a graph arriving from Python should replace the canvas contents. A graph equal to
 * what Python last knew about is only an echo of our own edit (the app passes the returned
 * graph back in), and applying it could undo an edit made while the script was rerunning.
 */
export function shouldApplyIncoming(incoming: string, lastIncoming: string | null, baseline: string): boolean {
  if (incoming === lastIncoming) return false;
  return incoming !== baseline;
}

/** A restartable timer; the scheduling function is injectable so tests need no real clock. */
export class Debouncer {
  private handle: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly delayMs: number = SYNC_DELAY_MS,
    // Wrapped, not passed bare: calling the browser's setTimeout as a method of another object
    // throws "Illegal invocation".
    private readonly schedule: (callback: () => void, delayMs: number) => ReturnType<typeof setTimeout> = (
      callback,
      delayMs,
    ) => setTimeout(callback, delayMs),
    private readonly cancelScheduled: (handle: ReturnType<typeof setTimeout>) => void = (handle) =>
      clearTimeout(handle),
  ) {}

  run(callback: () => void, delayMs: number = this.delayMs): void {
    this.cancel();
    this.handle = this.schedule(() => {
      this.handle = null;
      callback();
    }, delayMs);
  }

  cancel(): void {
    if (this.handle !== null) {
      this.cancelScheduled(this.handle);
      this.handle = null;
    }
  }

  get pending(): boolean {
    return this.handle !== null;
  }
}

/**
 * Whether Python asked for a new fit to view: its key changed since the last fit. The first key
 * is taken as already fitted, because React Flow fits on mount by itself (`fitView`).
 */
export function shouldRefit(viewKey: string | null, lastFitted: string | null): boolean {
  return viewKey !== null && viewKey !== lastFitted;
}
