import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { noopLogger } from "@sluice/domain";
import { createJobLog } from "./job-log.js";
import type { LogBatchInit } from "./job-log.js";
import { createMasker } from "./providers/provider.js";

const job = { jobId: "ae-1:1", actionExecutionId: "ae-1", attempt: 1, pipelineName: "demo" };
const SECRET = "s3cr3t value/+x";

function recorder(): { batches: LogBatchInit[]; ids: string[]; publish: (b: LogBatchInit, id: string) => Promise<void> } {
  const batches: LogBatchInit[] = [];
  const ids: string[] = [];
  return {
    batches,
    ids,
    publish: (b, id) => {
      batches.push(b);
      ids.push(id);
      return Promise.resolve();
    },
  };
}

function texts(batches: readonly LogBatchInit[]): string[] {
  return batches.flatMap((b) => (b.lines ?? []).map((l) => l.text ?? ""));
}

describe("createJobLog", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends a slow printer's line on its own once the flush interval passes, in order and numbered", async () => {
    const rec = recorder();
    const log = createJobLog({ job, publish: rec.publish, runId: "r1", mask: (t) => t, logger: noopLogger, flushMs: 100 });
    log.write("stdout", "line-1");
    expect(rec.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(texts(rec.batches)).toEqual(["line-1"]);
    log.write("stderr", "line-2");
    await vi.advanceTimersByTimeAsync(100);
    expect(rec.batches).toHaveLength(2);
    expect(rec.batches[1]?.lines?.[0]).toMatchObject({ sequence: 2n, stream: "stderr", text: "line-2" });
    expect(rec.batches[1]).toMatchObject({ jobId: "ae-1:1", actionExecutionId: "ae-1", attempt: 1, pipelineName: "demo" });
    expect(rec.ids).toEqual(["log:ae-1:1:r1:1", "log:ae-1:1:r1:2"]);
  });

  it("sends a fast printer's lines in few batches, at once when a batch is full", async () => {
    const rec = recorder();
    const log = createJobLog({ job, publish: rec.publish, runId: "r1", mask: (t) => t, logger: noopLogger, flushMs: 100, maxBatchBytes: 1000 });
    for (let i = 0; i < 40; i++) log.write("stdout", `${"x".repeat(50)}-${i}`);
    await vi.advanceTimersByTimeAsync(0);
    // 40 lines of ~100 counted bytes: full batches went at once, the rest waits for the timer.
    expect(rec.batches.length).toBeGreaterThanOrEqual(3);
    await vi.advanceTimersByTimeAsync(100);
    expect(texts(rec.batches)).toHaveLength(40);
    expect(texts(rec.batches)[39]).toMatch(/-39$/);
    expect(rec.batches.length).toBeLessThan(10);
  });

  it("masks the raw, base64 and URL-encoded forms of a secret in streamed and stored lines", async () => {
    const rec = recorder();
    const log = createJobLog({ job, publish: rec.publish, runId: "r1", mask: createMasker([SECRET]), logger: noopLogger });
    const b64 = Buffer.from(SECRET).toString("base64");
    log.write("stdout", `raw ${SECRET}`);
    log.write("stdout", `b64 ${b64}`);
    log.write("stdout", `url ${encodeURIComponent(SECRET)}`);
    await log.end(false);
    const streamed = texts(rec.batches).join("\n");
    const stored = log.stored().body.toString("utf8");
    for (const text of [streamed, stored]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(b64);
      expect(text).not.toContain(encodeURIComponent(SECRET));
      expect(text).toContain("raw ***");
    }
  });

  it("keeps the whole log as JSON Lines with the LogLine JSON names, and cuts it at the stored limit", () => {
    const log = createJobLog({ job, publish: recorder().publish, runId: "r1", mask: (t) => t, logger: noopLogger, maxStoredBytes: 300 });
    for (let i = 1; i <= 10; i++) log.write("stdout", `line-${i}`);
    const stored = log.stored();
    const lines = stored.body.toString("utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, string>);
    expect(lines[0]).toMatchObject({ sequence: "1", stream: "stdout", text: "line-1" });
    expect(typeof lines[0]?.["time"]).toBe("string");
    expect(stored.truncated).toBe(true);
    expect(stored.lines).toBe(10);
    expect(lines.at(-1)).toMatchObject({ stream: "system", text: expect.stringContaining("log truncated") as unknown });
    expect(stored.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("ends with a final batch saying whether the log was stored, and ignores later lines", async () => {
    const rec = recorder();
    const log = createJobLog({ job, publish: rec.publish, runId: "r1", mask: (t) => t, logger: noopLogger });
    log.write("stdout", "last");
    await log.end(true);
    log.write("stdout", "too late");
    await log.flush();
    expect(texts(rec.batches)).toEqual(["last"]);
    expect(rec.batches.at(-1)).toMatchObject({ final: true, stored: true, lines: [] });
    expect(rec.ids.at(-1)).toBe("log:ae-1:1:r1:final");
  });

  it("retries a failed publish once, then drops those lines from the stream but keeps them stored", async () => {
    const sent: string[] = [];
    let calls = 0;
    const log = createJobLog({
      job,
      runId: "r1",
      mask: (t) => t,
      logger: noopLogger,
      publish: (b) => {
        calls++;
        if (calls <= 2) return Promise.reject(new Error("no responders"));
        sent.push(...(b.lines ?? []).map((l) => l.text ?? ""));
        return Promise.resolve();
      },
    });
    log.write("stdout", "lost");
    const flushed = log.flush();
    await vi.advanceTimersByTimeAsync(500);
    await flushed;
    log.write("stdout", "sent");
    await log.end(false);
    expect(calls).toBe(4);
    expect(sent).toEqual(["sent"]);
    expect(log.stored().body.toString("utf8")).toContain('"text":"lost"');
  });

  it("gives up batches a stuck bus never takes after drainMs, so the job's end is not held back", async () => {
    let calls = 0;
    const log = createJobLog({
      job,
      runId: "r1",
      mask: (t) => t,
      logger: noopLogger,
      drainMs: 5_000,
      publish: () => {
        calls++;
        return new Promise<void>(() => undefined);
      },
    });
    log.write("stdout", "stuck");
    let ended = false;
    const end = log.end(true).then(() => (ended = true));
    await vi.advanceTimersByTimeAsync(4_999);
    expect(ended).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await end;
    expect(ended).toBe(true);
    // The final batch was never tried: the stuck first one holds the queue.
    expect(calls).toBe(1);
    expect(log.stored().body.toString("utf8")).toContain('"text":"stuck"');
  });
});
