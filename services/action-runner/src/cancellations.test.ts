import { describe, expect, it } from "vitest";
import { JobCancelledReason, createCancellations } from "./cancellations.js";

describe("cancellations", () => {
  it("aborts a running job with the reason and forgets it when it ends", () => {
    const c = createCancellations();
    const job = c.begin("ae-1:1");
    expect(job.signal.aborted).toBe(false);
    expect(c.cancel("ae-1:1", "execution abandoned")).toBe("aborted");
    expect(job.signal.aborted).toBe(true);
    expect(job.signal.reason).toBeInstanceOf(JobCancelledReason);
    expect((job.signal.reason as JobCancelledReason).message).toBe("execution abandoned");
    job.end();
    expect(c.running).toBe(0);
  });

  it("remembers a cancel for a job that has not arrived and fails it at once when it does", () => {
    const c = createCancellations();
    expect(c.cancel("ae-2:1", "timed out")).toBe("remembered");
    const other = c.begin("ae-3:1");
    expect(other.signal.aborted).toBe(false);
    const late = c.begin("ae-2:1");
    expect(late.signal.aborted).toBe(true);
    expect((late.signal.reason as Error).message).toBe("timed out");
  });

  it("keeps at most maxRecent ids, dropping the oldest", () => {
    const c = createCancellations({ maxRecent: 3 });
    for (const id of ["a", "b", "c", "d"]) c.cancel(id, "x");
    expect(c.begin("a").signal.aborted).toBe(false);
    expect(["b", "c", "d"].map((id) => c.begin(id).signal.aborted)).toEqual([true, true, true]);
  });

  it("forgets ids older than recentTtlMs", () => {
    let now = 0;
    const c = createCancellations({ recentTtlMs: 1000, now: () => now });
    c.cancel("old", "x");
    now = 600;
    c.cancel("newer", "y");
    now = 1001;
    expect(c.begin("old").signal.aborted).toBe(false);
    expect(c.begin("newer").signal.aborted).toBe(true);
  });

  it("leaves jobs it does not run alone", () => {
    const c = createCancellations();
    const job = c.begin("mine:1");
    expect(c.cancel("theirs:1", "x")).toBe("remembered");
    expect(job.signal.aborted).toBe(false);
  });
});
