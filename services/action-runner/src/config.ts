import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { DEFAULT_RUNNER_POOL, runnerPoolProblem } from "@sluice/domain";
import { parseTokenTable } from "@sluice/grpc";
import { ConfigError, GIT_HOST_ENV, commonConfig, commonEnv, durationMs, isDevMode, loadConfig, positiveInt } from "@sluice/service-kit";
import type { CommonConfig } from "@sluice/service-kit";
import { z } from "zod";
import type { JobIsolationSetting } from "./isolation.js";
import { RUNNER_PROVIDERS } from "./providers/table.js";
import type { RunnerProvider } from "./providers/table.js";

// The runner keeps no state in MongoDB: everything common except MONGO_URL. Nor does it take
// the token table: see SLUICE_AUTH_TOKENS below.
const { MONGO_URL: _unusedMongoUrl, SLUICE_AUTH_TOKENS: _unusedTokenTable, ...common } = commonEnv;

/** A uid or gid for job processes: a whole number, not 0 (that would be root again). */
const jobId = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, `must be a numeric ${what}`)
    .transform(Number)
    .refine((n) => n > 0 && n < 2 ** 32 - 1, `must be a ${what} other than 0 (jobs must not run as root)`);

/** Shortest Http invoke signing key: an HMAC key shorter than this is guessable offline. */
const MIN_SIGNING_SECRET = 32;

/** The action-runner's environment, one comment per variable (see also `commonEnv`). */
export const actionRunnerEnvSchema = z
  .object({
    ...common,
    /**
     * Refused when set. The runner's gRPC server serves only health and reflection, which need no
     * token, so it has no use for the token table — and whatever the runner holds, a job is one
     * exploit away from: a table with admin or service tokens must never reach a runner host.
     */
    SLUICE_AUTH_TOKENS: z
      .string()
      .optional()
      .superRefine((spec, ctx) => {
        if (spec === undefined) return;
        let principals = "";
        try {
          const table = parseTokenTable(spec);
          principals = ` (it holds ${table.map((t) => `${t.principal}=${t.roles.join("+")}`).join(", ")})`;
        } catch {
          // Unparseable is refused all the same; the parse error would echo nothing useful.
        }
        ctx.addIssue({
          code: "custom",
          message: `must not be set on a runner${principals}: the runner needs only its own credential (SLUICE_SERVICE_TOKEN or SLUICE_SERVICE_TOKEN_FILE), and jobs must never be near a token table`,
        });
      }),
    /** Address (host:port) of the artifact service, for CommitArtifact. */
    ARTIFACT_ADDR: z.string(),
    /**
     * This runner's own bearer token towards other services (a principal with role `runner`
     * only). Prefer SLUICE_SERVICE_TOKEN_FILE: a variable lives in the runner's initial
     * environment, which the runner overwrites after reading it (see `scrubEnviron`).
     */
    SLUICE_SERVICE_TOKEN: z.string().optional(),
    /** A file holding the runner's token (trailing newline ignored); keep it mode 0600, owned by the runner's user. */
    SLUICE_SERVICE_TOKEN_FILE: z.string().optional(),
    /** `auto` (default): a PID namespace per job when the host permits it, else process groups with a warning. */
    RUNNER_JOB_ISOLATION: z.enum(["auto", "pid-namespace", "process-group"]).default("auto"),
    /** Run job processes as this uid (the runner must run as root); unset: as the runner's user. */
    RUNNER_JOB_UID: jobId("uid").optional(),
    /** Group of job processes; default: the same number as RUNNER_JOB_UID. */
    RUNNER_JOB_GID: jobId("gid").optional(),
    /** Name of this runner in results (`updatedBy`) and logs; default `<hostname>-<random>`. */
    RUNNER_ID: z.string().optional(),
    /**
     * The pools whose jobs this runner takes (`sluice.jobs.<pool>.…`), comma-separated; default
     * `default`. `custom` is reserved (custom action types' jobs).
     */
    RUNNER_POOLS: commaList((name) => runnerPoolProblem(name)).optional(),
    /** Deprecated: one pool, as RUNNER_POOLS. Refused together with RUNNER_POOLS. */
    RUNNER_POOL: commaList((name) => runnerPoolProblem(name), { one: true }).optional(),
    /**
     * The providers this runner serves, comma-separated, of Git, Commands, ObjectStore, Rule and Http
     * (Commands rules of conditions); default all. Every runner of one pool must serve the same
     * providers: they share the pool's consumer (see service.ts).
     */
    RUNNER_PROVIDERS: commaList((name) =>
      (RUNNER_PROVIDERS as readonly string[]).includes(name) ? undefined : `${JSON.stringify(name)} is not a provider a runner serves (${RUNNER_PROVIDERS.join(", ")})`,
    ).optional(),
    /** Jobs this runner runs at once, across all the providers it serves. */
    RUNNER_CONCURRENCY: positiveInt()
      .refine((n) => n <= 64, "must be at most 64")
      .default(2),
    /** Lease of a job: redelivered to another runner when this one stops heartbeating for this long. */
    RUNNER_ACK_WAIT_MS: durationMs()
      .refine((ms) => ms >= 3_000, "must be at least 3s")
      .default(30_000),
    /**
     * Extra variables of the runner's environment passed on to jobs, comma-separated names. The
     * runner's own credentials and bus settings (`SLUICE_*`, `NATS_*`, S3 keys) are refused.
     */
    RUNNER_PASS_ENV: z
      .string()
      .optional()
      .superRefine((list, ctx) => {
        const refused = (list ?? "")
          .split(",")
          .map((n) => n.trim())
          .filter((n) => /^(SLUICE_|NATS_)/.test(n) || n === "S3_ACCESS_KEY" || n === "S3_SECRET_KEY");
        if (refused.length > 0) {
          ctx.addIssue({ code: "custom", message: `must not pass the runner's own settings to jobs: ${refused.join(", ")}` });
        }
      }),
    /**
     * Key Http invoke requests are signed with (HMAC-SHA256, see providers/http-invoke.ts); the
     * endpoints verify with the same key. Prefer HTTP_INVOKE_SECRET_FILE. Unset: Http jobs fail.
     */
    HTTP_INVOKE_SECRET: z.string().min(MIN_SIGNING_SECRET, `must be at least ${MIN_SIGNING_SECRET} characters`).optional(),
    /** A file holding HTTP_INVOKE_SECRET (trailing newline ignored). */
    HTTP_INVOKE_SECRET_FILE: z.string().optional(),
    /**
     * `false` turns off the runner's own check that it still holds a job's lease (it then
     * publishes results it should withhold): only for fault-injection tests of the orchestrator's
     * fence of stale attempts, and refused unless SLUICE_DEV_MODE=true.
     */
    RUNNER_LEASE_SELF_CHECK: z.enum(["true", "false"]).default("true"),
    /** Parent directory of per-job workspaces. */
    WORKSPACE_ROOT: z.string().default(tmpdir()),
    // No S3_* variables: ObjectStore deploys get presigned PUTs from the artifact service.
  })
  .superRefine((env, ctx) => {
    if ((env.SLUICE_SERVICE_TOKEN === undefined) === (env.SLUICE_SERVICE_TOKEN_FILE === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["SLUICE_SERVICE_TOKEN"],
        message: "exactly one of SLUICE_SERVICE_TOKEN and SLUICE_SERVICE_TOKEN_FILE is required",
      });
    }
    if (env.HTTP_INVOKE_SECRET !== undefined && env.HTTP_INVOKE_SECRET_FILE !== undefined) {
      ctx.addIssue({ code: "custom", path: ["HTTP_INVOKE_SECRET"], message: "set HTTP_INVOKE_SECRET or HTTP_INVOKE_SECRET_FILE, not both" });
    }
    if (env.RUNNER_POOL !== undefined && env.RUNNER_POOLS !== undefined) {
      ctx.addIssue({ code: "custom", path: ["RUNNER_POOL"], message: "is the deprecated form of RUNNER_POOLS: set only RUNNER_POOLS" });
    }
    if (env.RUNNER_JOB_GID !== undefined && env.RUNNER_JOB_UID === undefined) {
      ctx.addIssue({ code: "custom", path: ["RUNNER_JOB_GID"], message: "needs RUNNER_JOB_UID" });
    }
  });

