import { readFileSync } from "node:fs";
import { z } from "zod";
import { parseEgressAllow } from "./egress.js";
import type { EgressRule } from "./egress.js";
import { DEV_MODE_VARIABLE, weakTokens } from "./token-policy.js";

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
 * Also applies the rules every service shares to the variables its schema reads: tokens must
 * be strong unless `SLUICE_DEV_MODE=true` (see token-policy.ts), TLS files come in pairs.
 * Throws `ConfigError` naming every bad variable (never a token's value).
 */
export function loadConfig<T extends z.ZodType>(schema: T, env: Readonly<Record<string, string | undefined>>): z.output<T> {
  const cleaned: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value !== "") cleaned[name] = value;
  }
  const result = schema.safeParse(cleaned);
  const issues = result.success
    ? []
    : result.error.issues.map((issue): ConfigIssue => {
        const variable = issue.path.length === 0 ? "(environment)" : issue.path.map(String).join(".");
        const first = issue.path[0];
        const missing = issue.code === "invalid_type" && typeof first === "string" && cleaned[first] === undefined;
        return { variable, message: missing ? "is required" : issue.message };
      });
  issues.push(...sharedRuleIssues(cleaned, variablesOf(schema, cleaned)));
  if (result.success && issues.length === 0) return result.data;
  throw new ConfigError(issues);
}

/** True when `SLUICE_DEV_MODE` is `true` (or `1`): weak tokens are accepted, for a laptop only. */
export function isDevMode(env: Readonly<Record<string, string | undefined>>): boolean {
  const value = env[DEV_MODE_VARIABLE]?.trim().toLowerCase();
  return value === "true" || value === "1";
}

/** The variables a schema reads (an object schema's keys; otherwise every variable set). */
function variablesOf(schema: z.ZodType, env: Readonly<Record<string, string>>): ReadonlySet<string> {
  return new Set(Object.keys(schema instanceof z.ZodObject ? schema.shape : env));
}

function sharedRuleIssues(env: Readonly<Record<string, string>>, variables: ReadonlySet<string>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const devMode = env[DEV_MODE_VARIABLE];
  if (devMode !== undefined && !["true", "false", "1", "0"].includes(devMode.trim().toLowerCase())) {
    issues.push({ variable: DEV_MODE_VARIABLE, message: "must be true or false" });
  }
  if (!isDevMode(env)) {
    for (const weak of weakTokens(env, variables)) {
      issues.push({ variable: weak.variable, message: `${weak.message}; use a random token of 32+ characters (openssl rand -hex 32), or set ${DEV_MODE_VARIABLE}=true on a laptop` });
    }
  }
  const pairs: [string, string][] = [
    ["GRPC_TLS_CERT", "GRPC_TLS_KEY"],
    ["GRPC_CLIENT_TLS_CERT", "GRPC_CLIENT_TLS_KEY"],
  ];
  for (const [a, b] of pairs) {
    if (!variables.has(a)) continue;
    if (env[a] !== undefined && env[b] === undefined) issues.push({ variable: b, message: `is required when ${a} is set` });
    if (env[b] !== undefined && env[a] === undefined) issues.push({ variable: a, message: `is required when ${b} is set` });
  }
  if (variables.has("GRPC_TLS_CLIENT_AUTH") && env["GRPC_TLS_CLIENT_AUTH"] === "require") {
    for (const needed of ["GRPC_TLS_CERT", "GRPC_TLS_CA"]) {
      if (env[needed] === undefined) issues.push({ variable: needed, message: "is required when GRPC_TLS_CLIENT_AUTH=require" });
    }
  }
  // Client TLS is on only with a CA to check servers against: a certificate alone would go unused.
  if (variables.has("GRPC_CLIENT_TLS_CA") && env["GRPC_CLIENT_TLS_CERT"] !== undefined && env["GRPC_CLIENT_TLS_CA"] === undefined) {
    issues.push({ variable: "GRPC_CLIENT_TLS_CA", message: "is required when GRPC_CLIENT_TLS_CERT is set" });
  }
  return issues;
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

/** A PEM file, read at startup: its contents (an unreadable file is a config error naming the path). */
export function pemFile(): z.ZodType<Buffer, string> {
  return z.string().transform((path, ctx) => {
    try {
      return readFileSync(path);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
      return z.NEVER;
    }
  });
}

/**
 * gRPC TLS, one group for every service (spread into its schema; also part of `commonEnv`).
 * Server side: GRPC_TLS_CERT + GRPC_TLS_KEY turn TLS on; GRPC_TLS_CLIENT_AUTH=require makes it
 * mutual (client certificates must chain to GRPC_TLS_CA). Client side, for calls to other
 * services: GRPC_CLIENT_TLS_CA (the CA their certificates chain to) turns TLS on;
 * GRPC_CLIENT_TLS_CERT + GRPC_CLIENT_TLS_KEY is the certificate presented to servers requiring one.
 */
export const grpcTlsEnv = {
  GRPC_TLS_CERT: pemFile().optional(),
  GRPC_TLS_KEY: pemFile().optional(),
  GRPC_TLS_CA: pemFile().optional(),
  /** `require`: mutual TLS. Unset or `none`: client certificates are not asked for. */
  GRPC_TLS_CLIENT_AUTH: z.enum(["none", "require"]).optional(),
  GRPC_CLIENT_TLS_CA: pemFile().optional(),
  GRPC_CLIENT_TLS_CERT: pemFile().optional(),
  GRPC_CLIENT_TLS_KEY: pemFile().optional(),
};

/** The server TLS settings `createServer` of @sluice/grpc takes. */
export interface GrpcServerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer | undefined;
  readonly requireClientCert: boolean;
}

