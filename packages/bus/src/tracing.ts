import { context, trace, TraceFlags } from "@opentelemetry/api";
import type { Context } from "@opentelemetry/api";
import type { MsgHdrs } from "@nats-io/transport-node";

/**
 * W3C trace-context propagation over NATS headers. Built on `@opentelemetry/api` alone (no SDK,
 * no global propagator needed): the publisher writes `traceparent` from the active span, the
 * consumer turns it back into a remote parent. Without an SDK both sides are no-ops.
 */

/** The W3C header name. */
export const TRACEPARENT = "traceparent";

const TRACEPARENT_PATTERN = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** `00-<trace-id>-<span-id>-<flags>` for the active span, or undefined when there is none. */
export function activeTraceparent(): string | undefined {
  const span = trace.getActiveSpan();
  if (span === undefined) return undefined;
  const sc = span.spanContext();
  if (!trace.isSpanContextValid(sc)) return undefined;
  const flags = (sc.traceFlags & TraceFlags.SAMPLED).toString(16).padStart(2, "0");
  return `00-${sc.traceId}-${sc.spanId}-${flags}`;
}

/** The context to run a consumer handler in: the publisher's span as remote parent, if any. */
export function contextFromHeaders(headers: MsgHdrs | undefined): Context {
  return contextFromTraceparent(headers?.get(TRACEPARENT));
}

/**
 * `base` with the span a `traceparent` value names as remote parent; `base` itself when the value
 * is missing or malformed. Also for traceparents kept in documents: an orchestrator that stores
 * `activeTraceparent()` with an execution can publish its later jobs inside
 * `context.with(contextFromTraceparent(stored), ...)`, so the whole execution is one trace.
 */
export function contextFromTraceparent(value: string | undefined, base: Context = context.active()): Context {
  if (value === undefined || value === "") return base;
  const match = TRACEPARENT_PATTERN.exec(value.trim().toLowerCase());
  if (match === null) return base;
  const [, traceId = "", spanId = "", flags = "00"] = match;
  const spanContext = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
  if (!trace.isSpanContextValid(spanContext)) return base;
  return trace.setSpanContext(base, spanContext);
}
