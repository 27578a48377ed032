// Client and server spans over a real connection, recorded by an in-memory exporter registered
// here (main.ts registers the real SDK through @sluice/service-kit).
import { SpanKind, SpanStatusCode, context, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { DomainError } from "@sluice/domain";
import { AlsContextManager, inMemoryTracing } from "@sluice/testkit";
import { PipelineService } from "@sluice/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenAuthenticator } from "../src/auth.js";
import { createClient } from "../src/client.js";
import type { Client } from "../src/client.js";
import { createServer } from "../src/server.js";
import type { ServiceImpl, SluiceServer } from "../src/server.js";
import { TRACEPARENT_METADATA, rpcSpanName } from "../src/tracing.js";
import { WatchTestService, recordingLogger } from "./fixtures.js";

const tracing = inMemoryTracing();
const tracer = trace.getTracer("grpc-tracing-test");
const token = "operator-token";

/** What the CreatePipeline handler saw. */
const seen: { traceparent: unknown[]; activeSpanId: string[] } = { traceparent: [], activeSpanId: [] };

/** A tiny PipelineService: CreatePipeline answers or throws; every other method is unimplemented. */
function pipelineImpl(): ServiceImpl<typeof PipelineService> {
  const impl: Record<string, unknown> = {};
  for (const method of PipelineService.methods) {
    impl[method.localName] = () => Promise.reject(new Error(`${method.name} is not part of this test`));
  }
  impl["createPipeline"] = (req: { pipeline?: { name: string } }, ctx: { metadata: { get(key: string): unknown[] } }) => {
    seen.traceparent.push(ctx.metadata.get(TRACEPARENT_METADATA)[0]);
    seen.activeSpanId.push(trace.getActiveSpan()?.spanContext().spanId ?? "none");
    if (req.pipeline?.name === "taken") return Promise.reject(new DomainError("PipelineNameInUseException", "pipeline taken already exists"));
    return Promise.resolve({ pipeline: req.pipeline });
  };
  return impl as ServiceImpl<typeof PipelineService>;
}

let server: SluiceServer;
let port: number;
let pipelines: Client<typeof PipelineService>;
let watch: Client<typeof WatchTestService>;

beforeAll(async () => {
  context.setGlobalContextManager(new AlsContextManager());
  trace.setGlobalTracerProvider(tracing.provider);
  server = createServer({
    logger: recordingLogger(),
    auth: createTokenAuthenticator([{ principal: "op", roles: ["operator", "viewer"], token }]),
    permissions: { CreatePipeline: ["operator"], WatchApprovals: ["viewer"], ListApprovals: ["viewer"] },
  });
  server.add(PipelineService, pipelineImpl());
  server.add(WatchTestService, {
    async *watchApprovals(req) {
      for (let i = 0; i < 3; i++) {
        // Each message when the previous one has gone out, as a real watch does.
        await new Promise((resolve) => setImmediate(resolve));
        yield { token: `t-${i}`, pipelineName: req.pipelineName };
      }
    },
    listApprovals: () => Promise.resolve({}),
  });
  port = await server.listen("127.0.0.1", 0);
  pipelines = createClient(PipelineService, `127.0.0.1:${port}`, { token, deadlineMs: 10_000 });
  watch = createClient(WatchTestService, `127.0.0.1:${port}`, { token });
});

afterAll(async () => {
  pipelines.close();
  watch.close();
  await server.stop(1000);
  await tracing.provider.shutdown();
  trace.disable();
  context.disable();
});

/** The exported spans of one trace, once `count` of them have ended. */
async function spansOf(traceId: string, count: number): Promise<ReadableSpan[]> {
  const ofTrace = async (): Promise<ReadableSpan[]> => {
    return (await tracing.finishedSpans()).filter((s) => s.spanContext().traceId === traceId);
  };
  await expect.poll(async () => (await ofTrace()).length).toBe(count);
  return ofTrace();
}

function only(spans: ReadableSpan[], kind: SpanKind): ReadableSpan {
  const found = spans.filter((s) => s.kind === kind);
  expect(found).toHaveLength(1);
  return found[0] as ReadableSpan;
}

describe("gRPC tracing", () => {
  it("puts client and server span of a call into the caller's trace, the server span a child of the client span", async () => {
    const root = await tracer.startActiveSpan("cli create-pipeline", async (span) => {
      try {
        await pipelines.createPipeline({ pipeline: { name: "web" } });
        return span.spanContext();
      } finally {
        span.end();
      }
    });

    const spans = await spansOf(root.traceId, 3);
    const client = only(spans, SpanKind.CLIENT);
    const serverSpan = only(spans, SpanKind.SERVER);
    expect(client.name).toBe("sluice.v1.PipelineService/CreatePipeline");
    expect(serverSpan.name).toBe("sluice.v1.PipelineService/CreatePipeline");
    expect(client.parentSpanContext?.spanId).toBe(root.spanId);
    expect(serverSpan.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    expect(serverSpan.parentSpanContext?.isRemote).toBe(true);
    expect(serverSpan.attributes).toMatchObject({
      "rpc.system": "grpc",
      "rpc.service": "sluice.v1.PipelineService",
      "rpc.method": "CreatePipeline",
      "rpc.grpc.status_code": 0,
    });
    expect(client.attributes).toMatchObject({ "rpc.system": "grpc", "server.address": "127.0.0.1", "server.port": port, "rpc.grpc.status_code": 0 });
    expect(serverSpan.status.code).toBe(SpanStatusCode.UNSET);
    // The handler ran with the server span active, and the metadata carried the client span.
    expect(seen.activeSpanId.at(-1)).toBe(serverSpan.spanContext().spanId);
    expect(seen.traceparent.at(-1)).toBe(`00-${root.traceId}-${client.spanContext().spanId}-01`);
  });

  it("starts a new trace for a call made outside any span", async () => {
    await pipelines.createPipeline({ pipeline: { name: "orphan" } });
    const traceparent = String(seen.traceparent.at(-1));
    const traceId = traceparent.split("-")[1] ?? "";
    const spans = await spansOf(traceId, 2);
    const client = only(spans, SpanKind.CLIENT);
    expect(client.parentSpanContext).toBeUndefined();
    expect(only(spans, SpanKind.SERVER).parentSpanContext?.spanId).toBe(client.spanContext().spanId);
  });

  it("marks both spans as errors with the gRPC status when the handler throws", async () => {
    const traceId = await tracer.startActiveSpan("cli", async (span) => {
      try {
        await expect(pipelines.createPipeline({ pipeline: { name: "taken" } })).rejects.toThrow("pipeline taken already exists");
        return span.spanContext().traceId;
      } finally {
        span.end();
      }
    });
    const spans = await spansOf(traceId, 3);
    for (const kind of [SpanKind.CLIENT, SpanKind.SERVER]) {
      const span = only(spans, kind);
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: "ALREADY_EXISTS: pipeline taken already exists" });
      expect(span.attributes["rpc.grpc.status_code"]).toBe(6);
    }
    expect(only(spans, SpanKind.SERVER).events.some((e) => e.name === "exception")).toBe(true);
  });

  it("traces a server-streaming call from first message to end", async () => {
    const traceId = await tracer.startActiveSpan("cli watch", async (span) => {
      try {
        const got: string[] = [];
        for await (const a of watch.watchApprovals({ pipelineName: "web" })) got.push(a.token);
        expect(got).toEqual(["t-0", "t-1", "t-2"]);
        return span.spanContext().traceId;
      } finally {
        span.end();
      }
    });
    const spans = await spansOf(traceId, 3);
    const client = only(spans, SpanKind.CLIENT);
    const serverSpan = only(spans, SpanKind.SERVER);
    expect(serverSpan.name).toBe(rpcSpanName(WatchTestService.method.watchApprovals));
    expect(serverSpan.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    expect([client.status.code, serverSpan.status.code]).toEqual([SpanStatusCode.UNSET, SpanStatusCode.UNSET]);
  });
});
