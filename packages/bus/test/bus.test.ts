import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { create, fromBinary } from "@bufbuild/protobuf";
import { context, trace, TraceFlags } from "@opentelemetry/api";
import { RetentionPolicy } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { DomainError, noopLogger } from "@sluice/domain";
import { DeadLetterSchema, JobSchema, StateChangeEventSchema } from "@sluice/proto";
import type { DeadLetter, Job, StateChangeEvent } from "@sluice/proto";
// inject("servers") is typed by (and provided by the global setup of) the testkit.
import { AlsContextManager } from "@sluice/testkit";
import { connectBus, createSharedSlots } from "../src/index.js";
import type { Bus, Consumer, HandlerContext, MessageHandler } from "../src/index.js";

/** A handler from synchronous test code: a throw becomes a rejection, as from an async handler. */
function sync(fn: (msg: Job, ctx: HandlerContext) => void): MessageHandler<typeof JobSchema> {
  return (msg, ctx) => {
    try {
      fn(msg, ctx);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  };
}

const PREFIX = "tbus";
let bus: Bus;
const consumers: Consumer[] = [];
let nextPool = 0;

/** A fresh job subject per test: durables on a work-queue stream must not overlap. */
function freshJobSubject(): { subject: string; durable: string } {
  nextPool++;
  return { subject: bus.subjects.jobSubject(`pool${nextPool}`, "Build", "Commands"), durable: `runner-pool${nextPool}` };
}

function job(id: string): Job {
  return create(JobSchema, { jobId: id, pipelineName: "demo", actionName: "Build", attempt: 1 });
}

async function deadLetterFor(subject: string): Promise<DeadLetter | undefined> {
  const stored = await bus.jsm.streams.getMessage(bus.streams.dlq, { last_by_subj: bus.subjects.dlqSubject(bus.streams.jobs) }).catch(() => null);
  if (stored === null) return undefined;
  const letter = fromBinary(DeadLetterSchema, stored.data);
  return letter.subject === subject ? letter : undefined;
}

async function streamMessages(name: string): Promise<number> {
  return (await bus.jsm.streams.info(name)).state.messages;
}

async function track(c: Promise<Consumer>): Promise<Consumer> {
  const consumer = await c;
  consumers.push(consumer);
  return consumer;
}

beforeAll(async () => {
  context.setGlobalContextManager(new AlsContextManager());
  bus = await connectBus({ servers: inject("servers").natsUrl, name: "bus-test", logger: noopLogger, prefix: PREFIX, partitions: 4 });
  await bus.ensureStreams();
});

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.stop()));
  for (const name of Object.values(bus.streams)) await bus.jsm.streams.delete(name).catch(() => false);
  await bus.close();
  context.disable();
});

describe("streams", () => {
  it("ensureStreams is idempotent and creates the catalog's configuration", async () => {
    await bus.ensureStreams();
    const jobs = await bus.jsm.streams.info(bus.streams.jobs);
    expect(jobs.config).toMatchObject({ retention: RetentionPolicy.Workqueue, subjects: ["tbus.sluice.jobs.>"], duplicate_window: nanos(120_000) });
    const events = await bus.jsm.streams.info(bus.streams.events);
    expect(events.config).toMatchObject({ retention: RetentionPolicy.Limits, max_age: nanos(7 * 86_400_000) });
  });

  it("updates a stream whose configuration drifted", async () => {
    await bus.jsm.streams.update(bus.streams.dlq, { max_age: nanos(180_000) });
    await bus.ensureStreams();
    expect((await bus.jsm.streams.info(bus.streams.dlq)).config.max_age).toBe(nanos(14 * 86_400_000));
  });
});

