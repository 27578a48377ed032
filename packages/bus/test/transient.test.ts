import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { create, fromBinary } from "@bufbuild/protobuf";
import { DomainError, noopLogger } from "@sluice/domain";
import { DeadLetterSchema, JobSchema } from "@sluice/proto";
import type { DeadLetter } from "@sluice/proto";
import type {} from "@sluice/testkit";
import { connectBus, isTransientError, transientBackoffMs } from "../src/index.js";
import type { Bus, Consumer } from "../src/index.js";

const PREFIX = `ttr${process.pid}`;
let bus: Bus;
const consumers: Consumer[] = [];
let nextPool = 0;

function fresh(): { subject: string; durable: string } {
  nextPool++;
  return { subject: bus.subjects.jobSubject(`tpool${nextPool}`, "Build", "Commands"), durable: `transient-pool${nextPool}` };
}

/** The dead letters stored for `subject`, oldest first. */
async function lettersFor(subject: string): Promise<{ letter: DeadLetter; headers: Map<string, string> }[]> {
  const found: { letter: DeadLetter; headers: Map<string, string> }[] = [];
  const info = await bus.jsm.streams.info(bus.streams.dlq);
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const stored = await bus.jsm.streams.getMessage(bus.streams.dlq, { seq }).catch(() => null);
    if (stored === null) continue;
    const letter = fromBinary(DeadLetterSchema, stored.data);
    if (letter.subject !== subject) continue;
    const headers = new Map<string, string>();
    for (const [k, v] of stored.header ?? []) if (v[0] !== undefined) headers.set(k, v[0]);
    found.push({ letter, headers });
  }
  return found;
}

beforeAll(async () => {
  bus = await connectBus({ servers: inject("servers").natsUrl, name: "transient-test", logger: noopLogger, prefix: PREFIX });
  await bus.ensureStreams();
});

afterAll(async () => {
  await Promise.allSettled(consumers.map((c) => c.stop()));
  for (const name of Object.values(bus.streams)) await bus.jsm.streams.delete(name).catch(() => false);
  await bus.close();
});

describe("isTransientError", () => {
  it("knows outages, retryable DomainErrors and causes; not poison", () => {
    // The driver's class names (the bus does not depend on the driver; the orchestrator's
    // tests check a real unreachable server).
    class MongoNetworkError extends Error {}
    class MongoNetworkTimeoutError extends MongoNetworkError {}
    expect(isTransientError(new MongoNetworkTimeoutError("timed out"))).toBe(true);
    expect(isTransientError(new Error("wrapped", { cause: new MongoNetworkError("reset") }))).toBe(true);
    expect(isTransientError(new DomainError("ConcurrentModificationException", "lost the race", [], true))).toBe(true);
    expect(isTransientError(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isTransientError(Object.assign(new Error("UNAVAILABLE"), { code: 14, metadata: {} }))).toBe(true);
    expect(isTransientError(new DomainError("ValidationException", "bad"))).toBe(false);
    expect(isTransientError(new TypeError("x is undefined"))).toBe(false);
    expect(isTransientError("boom")).toBe(false);
  });

  it("backs off from 100 ms to at most 30 s", () => {
    expect([1, 2, 3, 4].map(transientBackoffMs)).toEqual([100, 200, 400, 800]);
    expect(transientBackoffMs(50)).toBe(30_000);
  });
});

describe("consume with isTransient", () => {
  it("retries a transient failure beyond maxDeliver until it passes, and never dead-letters it", async () => {
    const { subject, durable } = fresh();
    const deliveries: number[] = [];
    const outage = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:27017"), { code: "ECONNREFUSED" });
    consumers.push(
      await bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subject,
        schema: JobSchema,
        maxDeliver: 2,
        isTransient: isTransientError,
        handler: (_job, ctx) => {
          deliveries.push(ctx.deliveryCount);
          // Down for five deliveries: more than twice maxDeliver.
          return ctx.deliveryCount <= 5 ? Promise.reject(outage) : Promise.resolve();
        },
      }),
    );
    const info = await bus.jsm.consumers.info(bus.streams.jobs, durable);
    expect(info.config.max_deliver).toBe(-1);
    await bus.publish(subject, JobSchema, create(JobSchema, { jobId: "t1" }), { msgId: "t1" });
    await expect.poll(() => deliveries, { timeout: 15_000 }).toEqual([1, 2, 3, 4, 5, 6]);
    await expect.poll(async () => (await bus.jsm.consumers.info(bus.streams.jobs, durable)).num_ack_pending, { timeout: 5_000 }).toBe(0);
    expect((await bus.jsm.streams.info(bus.streams.jobs)).state.messages).toBe(0);
    expect(await lettersFor(subject)).toEqual([]);
  });

  it("still dead-letters poison at once, carrying the message's Sluice-* headers", async () => {
    const { subject, durable } = fresh();
    const deliveries: number[] = [];
    consumers.push(
      await bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subject,
        schema: JobSchema,
        isTransient: isTransientError,
        handler: (_job, ctx) => {
          deliveries.push(ctx.deliveryCount);
          return Promise.reject(new DomainError("ValidationException", "configuration.Foo: is not allowed"));
        },
      }),
    );
    await bus.publish(subject, JobSchema, create(JobSchema, { jobId: "p1" }), { msgId: "p1", headers: { "Sluice-Pipeline": "demo", Other: "x" } });
    await expect.poll(async () => (await lettersFor(subject)).length, { timeout: 10_000 }).toBe(1);
    const [{ letter, headers }] = (await lettersFor(subject)) as [{ letter: DeadLetter; headers: Map<string, string> }];
    expect(letter.reason).toBe("ValidationException: configuration.Foo: is not allowed");
    expect(headers.get("Sluice-Pipeline")).toBe("demo");
    expect(headers.get("Sluice-Original-Msg-Id")).toBe("p1");
    expect(headers.has("Other")).toBe(false);
    expect(deliveries).toEqual([1]);
  });

  it("turns an existing durable of an older release to unlimited deliveries, and back", async () => {
    const { subject, durable } = fresh();
    const handler = (): Promise<void> => Promise.resolve();
    const maxDeliver = async (): Promise<number> => (await bus.jsm.consumers.info(bus.streams.jobs, durable)).config.max_deliver ?? 0;
    await (await bus.consume({ stream: bus.streams.jobs, durable, filterSubject: subject, schema: JobSchema, handler })).stop();
    expect(await maxDeliver()).toBe(6);
    await (await bus.consume({ stream: bus.streams.jobs, durable, filterSubject: subject, schema: JobSchema, isTransient: isTransientError, handler })).stop();
    expect(await maxDeliver()).toBe(-1);
    await (await bus.consume({ stream: bus.streams.jobs, durable, filterSubject: subject, schema: JobSchema, handler })).stop();
    expect(await maxDeliver()).toBe(6);
  });

  it("dead-letters an error it does not know after maxDeliver deliveries", async () => {
    const { subject, durable } = fresh();
    consumers.push(
      await bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subject,
        schema: JobSchema,
        maxDeliver: 2,
        isTransient: isTransientError,
        handler: () => Promise.reject(new TypeError("cannot read properties of undefined")),
      }),
    );
    await bus.publish(subject, JobSchema, create(JobSchema, { jobId: "u1" }), { msgId: "u1" });
    await expect.poll(async () => (await lettersFor(subject)).map((l) => l.letter.reason), { timeout: 10_000 }).toEqual([
      "failed 2 deliveries, last error: cannot read properties of undefined",
    ]);
  });
});
