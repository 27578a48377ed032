import { trace } from "@opentelemetry/api";
import { pino } from "pino";
import type { DestinationStream, Logger as PinoLogger } from "pino";
import { maskUserinfo } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import type { LogLevel } from "./config.js";

/** Field names whose values never reach a log line, at the top level or one level down. */
export const REDACTED_KEYS = ["token", "approvalToken", "authorization", "url", "secret", "password", "secretKey"] as const;

/** The pino redact paths built from `REDACTED_KEYS`. */
export const REDACT_PATHS: readonly string[] = REDACTED_KEYS.flatMap((key) => [key, `*.${key}`]);

/**
 * Field names redacted at any depth, child bindings included: the keys above,
 * and any `secret*`, `*Secret`, `*Token`, `*Password` (pino's paths cannot say
 * "every key starting with"). `url` is listed for presigned URLs.
 */
const REDACTED_KEY_PATTERN = /^(token|approvalToken|authorization|url|password|passwd|secret.*|.*Secret|.*Token|.*Password|.*Authorization)$/i;

const CENSOR = "[REDACTED]";

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
    formatters: { level: (label: string) => ({ level: label }), log: redactFields, bindings: redactFields },
    redact: { paths: [...REDACT_PATHS], censor: CENSOR },
    // pino serializes only `err` by default; callers also write `error`.
    serializers: { err: errorFields, error: errorFields },
    mixin: traceFields,
  };
  const root = opts.destination === undefined ? pino(options) : pino(options, opts.destination);
  return wrap(root);
}

/**
 * Redacts secret-named fields at any depth and URL userinfo
 * (`https://user:pass@host` → `https://****@host`) in every string value.
 */
function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  return redactObject(fields, 0);
}

function redactObject(fields: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = REDACTED_KEY_PATTERN.test(key) && value !== undefined && value !== "" ? CENSOR : redactValue(value, depth + 1);
  return out;
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === "string") return maskUserinfo(value);
  if (depth > 8 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  // Errors and other class instances keep their serializers; plain objects are walked.
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  return redactObject(value as Record<string, unknown>, depth);
}

/** pino's error serializer, then the same redaction (an error message may quote a URL with credentials). */
function errorFields(err: unknown): unknown {
  const fields: unknown = pino.stdSerializers.err(err as Error);
  return fields !== null && typeof fields === "object" ? redactObject(fields as Record<string, unknown>, 0) : redactValue(fields, 0);
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
