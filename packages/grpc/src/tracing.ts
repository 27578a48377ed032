import type { DescMethod } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import type { Metadata } from "@grpc/grpc-js";
import { SpanKind, SpanStatusCode, TraceFlags, context, trace } from "@opentelemetry/api";
import type { Attributes, Context, Span } from "@opentelemetry/api";

/**
 * Spans for gRPC calls, on `@opentelemetry/api` only (without an SDK every call here is a no-op).
 * The client starts an `rpc.client` span and sends its context as a W3C `traceparent` metadata
 * entry; the server continues it in an `rpc.server` span (named `sluice.v1.PipelineService/
 * CreatePipeline`) that is active while the handler runs, so the handler's own calls and bus
 * publishes join the same trace. Health and reflection calls are not traced.
 * `traceparent` is read and written by hand, as in @sluice/bus, so propagation does not depend on
 * which global propagator (if any) the process installed.
 */

/** The metadata key carrying the W3C trace context. */
export const TRACEPARENT_METADATA = "traceparent";

const TRACEPARENT_PATTERN = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

const tracer = trace.getTracer("@sluice/grpc");

/** `sluice.v1.PipelineService/CreatePipeline`: the span name of a method (OTel RPC conventions). */
export function rpcSpanName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

function rpcAttributes(method: DescMethod): Attributes {
  return { "rpc.system": "grpc", "rpc.service": method.parent.typeName, "rpc.method": method.name };
}

/** Writes `traceparent` for the span active in `ctx` into `metadata`; nothing when no valid span is active. */
export function injectTraceparent(ctx: Context, metadata: Metadata): void {
  const sc = trace.getSpanContext(ctx);
  if (sc === undefined || !trace.isSpanContextValid(sc)) return;
  const flags = (sc.traceFlags & TraceFlags.SAMPLED).toString(16).padStart(2, "0");
  metadata.set(TRACEPARENT_METADATA, `00-${sc.traceId}-${sc.spanId}-${flags}`);
}

/** `base` with the caller's span (from `traceparent` metadata) as remote parent; `base` itself when absent or malformed. */
export function contextFromMetadata(metadata: Metadata, base: Context = context.active()): Context {
  const value = metadata.get(TRACEPARENT_METADATA)[0];
  if (typeof value !== "string") return base;
  const match = TRACEPARENT_PATTERN.exec(value.trim().toLowerCase());
  if (match === null) return base;
  const [, traceId = "", spanId = "", flags = "00"] = match;
  const spanContext = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
  return trace.isSpanContextValid(spanContext) ? trace.setSpanContext(base, spanContext) : base;
}

/** A started RPC span. */
export interface RpcSpan {
  /** The context with this span active: run the handler in it (server) or inject it (client). */
  readonly context: Context;
  /**
   * Ends the span with the call's final status; a non-OK status sets span status ERROR with
   * `message`, and `error` (the server's original exception) is recorded. Later calls do nothing.
   */
  end(code: status, message?: string, error?: unknown): void;
  /**
   * Ends the span as CANCELLED without marking it an error: the caller went away (server) or
   * stopped reading early (client stream), which is its choice, not a failure. Later calls do nothing.
   */
  cancelled(reason: string): void;
}

function rpcSpan(span: Span, ctx: Context): RpcSpan {
  let ended = false;
  return {
    context: ctx,
    end(code, message, error) {
      if (ended) return;
      ended = true;
      span.setAttribute("rpc.grpc.status_code", code);
      if (code !== status.OK) {
        if (error instanceof Error) span.recordException(error);
        else if (error !== undefined) span.recordException(typeof error === "string" ? error : "non-Error thrown");
        const name = status[code] ?? String(code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: message === undefined || message === "" ? name : `${name}: ${message}` });
      }
      span.end();
    },
    cancelled(reason) {
      if (ended) return;
      ended = true;
      span.setAttribute("rpc.grpc.status_code", status.CANCELLED);
      span.addEvent("cancelled", { reason });
      span.end();
    },
  };
}

/** Starts the server span of an incoming call, child of the caller's span when it sent `traceparent`. */
export function startServerSpan(method: DescMethod, metadata: Metadata, peer?: string): RpcSpan {
  const parent = contextFromMetadata(metadata, context.active());
  const attributes = rpcAttributes(method);
  if (peer !== undefined && peer !== "") {
    const { host, port } = hostPort(peer);
    attributes["network.peer.address"] = host;
    if (port !== undefined) attributes["network.peer.port"] = port;
  }
  const span = tracer.startSpan(rpcSpanName(method), { kind: SpanKind.SERVER, attributes }, parent);
  return rpcSpan(span, trace.setSpan(parent, span));
}

/** Starts the client span of an outgoing call, child of the active span; `address` is the channel target (`host:port`). */
export function startClientSpan(method: DescMethod, address: string): RpcSpan {
  const parent = context.active();
  const attributes = rpcAttributes(method);
  const { host, port } = hostPort(address);
  attributes["server.address"] = host;
  if (port !== undefined) attributes["server.port"] = port;
  const span = tracer.startSpan(rpcSpanName(method), { kind: SpanKind.CLIENT, attributes }, parent);
  return rpcSpan(span, trace.setSpan(parent, span));
}

/** Splits `host:port`, `[::1]:port` or `dns:///host:port`; the whole string is the host when there is no port. */
function hostPort(address: string): { host: string; port?: number } {
  const match = /^(?:[a-z][a-z0-9+.-]*:(?:\/\/\/?)?)?\[?([^\]]*?)\]?:(\d+)$/i.exec(address);
  if (match === null) return { host: address };
  return { host: match[1] ?? address, port: Number(match[2]) };
}
