import { z } from "zod";

/**
 * Service configuration from environment variables. Each service declares one zod schema over
 * the raw variables (spreading `commonEnv`), and `main.ts` parses it once with `loadConfig`.
 * Errors list every bad variable at once, so an operator fixes them in one round.
 */

/** One invalid variable. */
export interface ConfigIssue {
  /** The variable's name, e.g. `GRPC_PORT`. */
  readonly variable: string;
  readonly message: string;
}

/** Thrown by `loadConfig`; the message has one `VAR_NAME: message` line per issue. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(`invalid configuration:\n${issues.map((i) => `  ${i.variable}: ${i.message}`).join("\n")}`);
  }
}

/**
 * Parses `env` with `schema`. Empty values count as unset (so `FOO=` falls back to the default).
 * Throws `ConfigError` naming every bad variable.
 */
export function loadConfig<T extends z.ZodType>(schema: T, env: Readonly<Record<string, string | undefined>>): z.output<T> {
  const cleaned: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value !== "") cleaned[name] = value;
  }
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue): ConfigIssue => {
    const variable = issue.path.length === 0 ? "(environment)" : issue.path.map(String).join(".");
    const first = issue.path[0];
    const missing = issue.code === "invalid_type" && typeof first === "string" && cleaned[first] === undefined;
    return { variable, message: missing ? "is required" : issue.message };
  });
  throw new ConfigError(issues);
}

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration in whole milliseconds: `1500` (ms), `1500ms`, `10s`, `1.5m`, `2h`. */
export function durationMs(): z.ZodType<number, string> {
  return z.string().transform((raw, ctx) => {
    const match = DURATION_PATTERN.exec(raw.trim());
    if (match === null) {
      ctx.addIssue({ code: "custom", message: `must be a duration like 500, 500ms, 10s, 5m or 1h, got "${raw}"` });
      return z.NEVER;
    }
    const [, amount = "0", unit = "ms"] = match;
    return Math.round(Number(amount) * (UNIT_MS[unit] ?? 1));
  });
}

/** A TCP port 0–65535 (0 = pick a free one). */
export function port(): z.ZodType<number, string> {
  return z.string().transform((raw, ctx) => {
    const n = Number(raw.trim());
    if (!/^\d+$/.test(raw.trim()) || n > 65_535) {
      ctx.addIssue({ code: "custom", message: `must be a port number 0-65535, got "${raw}"` });
      return z.NEVER;
    }
    return n;
  });
}

/** A positive integer, e.g. a concurrency. */
export function positiveInt(): z.ZodType<number, string> {
  return z.string().transform((raw, ctx) => {
    if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1) {
      ctx.addIssue({ code: "custom", message: `must be a positive integer, got "${raw}"` });
      return z.NEVER;
    }
    return Number(raw);
  });
}

const NATS_PROTOCOLS = new Set(["nats:", "tls:", "ws:", "wss:"]);

/** One or more NATS URLs, comma-separated (`nats://host:4222,nats://other:4222`). */
export function natsUrl(): z.ZodType<string, string> {
  return z.string().refine(
    (raw) =>
      raw.split(",").every((entry) => {
        if (!URL.canParse(entry.trim())) return false;
        return NATS_PROTOCOLS.has(new URL(entry.trim()).protocol);
      }),
    { message: "must be one or more nats:// URLs, comma-separated" },
  );
}

/** A MongoDB connection string. */
export function mongoUrl(): z.ZodType<string, string> {
  return z.string().refine((raw) => /^mongodb(\+srv)?:\/\/\S+$/.test(raw), { message: "must be a mongodb:// or mongodb+srv:// URL" });
}

/** Log levels accepted by `LOG_LEVEL`. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Variables every service reads; spread into a service's `z.object({...commonEnv, ...})`.
 * A service without MongoDB (action-runner) leaves out `MONGO_URL`: `const { MONGO_URL, ...rest } = commonEnv`.
 */
export const commonEnv = {
  /** NATS server URL(s) with JetStream enabled. */
  NATS_URL: natsUrl(),
  /** MongoDB (or FerretDB) connection string. */
  MONGO_URL: mongoUrl(),
  /** Interface the gRPC server binds to. */
  GRPC_HOST: z.string().default("127.0.0.1"),
  /** gRPC port; 0 picks a free one (tests). */
  GRPC_PORT: port().default(0),
  /** Token table `<principal>=<role>+<role>:<token>,...`, parsed by @sluice/grpc's parseTokenTable. */
  SLUICE_AUTH_TOKENS: z.string(),
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
  /** Deadline for a graceful shutdown after SIGTERM. */
  SHUTDOWN_GRACE_MS: durationMs().default(10_000),
  /**
   * OTLP/HTTP collector base URL (`http://otel-collector:4318`); traces go to `/v1/traces`, metrics
   * to `/v1/metrics`. Optional: unset, spans still propagate (trace ids in logs) but nothing is
   * exported, and a missing or unreachable collector never fails startup (see `startTelemetry`).
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
  /** Stream/subject prefix isolating a test's bus (see @sluice/bus createCatalog). */
  SLUICE_BUS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, { message: "must contain only letters, digits, '_' and '-'" })
    .optional(),
};
