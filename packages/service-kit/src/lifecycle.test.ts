import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { noopLogger } from "@sluice/domain";
import { recordingLogger } from "@sluice/testkit";
import type { RecordedLine } from "@sluice/testkit";
import { once, runService } from "./lifecycle.js";
import type { ServiceHost, ShutdownSignal } from "./lifecycle.js";
import { createTeardown } from "./teardown.js";

/** A stand-in for `process`: signals are emitted by the test, exit codes recorded. */
class FakeHost extends EventEmitter implements ServiceHost {
  exitCode: number | string | undefined = undefined;
  exits: number[] = [];
  override once(event: ShutdownSignal, listener: () => void): this {
    return super.once(event, listener);
  }
  override removeListener(event: ShutdownSignal, listener: () => void): this {
    return super.removeListener(event, listener);
  }
  exit(code: number): void {
    this.exits.push(code);
  }
}

describe("once", () => {
  it("runs the function once and returns the first result afterwards", () => {
    let calls = 0;
    const f = once((n: number) => ++calls + n);
    expect([f(10), f(20), f(30)]).toEqual([11, 11, 11]);
    expect(calls).toBe(1);
  });

  it("shares one promise between concurrent callers", async () => {
    let calls = 0;
    const stop = once(async () => {
      calls++;
      await Promise.resolve();
    });
    const [a, b] = [stop(), stop()];
    expect(a).toBe(b);
    await Promise.all([a, b]);
    expect(calls).toBe(1);
  });

  it("rethrows the first error on every call", () => {
    let calls = 0;
    const f = once(() => {
      calls++;
      throw new Error("bad");
    });
    expect(() => f()).toThrow("bad");
    expect(() => f()).toThrow("bad");
    expect(calls).toBe(1);
  });
});

describe("runService", () => {
  it("stops once on SIGTERM with the grace period and exits 0", async () => {
    const host = new FakeHost();
    const stops: number[] = [];
    const run = runService("svc", noopLogger, () => Promise.resolve({ stop: (deadline: number) => Promise.resolve(void stops.push(deadline)) }), 1234, host);
    await expect.poll(() => host.listenerCount("SIGTERM")).toBe(1);
    host.emit("SIGTERM");
    host.emit("SIGINT"); // listeners are gone after the first signal: nothing happens
    await run;
    expect(stops).toEqual([1234]);
    expect(host.exitCode).toBe(0);
    expect(host.listenerCount("SIGTERM") + host.listenerCount("SIGINT")).toBe(0);
  });

  it("exits 1 when start fails, without waiting for a signal", async () => {
    const host = new FakeHost();
    await runService("svc", noopLogger, () => Promise.reject(new Error("no mongo")), 1000, host);
    expect(host.exitCode).toBe(1);
    expect(host.listenerCount("SIGTERM")).toBe(0);
  });

  it("exits 1 when stop fails", async () => {
    const host = new FakeHost();
    const run = runService("svc", noopLogger, () => Promise.resolve({ stop: () => Promise.reject(new Error("stuck")) }), 1000, host);
    await expect.poll(() => host.listenerCount("SIGINT")).toBe(1);
    host.emit("SIGINT");
    await run;
    expect(host.exitCode).toBe(1);
  });

  it("stops with exit 1 when the service fails by itself", async () => {
    const host = new FakeHost();
    let stopped = 0;
    const run = runService(
      "svc",
      noopLogger,
      () => Promise.resolve({ stop: () => Promise.resolve(void stopped++), closed: Promise.reject(new Error("nats gone")) }),
      1000,
      host,
    );
    await run;
    expect(stopped).toBe(1);
    expect(host.exitCode).toBe(1);
  });

  it("stops with exit 1 and a log line naming the part when a watched part dies", async () => {
    const host = new FakeHost();
    const lines: RecordedLine[] = [];
    const logger = recordingLogger(lines);
    const teardown = createTeardown({ logger });
    let closed = 0;
    teardown.add("bus", () => void closed++);
    teardown.watch("NATS connection", Promise.resolve(new Error("authorization violation")));
    await runService("svc", logger, () => Promise.resolve({ stop: (ms: number) => teardown.run(ms), closed: teardown.fatal }), 1000, host);
    expect(closed).toBe(1);
    expect(host.exitCode).toBe(1);
    expect(lines.filter((l) => l.level === "error").map((l) => l.msg)).toEqual(["service failed: NATS connection ended: authorization violation"]);
  });

  it("forces exit 1 when stop overruns the grace period", async () => {
    const host = new FakeHost();
    let release: () => void = () => undefined;
    const run = runService("svc", noopLogger, () => Promise.resolve({ stop: () => new Promise<void>((r) => (release = r)) }), 10, host);
    await expect.poll(() => host.listenerCount("SIGTERM")).toBe(1);
    host.emit("SIGTERM");
    await expect.poll(() => host.exits, { timeout: 5_000 }).toEqual([1]);
    release();
    await run;
  });
});
