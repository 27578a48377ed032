// Spans and the dead-letter metric with a real SDK: an in-memory span exporter and metric reader
// registered here, as main.ts registers the real ones through @sluice/service-kit.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SpanKind, SpanStatusCode, context, metrics, trace } from "@opentelemetry/api";
import { DataPointType, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { DomainError, noopLogger } from "@sluice/domain";
import { JobSchema } from "@sluice/proto";
// inject("servers") is typed by (and provided by the global setup of) the testkit.
import { AlsContextManager, inMemoryTracing } from "@sluice/testkit";
import { DLQ_MESSAGES_METRIC, TRACEPARENT, connectBus } from "../src/index.js";
import type { Bus, Consumer } from "../src/index.js";

/** A pull reader: `collect()` on demand. */
class TestMetricReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const tracing = inMemoryTracing();
const reader = new TestMetricReader();
const meterProvider = new MeterProvider({ readers: [reader] });
const tracer = trace.getTracer("bus-tracing-test");
let bus: Bus;
const consumers: Consumer[] = [];

beforeAll(async () => {
  context.setGlobalContextManager(new AlsContextManager());
  trace.setGlobalTracerProvider(tracing.provider);
  metrics.setGlobalMeterProvider(meterProvider);
  bus = await connectBus({ servers: inject("servers").natsUrl, name: "bus-tracing-test", logger: noopLogger, prefix: "ttrace", partitions: 2 });
  await bus.ensureStreams();
});

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.stop()));
  for (const name of Object.values(bus.streams)) await bus.jsm.streams.delete(name).catch(() => false);
  await bus.close();
  await tracing.provider.shutdown();
  await meterProvider.shutdown();
  trace.disable();
  metrics.disable();
  context.disable();
});

async function spanNamed(name: string): Promise<ReadableSpan> {
  await expect.poll(async () => (await tracing.finishedSpans()).some((s) => s.name === name)).toBe(true);
  const span = (await tracing.finishedSpans()).find((s) => s.name === name);
  if (span === undefined) throw new Error(`span ${name} not exported`);
  return span;
}

async function dlqCount(stream: string): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === DLQ_MESSAGES_METRIC);
  if (metric === undefined || metric.dataPointType !== DataPointType.SUM) return 0;
  return metric.dataPoints.filter((p) => p.attributes["stream"] === stream).reduce((sum, p) => sum + p.value, 0);
}

describe("bus tracing", () => {
  it("puts publish and process spans into the publisher's trace, the consumer span a child of the producer span", async () => {
    const subject = bus.subjects.jobSubject("traced", "Build", "Commands");
    const seenInHandler: { traceId: string; spanId: string }[] = [];
    consumers.push(
      await bus.consume({
        stream: bus.streams.jobs,
        durable: "traced-runner",
        filterSubject: subject,
        schema: JobSchema,
        handler: () => {
          const sc = trace.getActiveSpan()?.spanContext();
          seenInHandler.push({ traceId: sc?.traceId ?? "none", spanId: sc?.spanId ?? "none" });
          return Promise.resolve();
        },
      }),
    );

    const root = await tracer.startActiveSpan("StartPipelineExecution", async (span) => {
      try {
        await bus.publish(subject, JobSchema, { jobId: "traced-1" }, { msgId: "traced-1" });
        return span.spanContext();
      } finally {
        span.end();
      }
    });

    const producer = await spanNamed(`publish ${subject}`);
    const consumer = await spanNamed(`process ${subject}`);
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(consumer.kind).toBe(SpanKind.CONSUMER);
    expect(producer.spanContext().traceId).toBe(root.traceId);
    expect(producer.parentSpanContext?.spanId).toBe(root.spanId);
    expect(consumer.spanContext().traceId).toBe(root.traceId);
    expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(consumer.parentSpanContext?.isRemote).toBe(true);
    // The handler ran with the consumer span active, so its own work joins the trace.
    expect(seenInHandler).toEqual([{ traceId: root.traceId, spanId: consumer.spanContext().spanId }]);
    expect(producer.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.destination.name": subject,
      "messaging.message.id": "traced-1",
      "sluice.bus.stream": bus.streams.jobs,
    });
    expect(consumer.attributes).toMatchObject({
      "messaging.consumer.group.name": "traced-runner",
      "messaging.message.id": "traced-1",
      "sluice.bus.delivery_count": 1,
      "sluice.bus.outcome": "ack",
    });
    expect(consumer.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("counts a dead-letter by stream and marks the consumer span as an error; the letter carries the trace", async () => {
    const subject = bus.subjects.jobSubject("doomed", "Build", "Commands");
    const before = await dlqCount(bus.streams.jobs);
    consumers.push(
      await bus.consume({
        stream: bus.streams.jobs,
        durable: "doomed-runner",
        filterSubject: subject,
        schema: JobSchema,
        handler: () => Promise.reject(new DomainError("ValidationException", "configuration.Image: is required")),
      }),
    );
    await bus.publish(subject, JobSchema, { jobId: "doomed-1" }, { msgId: "doomed-1" });

    const consumer = await spanNamed(`process ${subject}`);
    expect(consumer.status.code).toBe(SpanStatusCode.ERROR);
    expect(consumer.attributes["sluice.bus.outcome"]).toBe("dead-letter");
    expect(consumer.events.some((e) => e.name === "exception")).toBe(true);
    await expect.poll(() => dlqCount(bus.streams.jobs)).toBe(before + 1);

    const stored = await bus.jsm.streams.getMessage(bus.streams.dlq, { last_by_subj: bus.subjects.dlqSubject(bus.streams.jobs) });
    expect(stored?.header.get(TRACEPARENT)).toBe(`00-${consumer.spanContext().traceId}-${consumer.spanContext().spanId}-01`);
  });

  it("marks a publish that no stream stores as a failed producer span", async () => {
    await expect(bus.publish("ttrace.nowhere", JobSchema, { jobId: "lost" }, { msgId: "lost-1" })).rejects.toThrow();
    const producer = await spanNamed("publish ttrace.nowhere");
    expect(producer.status.code).toBe(SpanStatusCode.ERROR);
    expect(producer.spanContext().traceId).not.toBe("");
  });
});
