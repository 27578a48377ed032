import { trace } from "@opentelemetry/api";
import { pino } from "pino";
import type { DestinationStream, Logger as PinoLogger } from "pino";
import type { Logger } from "@sluice/domain";
import type { LogLevel } from "./config.js";

/** Field names whose values never reach a log line, at the top level or one level down. */
export const REDACTED_KEYS = ["token", "authorization", "url", "secret", "password", "secretKey"] as const;

/** The pino redact paths built from `REDACTED_KEYS`. */
export const REDACT_PATHS: readonly string[] = REDACTED_KEYS.flatMap((key) => [key, `*.${key}`]);

/** Options of `createLogger`. */
export interface CreateLoggerOptions {
  /** Added to every line as `service`. */
  readonly service: string;
  /** Minimum level (default info). */
  readonly level?: LogLevel | undefined;
  /** Where JSON lines go (default stdout); tests pass an in-memory stream. */
  readonly destination?: DestinationStream | undefined;
}

/**
 * The pino implementation of `Logger`: one JSON object per line with `level` as a label, ISO
 * `time`, `service`, the active span's `trace_id`/`span_id`, and secrets redacted.
 */
export function createLogger(opts: CreateLoggerOptions): Logger {
  const options = {
    level: opts.level ?? "info",
    base: { service: opts.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: [...REDACT_PATHS], censor: "[REDACTED]" },
    // pino serializes only `err` by default; callers also write `error`.
    serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    mixin: traceFields,
  };
  const root = opts.destination === undefined ? pino(options) : pino(options, opts.destination);
  return wrap(root);
}

function traceFields(): Record<string, string> {
  const sc = trace.getActiveSpan()?.spanContext();
  if (sc === undefined || !trace.isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

function wrap(p: PinoLogger): Logger {
  return {
    debug: (msg, fields) => (fields === undefined ? p.debug(msg) : p.debug(fields, msg)),
    info: (msg, fields) => (fields === undefined ? p.info(msg) : p.info(fields, msg)),
    warn: (msg, fields) => (fields === undefined ? p.warn(msg) : p.warn(fields, msg)),
    error: (msg, fields) => (fields === undefined ? p.error(msg) : p.error(fields, msg)),
    child: (fields) => wrap(p.child(fields)),
  };
}