describe("publish and consume", () => {
  it("delivers a published message to the handler and acks it", async () => {
    const { subject, durable } = freshJobSubject();
    const seen: { job: Job; ctx: HandlerContext }[] = [];
    await track(bus.consume({ stream: bus.streams.jobs, durable, filterSubject: subject, schema: JobSchema, handler: sync((j, ctx) => void seen.push({ job: j, ctx })) }));
    const result = await bus.publish(subject, JobSchema, { jobId: "j-1", pipelineName: "demo" }, { msgId: "j-1" });
    expect(result).toMatchObject({ stream: bus.streams.jobs, duplicate: false });
    await expect.poll(() => seen.length).toBe(1);
    expect(seen[0]?.job.jobId).toBe("j-1");
    expect(seen[0]?.ctx).toMatchObject({ subject, deliveryCount: 1, msgId: "j-1", streamSequence: result.seq });
    // Work queue: an acked message is removed from the stream.
    await expect.poll(() => streamMessages(bus.streams.jobs)).toBe(0);
  });

  it("drops a repeated msgId within the duplicate window", async () => {
    const { subject, durable } = freshJobSubject();
    const first = await bus.publish(subject, JobSchema, job("dup-1"), { msgId: "dup-1" });
    const second = await bus.publish(subject, JobSchema, job("dup-1"), { msgId: "dup-1" });
    expect(first.duplicate).toBe(false);
    expect(second).toMatchObject({ duplicate: true, seq: first.seq });
    const seen: string[] = [];
    await track(bus.consume({ stream: bus.streams.jobs, durable, filterSubject: subject, schema: JobSchema, handler: sync((j) => void seen.push(j.jobId)) }));
    await bus.publish(subject, JobSchema, job("after"), { msgId: "after-1" });
    await expect.poll(() => seen).toEqual(["dup-1", "after"]);
  });

  it("rejects a publish no stream stores", async () => {
    await expect(bus.publish("nowhere.at.all", JobSchema, job("x"), { msgId: "x" })).rejects.toThrow();
  });

  it("propagates the active span as traceparent to the handler's context", async () => {
    const { subject, durable } = freshJobSubject();
    const traceIds: string[] = [];
    await track(
      bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subject,
        schema: JobSchema,
        handler: sync(() => void traceIds.push(trace.getActiveSpan()?.spanContext().traceId ?? "none")),
      }),
    );
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    const span = trace.wrapSpanContext({ traceId, spanId: "b7ad6b7169203331", traceFlags: TraceFlags.SAMPLED });
    await context.with(trace.setSpan(context.active(), span), () => bus.publish(subject, JobSchema, job("traced"), { msgId: "traced-1" }));
    await expect.poll(() => traceIds).toEqual([traceId]);
  });
});

describe("failures", () => {
  it("dead-letters an undecodable message and still handles the one behind it", async () => {
    const { subject, durable } = freshJobSubject();
    const poison = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
    await bus.js.publish(subject, poison, { msgID: "poison-1" });
    await bus.publish(subject, JobSchema, job("good"), { msgId: "good-1" });
    const seen: string[] = [];
    await track(bus.consume({ stream: bus.streams.jobs, durable, filterSubject: subject, schema: JobSchema, handler: sync((j) => void seen.push(j.jobId)) }));
    await expect.poll(() => seen).toEqual(["good"]);
    await expect.poll(() => deadLetterFor(subject)).toBeDefined();
    const letter = await deadLetterFor(subject);
    expect(letter?.reason).toMatch(/cannot decode sluice\.v1\.Job/);
    expect(letter?.data).toEqual(poison);
    expect(letter?.stream).toBe(bus.streams.jobs);
    expect(letter?.deliveries).toBe(1);
    await expect.poll(() => streamMessages(bus.streams.jobs)).toBe(0);
  });

  it("dead-letters at once when the handler throws a non-retryable DomainError", async () => {
    const { subject, durable } = freshJobSubject();
    let calls = 0;
    await track(
      bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subject,
        schema: JobSchema,
        handler: sync(() => {
          calls++;
          throw new DomainError("ValidationException", "configuration.Commands: required");
        }),
      }),
    );
    await bus.publish(subject, JobSchema, job("bad-config"), { msgId: "bad-config-1" });
    await expect.poll(() => deadLetterFor(subject)).toBeDefined();
    expect((await deadLetterFor(subject))?.reason).toBe("ValidationException: configuration.Commands: required");
    expect(calls).toBe(1);
    await expect.poll(() => streamMessages(bus.streams.jobs)).toBe(0);
  });

  it("redelivers after a retryable failure and then succeeds", async () => {
    const { subject, durable } = freshJobSubject();
    const deliveries: number[] = [];
    let succeeded = false;
    await track(
      bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subject,
        schema: JobSchema,
        handler: sync((_j, ctx) => {
          deliveries.push(ctx.deliveryCount);
          if (ctx.deliveryCount === 1) throw new DomainError("ServiceUnavailableException", "artifact service down", [], true);
          succeeded = true;
        }),
      }),
    );
    await bus.publish(subject, JobSchema, job("flaky"), { msgId: "flaky-1" });
    await expect.poll(() => succeeded).toBe(true);
    expect(deliveries).toEqual([1, 2]);
    expect(await deadLetterFor(subject)).toBeUndefined();
  });

  it("dead-letters a message that fails on every one of maxDeliver deliveries", async () => {
    const { subject, durable } = freshJobSubject();
    const deliveries: number[] = [];
    await track(
      bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subject,
        schema: JobSchema,
        maxDeliver: 3,
        handler: sync((_j, ctx) => {
          deliveries.push(ctx.deliveryCount);
          throw new Error("boom");
        }),
      }),
    );
    await bus.publish(subject, JobSchema, job("doomed"), { msgId: "doomed-1" });
    await expect.poll(() => deadLetterFor(subject), { timeout: 10_000 }).toBeDefined();
    const letter = await deadLetterFor(subject);
    expect(letter).toMatchObject({ deliveries: 3, reason: "failed 3 deliveries, last error: boom" });
    expect(deliveries).toEqual([1, 2, 3]);
    await expect.poll(() => streamMessages(bus.streams.jobs)).toBe(0);
  });

  it("dead-letters without running the handler when the last lease expired unacked", async () => {
    const { subject, durable } = freshJobSubject();
    const deliveries: number[] = [];
    let release: () => void = () => undefined;
    const consumer = await bus.consume({
      stream: bus.streams.jobs,
      durable,
      filterSubject: subject,
      schema: JobSchema,
      maxDeliver: 1,
      ackWaitMs: 1_000,
      handler: async (_j, ctx) => {
        deliveries.push(ctx.deliveryCount);
        // Hang past the lease, like a stuck runner; the server redelivers meanwhile.
        await new Promise<void>((resolve) => (release = resolve));
        throw new Error("gave up");
      },
      concurrency: 2,
    });
    consumers.push(consumer);
    await bus.publish(subject, JobSchema, job("stuck"), { msgId: "stuck-1" });
    await expect.poll(() => deadLetterFor(subject), { timeout: 10_000 }).toBeDefined();
    expect((await deadLetterFor(subject))?.reason).toMatch(/delivery limit 1 reached/);
    expect(deliveries).toEqual([1]);
    release();
  });
});

