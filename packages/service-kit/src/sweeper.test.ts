import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { recordingLogger } from "@sluice/testkit";
import type { RecordedLine } from "@sluice/testkit";
import { startSweeper } from "./sweeper.js";

/** A run that stays in progress until the test finishes it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("startSweeper", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs every interval", async () => {
    let runs = 0;
    const sweeper = startSweeper("outbox", 100, () => Promise.resolve(void runs++), recordingLogger([]));
    await vi.advanceTimersByTimeAsync(350);
    expect(runs).toBe(3);
    await sweeper.stop();
  });

  it("never runs twice at once: ticks during a slow run are skipped", async () => {
    let active = 0;
    let most = 0;
    let runs = 0;
    const slow = gate();
    const sweeper = startSweeper(
      "timers",
      100,
      async () => {
        runs++;
        most = Math.max(most, ++active);
        if (runs === 1) await slow.promise;
        active--;
      },
      recordingLogger([]),
    );
    await vi.advanceTimersByTimeAsync(550);
    expect(runs).toBe(1);
    slow.open();
    await vi.advanceTimersByTimeAsync(100);
    expect(runs).toBe(2);
    expect(most).toBe(1);
    await sweeper.stop();
  });

  it("logs a failed run with its name and tries again on the next tick", async () => {
    const lines: RecordedLine[] = [];
    let runs = 0;
    const sweeper = startSweeper(
      "outbox",
      100,
      () => {
        runs++;
        return runs === 1 ? Promise.reject(new Error("mongo down")) : Promise.resolve();
      },
      recordingLogger(lines),
    );
    await vi.advanceTimersByTimeAsync(200);
    expect(runs).toBe(2);
    expect(lines).toEqual([{ level: "warn", msg: "sweep failed", fields: { sweeper: "outbox", error: "mongo down" } }]);
    await sweeper.stop();
  });

  it("stop waits for the run in progress, then no run starts again", async () => {
    let runs = 0;
    const slow = gate();
    const sweeper = startSweeper(
      "outbox",
      100,
      async () => {
        runs++;
        await slow.promise;
      },
      recordingLogger([]),
    );
    await vi.advanceTimersByTimeAsync(100);
    let stopped = false;
    const stopping = sweeper.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(300);
    expect(stopped).toBe(false);
    slow.open();
    await stopping;
    await vi.advanceTimersByTimeAsync(300);
    expect(runs).toBe(1);
  });

  it("stop is idempotent", async () => {
    let runs = 0;
    const sweeper = startSweeper("outbox", 100, () => Promise.resolve(void runs++), recordingLogger([]));
    await Promise.all([sweeper.stop(), sweeper.stop()]);
    await sweeper.stop();
    await vi.advanceTimersByTimeAsync(500);
    expect(runs).toBe(0);
  });
});
