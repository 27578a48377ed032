import { createServer } from "node:http";
import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { context, propagation, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { Logger } from "@sluice/domain";
import { createMetrics } from "./metrics.js";
import { startTelemetry } from "./telemetry.js";
import type { Telemetry } from "./telemetry.js";

/** One OTLP/HTTP request as a collector receives it. */
interface Received {
  path: string;
  contentType: string;
  body: string;
}

/** A minimal OTLP/HTTP receiver: records each request and answers 200 with an empty JSON body. */
async function startCollector(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ path: req.url ?? "", contentType: req.headers["content-type"] ?? "", body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function recordingLogger(): Logger & { lines: { level: string; msg: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const logger: Logger = {
    debug: (msg, fields = {}) => void lines.push({ level: "debug", msg, fields }),
    info: (msg, fields = {}) => void lines.push({ level: "info", msg, fields }),
    warn: (msg, fields = {}) => void lines.push({ level: "warn", msg, fields }),
    error: (msg, fields = {}) => void lines.push({ level: "error", msg, fields }),
    child: () => logger,
  };
  return Object.assign(logger, { lines });
}

describe("startTelemetry", () => {
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.shutdown();
    telemetry = undefined;
  });

  it("without a collector still creates and propagates real span contexts, across await", async () => {
    telemetry = await startTelemetry({ serviceName: "test-svc" });
    const tracer = trace.getTracer("telemetry-test");
    const seen = await tracer.startActiveSpan("outer", async (outer) => {
      await new Promise((resolve) => setImmediate(resolve));
      const inner = tracer.startSpan("inner");
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      inner.end();
      outer.end();
      return { outer: outer.spanContext(), active: trace.getActiveSpan()?.spanContext(), inner, carrier };
    });
    expect(trace.isSpanContextValid(seen.outer)).toBe(true);
    expect(seen.active?.spanId).toBe(seen.outer.spanId);
    expect(seen.inner.spanContext().traceId).toBe(seen.outer.traceId);
    // The W3C propagator is installed: what grpc metadata and NATS headers carry.
    expect(seen.carrier["traceparent"]).toBe(`00-${seen.outer.traceId}-${seen.outer.spanId}-01`);
  });

  it("exports spans and metrics to the OTLP endpoint, flushing on shutdown", async () => {
    const collector = await startCollector();
    try {
      const memory = new InMemorySpanExporter();
      const started = await startTelemetry({
        serviceName: "orchestrator",
        serviceVersion: "1.2.3",
        otlpEndpoint: collector.url,
        spanProcessors: [new SimpleSpanProcessor(memory)],
      });
      trace.getTracer("telemetry-test").startSpan("sweep outbox").end();
      createMetrics("@sluice/orchestrator").executions.add(1, { status: "Succeeded" });
      // Read before shutdown, which empties the in-memory exporter. Export waits for the
      // resource's asynchronous attributes (host id), hence the poll.
      await expect.poll(() => memory.getFinishedSpans().length).toBe(1);
      expect(memory.getFinishedSpans()[0]?.resource.attributes).toMatchObject({ "service.name": "orchestrator", "service.version": "1.2.3" });
      await started.shutdown();

      const traces = collector.received.filter((r) => r.path === "/v1/traces");
      const metricsPosts = collector.received.filter((r) => r.path === "/v1/metrics");
      expect(traces.length).toBeGreaterThan(0);
      expect(metricsPosts.length).toBeGreaterThan(0);
      expect(traces.map((r) => r.body).join()).toContain("sweep outbox");
      expect(metricsPosts.map((r) => r.body).join()).toContain("sluice.executions");
    } finally {
      await collector.close();
    }
  });

  it("starts with an unreachable collector and shuts down within its bound, reporting the failed export", async () => {
    const collector = await startCollector();
    await collector.close(); // the port is now closed: connection refused
    const logger = recordingLogger();
    const started = await startTelemetry({ serviceName: "runner", otlpEndpoint: collector.url, shutdownTimeoutMs: 1_000, logger });
    trace.getTracer("telemetry-test").startSpan("doomed export").end();
    const t0 = Date.now();
    await expect(started.shutdown()).resolves.toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(1_000 + 1_000);
    expect(logger.lines.some((l) => l.level === "warn" && (l.msg.startsWith("opentelemetry") || l.msg.startsWith("telemetry shutdown")))).toBe(true);
  });

  it("unregisters on shutdown, so spans are no-ops again and a later start works", async () => {
    const first = await startTelemetry({ serviceName: "a" });
    await first.shutdown();
    await first.shutdown(); // idempotent
    const after = trace.getTracer("telemetry-test").startSpan("after");
    expect(trace.isSpanContextValid(after.spanContext())).toBe(false);
    after.end();
    telemetry = await startTelemetry({ serviceName: "b" });
    const again = trace.getTracer("telemetry-test-2").startSpan("again");
    expect(trace.isSpanContextValid(again.spanContext())).toBe(true);
    again.end();
  });

  it("rejects an endpoint that is not an http(s) URL, naming the option", async () => {
    await expect(startTelemetry({ serviceName: "x", otlpEndpoint: "grpc://collector:4317" })).rejects.toThrow(/^otlpEndpoint: /);
  });
});