describe("lifecycle", () => {
  it("working() keeps the lease beyond ackWait", async () => {
    const { subject, durable } = freshJobSubject();
    const deliveries: number[] = [];
    await track(
      bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subject,
        schema: JobSchema,
        ackWaitMs: 1_000,
        concurrency: 2,
        handler: async (_j, ctx) => {
          deliveries.push(ctx.deliveryCount);
          for (let i = 0; i < 8; i++) {
            await new Promise((r) => setTimeout(r, 300));
            ctx.working();
          }
        },
      }),
    );
    await bus.publish(subject, JobSchema, job("long"), { msgId: "long-1" });
    await expect.poll(() => streamMessages(bus.streams.jobs), { timeout: 10_000 }).toBe(0);
    expect(deliveries).toEqual([1]);
  });

  it("stop() aborts the signal and waits for the in-flight handler", async () => {
    const { subject, durable } = freshJobSubject();
    const order: string[] = [];
    let started = false;
    const consumer = await bus.consume({
      stream: bus.streams.jobs,
      durable,
      filterSubject: subject,
      schema: JobSchema,
      handler: async (_j, ctx) => {
        started = true;
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
        // Finish the work after the abort, as a handler wrapping up would.
        await new Promise((r) => setTimeout(r, 200));
        order.push("handler finished");
      },
    });
    await bus.publish(subject, JobSchema, job("slow"), { msgId: "slow-1" });
    await expect.poll(() => started).toBe(true);
    await consumer.stop();
    order.push("stop resolved");
    expect(order).toEqual(["handler finished", "stop resolved"]);
    await consumer.stop(); // idempotent
    await expect.poll(() => streamMessages(bus.streams.jobs)).toBe(0);
  });

  it("hands a message back when the handler gives up because of stop()", async () => {
    const { subject, durable } = freshJobSubject();
    let started = false;
    const first = await bus.consume({
      stream: bus.streams.jobs,
      durable,
      filterSubject: subject,
      schema: JobSchema,
      handler: async (_j, ctx) => {
        started = true;
        await new Promise<void>((_resolve, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("aborted"))));
      },
    });
    await bus.publish(subject, JobSchema, job("interrupted"), { msgId: "interrupted-1" });
    await expect.poll(() => started).toBe(true);
    await first.stop();
    const redelivered: number[] = [];
    await track(
      bus.consume({ stream: bus.streams.jobs, durable, filterSubject: subject, schema: JobSchema, handler: sync((_j, ctx) => void redelivered.push(ctx.deliveryCount)) }),
    );
    await expect.poll(() => redelivered).toEqual([2]);
    expect(await deadLetterFor(subject)).toBeUndefined();
  });

  it("runs up to `concurrency` handlers at once, never more", async () => {
    const { subject, durable } = freshJobSubject();
    let running = 0;
    let maxRunning = 0;
    let done = 0;
    await track(
      bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subject,
        schema: JobSchema,
        concurrency: 3,
        handler: async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((r) => setTimeout(r, 50));
          running--;
          done++;
        },
      }),
    );
    await Promise.all(Array.from({ length: 12 }, (_, i) => bus.publish(subject, JobSchema, job(`c${i}`), { msgId: `c-${i}` })));
    await expect.poll(() => done).toBe(12);
    expect(maxRunning).toBe(3);
  });

  it("close() stops the bus's consumers, waiting for in-flight handlers, then drains", async () => {
    const other = await connectBus({ servers: inject("servers").natsUrl, name: "bus-test-2", logger: noopLogger, prefix: PREFIX, partitions: 4 });
    const { subject, durable } = freshJobSubject();
    const order: string[] = [];
    let started = false;
    await other.consume({
      stream: other.streams.jobs,
      durable,
      filterSubject: subject,
      schema: JobSchema,
      handler: async (_j, ctx) => {
        started = true;
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
        order.push("handler finished");
      },
    });
    await other.publish(subject, JobSchema, job("closing"), { msgId: "closing-1" });
    await expect.poll(() => started).toBe(true);
    await other.close();
    order.push("closed");
    expect(order).toEqual(["handler finished", "closed"]);
    expect(other.nc.isClosed()).toBe(true);
    await expect(other.consume({ stream: other.streams.jobs, durable, filterSubject: subject, schema: JobSchema, handler: sync(() => undefined) })).rejects.toThrow(
      /closed/,
    );
    await expect.poll(() => streamMessages(bus.streams.jobs)).toBe(0);
  });

  it("updates an existing durable's settings", async () => {
    const { subject, durable } = freshJobSubject();
    const handler = sync(() => undefined);
    // Stopped right after start, while its first pull request is being set up.
    const a = await bus.consume({ stream: bus.streams.jobs, durable, filterSubject: subject, schema: JobSchema, maxDeliver: 2, handler });
    await a.stop();
    await track(bus.consume({ stream: bus.streams.jobs, durable, filterSubject: subject, schema: JobSchema, maxDeliver: 7, ackWaitMs: 5_000, handler }));
    const info = await bus.jsm.consumers.info(bus.streams.jobs, durable);
    expect(info.config).toMatchObject({ max_deliver: 8, ack_wait: nanos(5_000), filter_subject: subject });
  });

  it("takes several filter subjects with one concurrency limit across all of them", async () => {
    nextPool++;
    const pool = `pool${nextPool}`;
    const subjects = [bus.subjects.jobSubject(pool, "Build", "Commands"), bus.subjects.jobSubject(pool, "Deploy", "ObjectStore"), bus.subjects.jobSubject(pool, "Source", "Git")];
    const durable = `runner-${pool}`;
    let running = 0;
    let maxRunning = 0;
    const seen = new Set<string>();
    await track(
      bus.consume({
        stream: bus.streams.jobs,
        durable,
        filterSubject: subjects,
        schema: JobSchema,
        concurrency: 2,
        handler: async (_j, ctx) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((r) => setTimeout(r, 50));
          seen.add(ctx.subject);
          running--;
        },
      }),
    );
    const info = await bus.jsm.consumers.info(bus.streams.jobs, durable);
    expect([...(info.config.filter_subjects ?? [])].sort()).toEqual([...subjects].sort());
    await Promise.all(Array.from({ length: 12 }, (_, i) => bus.publish(subjects[i % 3] ?? "", JobSchema, job(`m${i}`), { msgId: `m-${pool}-${i}` })));
    await expect.poll(() => streamMessages(bus.streams.jobs)).toBe(0);
    expect([...seen].sort()).toEqual([...subjects].sort());
    expect(maxRunning).toBe(2);
  });

  it("shares one concurrency limit between durables given the same slots, and serves both", async () => {
    const pools = [`pool${++nextPool}`, `pool${++nextPool}`];
    const slots = createSharedSlots(2);
    let running = 0;
    let maxRunning = 0;
    const seen = new Map<string, number>();
    for (const pool of pools) {
      await track(
        bus.consume({
          stream: bus.streams.jobs,
          durable: `runner-${pool}`,
          filterSubject: bus.subjects.jobSubject(pool, "Build", "Commands"),
          schema: JobSchema,
          slots,
          pullExpiresMs: 1_000,
          handler: async () => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            await new Promise((r) => setTimeout(r, 50));
            seen.set(pool, (seen.get(pool) ?? 0) + 1);
            running--;
          },
        }),
      );
    }
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => bus.publish(bus.subjects.jobSubject(pools[i % 2] ?? "", "Build", "Commands"), JobSchema, job(`s${i}`), { msgId: `s-${pools[0]}-${i}` })),
    );
    await expect.poll(() => streamMessages(bus.streams.jobs), { timeout: 20_000 }).toBe(0);
    expect(pools.map((p) => seen.get(p))).toEqual([6, 6]);
    expect(maxRunning).toBe(2);
  });

  it("switches an existing durable between one and several filter subjects", async () => {
    nextPool++;
    const pool = `pool${nextPool}`;
    const one = bus.subjects.jobSubject(pool, "Build", "Commands");
    const two = bus.subjects.jobSubject(pool, "Test", "Commands");
    const durable = `runner-${pool}`;
    const handler = sync(() => undefined);
    const start = async (filterSubject: string | string[]) => {
      const c = await bus.consume({ stream: bus.streams.jobs, durable, filterSubject, schema: JobSchema, handler });
      await c.stop();
      return (await bus.jsm.consumers.info(bus.streams.jobs, durable)).config;
    };
    expect((await start(one)).filter_subject).toBe(one);
    const many = await start([one, two]);
    expect([...(many.filter_subjects ?? [])].sort()).toEqual([one, two].sort());
    expect(many.filter_subject ?? "").toBe("");
    const back = await start(two);
    expect(back.filter_subject).toBe(two);
    expect(back.filter_subjects ?? []).toEqual([]);
    await expect(bus.consume({ stream: bus.streams.jobs, durable, filterSubject: [], schema: JobSchema, handler })).rejects.toThrow(/filterSubject/);
  });
});

