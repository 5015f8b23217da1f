import { describe, expect, it } from "vitest";
import {
  Debouncer,
  decideSync,
  shouldApplyIncoming,
  shouldRefit,
  STRUCTURE_DELAY_MS,
  SYNC_DELAY_MS,
  syncDelay,
} from "./sync";

describe("decideSync", () => {
  it("stays idle when Python already has this graph", () => {
    expect(decideSync({ current: "a", baseline: "a", dragging: false })).toBe("idle");
    expect(decideSync({ current: "a", baseline: "a", dragging: true })).toBe("idle");
  });

  it("waits while a drag is in progress", () => {
    expect(decideSync({ current: "b", baseline: "a", dragging: true })).toBe("wait-for-drag");
  });

  it("schedules a send for a finished change", () => {
    expect(decideSync({ current: "b", baseline: "a", dragging: false })).toBe("schedule");
  });
});

describe("shouldApplyIncoming", () => {
  it("ignores the same graph arriving again", () => {
    expect(shouldApplyIncoming("g1", "g1", "g2")).toBe(false);
  });

  it("ignores the echo of the graph we just sent", () => {
    expect(shouldApplyIncoming("sent", "old", "sent")).toBe(false);
  });

  it("applies a graph Python changed", () => {
    expect(shouldApplyIncoming("annotated", "old", "sent")).toBe(true);
  });
});

describe("Debouncer", () => {
  function fakeClock() {
    const queue = new Map<number, () => void>();
    let next = 1;
    const schedule = (callback: () => void) => {
      const id = next++;
      queue.set(id, callback);
      return id as unknown as ReturnType<typeof setTimeout>;
    };
    const cancel = (id: ReturnType<typeof setTimeout>) => queue.delete(id as unknown as number);
    const flush = () => {
      const callbacks = [...queue.values()];
      queue.clear();
      callbacks.forEach((callback) => callback());
    };
    return { schedule, cancel, flush, size: () => queue.size };
  }

  it("runs only the last of a burst", () => {
    const clock = fakeClock();
    const debouncer = new Debouncer(250, clock.schedule, clock.cancel);
    const calls: number[] = [];
    debouncer.run(() => calls.push(1));
    debouncer.run(() => calls.push(2));
    debouncer.run(() => calls.push(3));
    expect(clock.size()).toBe(1);
    expect(debouncer.pending).toBe(true);
    clock.flush();
    expect(calls).toEqual([3]);
    expect(debouncer.pending).toBe(false);
  });

  it("can be cancelled", () => {
    const clock = fakeClock();
    const debouncer = new Debouncer(250, clock.schedule, clock.cancel);
    const calls: number[] = [];
    debouncer.run(() => calls.push(1));
    debouncer.cancel();
    clock.flush();
    expect(calls).toEqual([]);
  });

  it("waits the configured delay with the real clock", async () => {
    const debouncer = new Debouncer(20);
    const started = Date.now();
    const elapsed = await new Promise<number>((resolve) => debouncer.run(() => resolve(Date.now() - started)));
    expect(elapsed).toBeGreaterThanOrEqual(15);
  });
});

describe("syncDelay", () => {
  it("waits for a pause after moves, sends structural changes almost at once", () => {
    expect(syncDelay("s1", "s1")).toBe(SYNC_DELAY_MS);
    expect(syncDelay("s2", "s1")).toBe(STRUCTURE_DELAY_MS);
    expect(STRUCTURE_DELAY_MS).toBeLessThan(SYNC_DELAY_MS);
  });

  it("lets one run use its own delay", () => {
    const delays: number[] = [];
    const debouncer = new Debouncer(250, (callback, delayMs) => {
      delays.push(delayMs);
      return setTimeout(callback, 0);
    });
    debouncer.run(() => undefined, 30);
    debouncer.run(() => undefined);
    debouncer.cancel();
    expect(delays).toEqual([30, 250]);
  });
});

describe("shouldRefit", () => {
  it("refits only when Python sends a new view key", () => {
    expect(shouldRefit("builder_canvas_1", "builder_canvas_1")).toBe(false);
    expect(shouldRefit("builder_canvas_2", "builder_canvas_1")).toBe(true);
    expect(shouldRefit("a", null)).toBe(true);
    expect(shouldRefit(null, "a")).toBe(false);
    expect(shouldRefit(null, null)).toBe(false);
  });
});