/** The client TLS settings `createClient` of @sluice/grpc takes. */
export interface GrpcClientTls {
  readonly ca: Buffer;
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
}

/** `EGRESS_ALLOW`: comma-separated CIDRs and host names outbound HTTP may reach although private. */
export function egressAllow(): z.ZodType<EgressRule[], string> {
  return z.string().transform((spec, ctx) => {
    try {
      return parseEgressAllow(spec);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  });
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
  /** Interface the gRPC server binds to: loopback unless told otherwise (compose sets 0.0.0.0 inside its network). */
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
  ...grpcTlsEnv,
  /** Private or loopback destinations outbound HTTP (NotificationUrl) may reach; see egress.ts. */
  EGRESS_ALLOW: egressAllow().optional(),
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
  readonly GRPC_TLS_CERT?: Buffer | undefined;
  readonly GRPC_TLS_KEY?: Buffer | undefined;
  readonly GRPC_TLS_CA?: Buffer | undefined;
  readonly GRPC_TLS_CLIENT_AUTH?: "none" | "require" | undefined;
  readonly GRPC_CLIENT_TLS_CA?: Buffer | undefined;
  readonly GRPC_CLIENT_TLS_CERT?: Buffer | undefined;
  readonly GRPC_CLIENT_TLS_KEY?: Buffer | undefined;
  readonly EGRESS_ALLOW?: EgressRule[] | undefined;
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
  /** TLS of this service's gRPC server; undefined: plaintext. */
  grpcTls?: GrpcServerTls | undefined;
  /** TLS of this service's calls to other services; undefined: plaintext. */
  grpcClientTls?: GrpcClientTls | undefined;
  /** EGRESS_ALLOW, parsed; undefined or empty: outbound HTTP reaches public addresses only. */
  egressAllow?: readonly EgressRule[] | undefined;
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
    // Present only when set, so a plaintext configuration looks as it did before TLS existed.
    ...(e.GRPC_TLS_CERT !== undefined && e.GRPC_TLS_KEY !== undefined
      ? { grpcTls: { cert: e.GRPC_TLS_CERT, key: e.GRPC_TLS_KEY, ca: e.GRPC_TLS_CA, requireClientCert: e.GRPC_TLS_CLIENT_AUTH === "require" } }
      : {}),
    ...(e.GRPC_CLIENT_TLS_CA !== undefined ? { grpcClientTls: { ca: e.GRPC_CLIENT_TLS_CA, cert: e.GRPC_CLIENT_TLS_CERT, key: e.GRPC_CLIENT_TLS_KEY } } : {}),
    ...(e.EGRESS_ALLOW !== undefined ? { egressAllow: e.EGRESS_ALLOW } : {}),
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
