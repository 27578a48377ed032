import { describe, expect, it } from "vitest";
import { recordingLogger } from "@sluice/testkit";
import type { RecordedLine } from "@sluice/testkit";
import { ServiceFailure, TeardownError, createTeardown } from "./teardown.js";

describe("createTeardown", () => {
  it("runs the steps in reverse order of registration", async () => {
    const ran: string[] = [];
    const teardown = createTeardown({ logger: recordingLogger([]) });
    for (const name of ["mongo", "bus", "consumer", "grpc"]) teardown.add(name, () => void ran.push(name));
    await teardown.run(1000);
    expect(ran).toEqual(["grpc", "consumer", "bus", "mongo"]);
  });

  it("logs a failing step with its name, runs the others, then rejects naming every failed step", async () => {
    const lines: RecordedLine[] = [];
    const ran: string[] = [];
    const teardown = createTeardown({ logger: recordingLogger(lines) });
    teardown.add("mongo", () => void ran.push("mongo"));
    teardown.add("bus", () => Promise.reject(new Error("drain timed out")));
    teardown.add("consumer", () => {
      throw new Error("already gone");
    });
    teardown.add("grpc", () => void ran.push("grpc"));

    const error = await teardown.run(1000).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(TeardownError);
    expect((error as TeardownError).steps).toEqual(["consumer", "bus"]);
    expect((error as TeardownError).message).toBe("teardown steps failed: consumer, bus");
    expect(ran).toEqual(["grpc", "mongo"]);
    expect(lines).toEqual([
      { level: "error", msg: "shutdown step failed", fields: { step: "consumer", err: "already gone" } },
      { level: "error", msg: "shutdown step failed", fields: { step: "bus", err: "drain timed out" } },
    ]);
  });

  it("gives each step what is left of one shared deadline, never less than 0", async () => {
    let clock = 10_000;
    const given: [string, number][] = [];
    const teardown = createTeardown({ logger: recordingLogger([]), now: () => clock });
    const step = (name: string, takesMs: number) => (deadlineMs: number) => {
      given.push([name, deadlineMs]);
      clock += takesMs;
    };
    teardown.add("last", step("last", 0));
    teardown.add("third", step("third", 0));
    teardown.add("second", step("second", 900));
    teardown.add("first", step("first", 300));
    await teardown.run(1000);
    expect(given).toEqual([
      ["first", 1000],
      ["second", 700],
      ["third", 0],
      ["last", 0],
    ]);
  });

  it("runs once: a second run returns the first run's promise", async () => {
    let runs = 0;
    const teardown = createTeardown({ logger: recordingLogger([]) });
    teardown.add("bus", () => void runs++);
    expect(teardown.started).toBe(false);
    const first = teardown.run(1000);
    expect(teardown.started).toBe(true);
    expect(teardown.run(5)).toBe(first);
    await first;
    expect(runs).toBe(1);
  });

  it("fails fatally, naming the part, when a watched part ends before the teardown", async () => {
    const teardown = createTeardown({ logger: recordingLogger([]) });
    teardown.watch("NATS connection", Promise.resolve(new Error("authorization violation")));
    const error = await teardown.fatal.catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ServiceFailure);
    expect((error as ServiceFailure).part).toBe("NATS connection");
    expect((error as ServiceFailure).message).toBe("NATS connection ended: authorization violation");
  });

  it("names a part that ended without a reason, or by rejecting", async () => {
    const quiet = createTeardown({ logger: recordingLogger([]) });
    quiet.watch("poll loop", Promise.resolve());
    await expect(quiet.fatal).rejects.toThrow(/^poll loop ended$/);
    const loud = createTeardown({ logger: recordingLogger([]) });
    loud.watch("consumer", Promise.reject(new Error("consumer deleted")));
    await expect(loud.fatal).rejects.toThrow(/^consumer ended: consumer deleted$/);
  });

  it("is not fatal when a watched part ends because the teardown closed it", async () => {
    const teardown = createTeardown({ logger: recordingLogger([]) });
    let close: () => void = () => undefined;
    teardown.watch("NATS connection", new Promise<void>((resolve) => (close = resolve)));
    teardown.add("bus", () => close());
    await teardown.run(1000);
    const outcome = await Promise.race([teardown.fatal.then(() => "resolved", () => "rejected"), new Promise((r) => setTimeout(() => r("pending"), 20))]);
    expect(outcome).toBe("pending");
  });
});