/** The runner's resolved configuration. */
export interface ActionRunnerConfig extends Readonly<Omit<CommonConfig, "mongoUrl" | "authTokens">> {
  readonly artifactAddr: string;
  /** This runner's own credential (role runner), from SLUICE_SERVICE_TOKEN or its file. */
  readonly serviceToken: string;
  readonly runnerId: string;
  /** The pools whose jobs this runner takes, without duplicates (at least one). */
  readonly pools: readonly string[];
  /** The providers it serves (at least one), in RUNNER_PROVIDERS order. */
  readonly providers: readonly RunnerProvider[];
  readonly concurrency: number;
  readonly ackWaitMs: number;
  /** False only in fault-injection tests: see RUNNER_LEASE_SELF_CHECK. */
  readonly leaseSelfCheck: boolean;
  readonly workspaceRoot: string;
  readonly jobIsolation: JobIsolationSetting;
  /** uid/gid job processes run as; undefined: the runner's own. */
  readonly jobUid: number | undefined;
  readonly jobGid: number | undefined;
  /**
   * The environment jobs start from: an allow-list of the runner's own variables. Never the
   * whole environment — it holds the runner's token.
   */
  readonly jobBaseEnv: Readonly<Record<string, string>>;
  /** The key Http invokes are signed with; undefined: Http jobs fail with a ConfigurationError. */
  readonly httpInvokeSecret: string | undefined;
}

/** Variables of the runner's environment that jobs inherit: what git may take, plus the user and locale. */
export const JOB_ENV_ALLOWLIST: readonly string[] = [
  ...GIT_HOST_ENV,
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "LANG",
  "LANGUAGE",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "NODE_EXTRA_CA_CERTS",
];

