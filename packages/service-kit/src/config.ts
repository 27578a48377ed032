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
  // NATS credentials: one user per service (see @sluice/bus permissions.ts); TLS files optional.
  /** NATS user; unset: connect without credentials (only a server without authorization accepts that). */
  NATS_USER: z.string().optional(),
  /** Password of NATS_USER. */
  NATS_PASSWORD: z.string().optional(),
  /** CA bundle that verifies the NATS server's certificate. */
  NATS_TLS_CA: z.string().optional(),
  /** Client certificate and key for mutual TLS with NATS (both or neither). */
  NATS_TLS_CERT: z.string().optional(),
  NATS_TLS_KEY: z.string().optional(),
  /** Stream/subject prefix isolating a test's bus (see @sluice/bus createCatalog). */
  SLUICE_BUS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, { message: "must contain only letters, digits, '_' and '-'" })
    .optional(),
};

/**
 * What `commonConfig` reads from a parsed environment: the common variables every service has.
 * The bus variables (`NATS_URL`, `SLUICE_BUS_PREFIX`) and `MONGO_URL` may be missing, for a
 * service that leaves them out of its schema; `SLUICE_AUTH_TOKENS` may have been transformed
 * (e.g. into a parsed token table).
 */
export interface CommonEnvInput {
  readonly NATS_URL?: string;
  readonly SLUICE_BUS_PREFIX?: string | undefined;
  readonly NATS_USER?: string | undefined;
  readonly NATS_PASSWORD?: string | undefined;
  readonly NATS_TLS_CA?: string | undefined;
  readonly NATS_TLS_CERT?: string | undefined;
  readonly NATS_TLS_KEY?: string | undefined;
  readonly MONGO_URL?: string;
  readonly GRPC_HOST: string;
  readonly GRPC_PORT: number;
  readonly SLUICE_AUTH_TOKENS: unknown;
  readonly LOG_LEVEL: LogLevel;
  readonly OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  readonly SHUTDOWN_GRACE_MS: number;
}

/**
 * The common part of a service's resolved configuration (camelCase, defaults applied).
 * `Tokens` is the type of `authTokens`: the raw `SLUICE_AUTH_TOKENS` string, or whatever the
 * service's schema transformed it into.
 */
export interface CommonConfig<Tokens = string> {
  natsUrl: string;
  mongoUrl: string;
  grpcHost: string;
  grpcPort: number;
  /** SLUICE_AUTH_TOKENS, the token table (`<principal>=<role>+<role>:<token>,...`). */
  authTokens: Tokens;
  logLevel: LogLevel;
  /** OTEL_EXPORTER_OTLP_ENDPOINT: where traces and metrics go (unset: nowhere). */
  otlpEndpoint?: string | undefined;
  shutdownGraceMs: number;
  /** SLUICE_BUS_PREFIX; undefined: the production subjects (`sluice.…`). */
  busPrefix: string | undefined;
  /** NATS_USER + NATS_PASSWORD; undefined: no credentials. */
  natsCredentials?: { user: string; password: string } | undefined;
  /** NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY; undefined: none set. */
  natsTls?: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined } | undefined;
}

type BusFields = "natsUrl" | "busPrefix" | "natsCredentials" | "natsTls";

/**
 * What `commonConfig(e)` returns for an environment `E`: `natsUrl` and `busPrefix` only when `E`
 * has `NATS_URL`, `mongoUrl` only when it has `MONGO_URL`, `authTokens` typed as `E`'s tokens.
 */
export type CommonConfigOf<E extends CommonEnvInput> = Omit<CommonConfig<E["SLUICE_AUTH_TOKENS"]>, BusFields | "mongoUrl"> &
  (E extends { readonly NATS_URL: string } ? Pick<CommonConfig, BusFields> : unknown) &
  (E extends { readonly MONGO_URL: string } ? Pick<CommonConfig, "mongoUrl"> : unknown);

/**
 * Maps the common variables of a parsed environment (see `commonEnv`) to their camelCase
 * configuration fields; a service's loader spreads it: `{ ...commonConfig(e), mongoDb: e.MONGO_DB }`.
 * `otlpEndpoint` is always present (possibly undefined); `natsUrl` and `busPrefix` (possibly
 * undefined) are present when `e` has `NATS_URL`, and `mongoUrl` when it has `MONGO_URL`.
 */
export function commonConfig<E extends CommonEnvInput>(e: E): CommonConfigOf<E> {
  return {
    ...(e.NATS_URL !== undefined ? { natsUrl: e.NATS_URL } : {}),
    ...(e.MONGO_URL !== undefined ? { mongoUrl: e.MONGO_URL } : {}),
    grpcHost: e.GRPC_HOST,
    grpcPort: e.GRPC_PORT,
    authTokens: e.SLUICE_AUTH_TOKENS,
    logLevel: e.LOG_LEVEL,
    otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    ...(e.NATS_URL !== undefined ? { busPrefix: e.SLUICE_BUS_PREFIX, ...natsAuthConfig(e) } : {}),
  } as CommonConfigOf<E>;
}

/** NATS credentials and TLS files; a half-given pair is an error naming the missing variable. */
function natsAuthConfig(e: CommonEnvInput): Pick<CommonConfig, "natsCredentials" | "natsTls"> {
  const issues: ConfigIssue[] = [];
  if ((e.NATS_USER === undefined) !== (e.NATS_PASSWORD === undefined)) {
    issues.push({ variable: e.NATS_USER === undefined ? "NATS_USER" : "NATS_PASSWORD", message: "is required when NATS_USER/NATS_PASSWORD is set" });
  }
  if ((e.NATS_TLS_CERT === undefined) !== (e.NATS_TLS_KEY === undefined)) {
    issues.push({ variable: e.NATS_TLS_CERT === undefined ? "NATS_TLS_CERT" : "NATS_TLS_KEY", message: "is required when NATS_TLS_CERT/NATS_TLS_KEY is set" });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const tlsSet = e.NATS_TLS_CA !== undefined || e.NATS_TLS_CERT !== undefined;
  // Only the fields that are set, so a configuration without NATS credentials looks as before.
  return {
    ...(e.NATS_USER !== undefined && e.NATS_PASSWORD !== undefined ? { natsCredentials: { user: e.NATS_USER, password: e.NATS_PASSWORD } } : {}),
    ...(tlsSet ? { natsTls: { caFile: e.NATS_TLS_CA, certFile: e.NATS_TLS_CERT, keyFile: e.NATS_TLS_KEY } } : {}),
  };
}