describe("subscribeEvents", () => {
  it("delivers events published after subscribing, filtered by pipeline", async () => {
    const received: { event: StateChangeEvent; subject: string }[] = [];
    // Stored before the subscription: not delivered (DeliverPolicy New).
    await bus.publish(bus.subjects.eventSubject("watched.pipe", "pipeline"), StateChangeEventSchema, { eventId: "old", pipeline: "watched.pipe" }, { msgId: "ev-old" });
    const sub = await bus.subscribeEvents(bus.subjects.eventFilter("watched.pipe"), (event, meta) => void received.push({ event, subject: meta.subject }));
    await bus.publish(bus.subjects.eventSubject("other", "stage"), StateChangeEventSchema, { eventId: "other-1", pipeline: "other" }, { msgId: "ev-other" });
    for (const [i, kind] of (["pipeline", "stage", "action"] as const).entries()) {
      await bus.publish(
        bus.subjects.eventSubject("watched.pipe", kind),
        StateChangeEventSchema,
        { eventId: `ev-${i}`, pipeline: "watched.pipe", state: "STARTED" },
        { msgId: `ev-${i}` },
      );
    }
    await expect.poll(() => received.map((r) => r.event.eventId)).toEqual(["ev-0", "ev-1", "ev-2"]);
    expect(received.map((r) => r.subject)).toEqual([
      "tbus.sluice.events.watched_pipe.pipeline",
      "tbus.sluice.events.watched_pipe.stage",
      "tbus.sluice.events.watched_pipe.action",
    ]);
    await sub.stop();
    await sub.stop();
    await bus.publish(bus.subjects.eventSubject("watched.pipe", "pipeline"), StateChangeEventSchema, { eventId: "late" }, { msgId: "ev-late" });
    // The subscription is gone: its ordered consumer was deleted on stop.
    const names: string[] = [];
    for await (const c of bus.jsm.consumers.list(bus.streams.events)) names.push(c.name);
    expect(names).toEqual([]);
    expect(received).toHaveLength(3);
  });

  it("replays stored events with `since`", async () => {
    const since = new Date(Date.now() - 60_000);
    await bus.publish(bus.subjects.eventSubject("replayed", "pipeline"), StateChangeEventSchema, { eventId: "r-1" }, { msgId: "r-1" });
    const received: string[] = [];
    const sub = await bus.subscribeEvents(bus.subjects.eventFilter("replayed"), (event) => void received.push(event.eventId), { since });
    await bus.publish(bus.subjects.eventSubject("replayed", "stage"), StateChangeEventSchema, { eventId: "r-2" }, { msgId: "r-2" });
    await expect.poll(() => received).toEqual(["r-1", "r-2"]);
    await sub.stop();
  });
});