/** Parses the runner's environment; throws a ConfigError naming every bad variable. */
export function loadActionRunnerConfig(env: Record<string, string | undefined>): ActionRunnerConfig {
  const e = loadConfig(actionRunnerEnvSchema, env);
  if (e.RUNNER_LEASE_SELF_CHECK === "false" && !isDevMode(env)) {
    throw new ConfigError([{ variable: "RUNNER_LEASE_SELF_CHECK", message: "false is for fault-injection tests only: it needs SLUICE_DEV_MODE=true" }]);
  }
  const passEnv = (e.RUNNER_PASS_ENV ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  const jobBaseEnv: Record<string, string> = {};
  for (const name of [...JOB_ENV_ALLOWLIST, ...passEnv]) {
    const value = env[name];
    if (value !== undefined) jobBaseEnv[name] = value;
  }
  jobBaseEnv["PATH"] ??= "/usr/local/bin:/usr/bin:/bin";
  const { authTokens: _noTable, ...commonFields } = commonConfig({ ...e, SLUICE_AUTH_TOKENS: undefined });
  return {
    ...commonFields,
    artifactAddr: e.ARTIFACT_ADDR,
    serviceToken: e.SLUICE_SERVICE_TOKEN ?? readSecretFile("SLUICE_SERVICE_TOKEN_FILE", e.SLUICE_SERVICE_TOKEN_FILE ?? "", 1),
    jobIsolation: e.RUNNER_JOB_ISOLATION,
    jobUid: e.RUNNER_JOB_UID,
    jobGid: e.RUNNER_JOB_UID === undefined ? undefined : (e.RUNNER_JOB_GID ?? e.RUNNER_JOB_UID),
    runnerId: e.RUNNER_ID ?? `${hostname()}-${randomUUID().slice(0, 8)}`,
    pools: e.RUNNER_POOLS ?? e.RUNNER_POOL ?? [DEFAULT_RUNNER_POOL],
    providers: RUNNER_PROVIDERS.filter((p) => e.RUNNER_PROVIDERS?.includes(p) ?? true),
    concurrency: e.RUNNER_CONCURRENCY,
    ackWaitMs: e.RUNNER_ACK_WAIT_MS,
    leaseSelfCheck: e.RUNNER_LEASE_SELF_CHECK === "true",
    workspaceRoot: e.WORKSPACE_ROOT,
    jobBaseEnv,
    httpInvokeSecret:
      e.HTTP_INVOKE_SECRET ?? (e.HTTP_INVOKE_SECRET_FILE === undefined ? undefined : readSecretFile("HTTP_INVOKE_SECRET_FILE", e.HTTP_INVOKE_SECRET_FILE, MIN_SIGNING_SECRET)),
  };
}

/**
 * A comma-separated list of names (blanks around commas ignored, duplicates dropped), each
 * checked by `problem`; `one`: exactly one name.
 */
function commaList(problem: (name: string) => string | undefined, opts: { one?: boolean } = {}): z.ZodType<string[], string> {
  return z
    .string()
    .transform((list) => [...new Set(list.split(",").map((n) => n.trim()).filter((n) => n !== ""))])
    .superRefine((names, ctx) => {
      if (names.length === 0) ctx.addIssue({ code: "custom", message: "must name at least one" });
      if (opts.one === true && names.length > 1) ctx.addIssue({ code: "custom", message: "names one pool; use RUNNER_POOLS for several" });
      for (const name of names) {
        const why = problem(name);
        if (why !== undefined) ctx.addIssue({ code: "custom", message: why });
      }
    });
}

/** The secret in a `*_FILE` variable's file; errors name the variable, never the content. */
function readSecretFile(variable: string, file: string, minLength: number): string {
  let token: string;
  try {
    token = readFileSync(file, "utf8").trim();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new ConfigError([{ variable, message: `cannot read ${file} (${typeof code === "string" ? code : "error"})` }]);
  }
  if (token === "" || /\s/.test(token)) {
    throw new ConfigError([{ variable, message: `${file} must hold one token without whitespace` }]);
  }
  if (token.length < minLength) throw new ConfigError([{ variable, message: `${file} must hold at least ${minLength} characters` }]);
  return token;
}

/**
 * Variables of the runner's own environment that are overwritten once the configuration has
 * been read (see `scrubEnviron`): the runner's credentials by name, anything whose name says it
 * is a secret (NATS passwords, nkey seeds, cloud keys added later), and URLs with a password.
 */
export function secretVariableNames(env: Readonly<Record<string, string | undefined>>): string[] {
  const named = new Set(["SLUICE_SERVICE_TOKEN", "SLUICE_AUTH_TOKENS", "S3_ACCESS_KEY", "S3_SECRET_KEY"]);
  const secretName = /(TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?|CREDS|NKEY|SEED|PRIVATE|API_KEY|ACCESS_KEY)S?$/i;
  const urlWithPassword = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i;
  return Object.entries(env)
    .filter(([name, value]) => value !== undefined && (named.has(name) || secretName.test(name) || urlWithPassword.test(value)))
    .map(([name]) => name);
}
