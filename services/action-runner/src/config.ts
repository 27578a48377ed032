import { randomUUID } from "node:crypto";
import { hostname, tmpdir } from "node:os";
import { parseTokenTable } from "@sluice/grpc";
import type { TokenEntry } from "@sluice/grpc";
import { commonConfig, commonEnv, durationMs, loadConfig, positiveInt } from "@sluice/service-kit";
import type { CommonConfig } from "@sluice/service-kit";
import { z } from "zod";

// The runner keeps no state in MongoDB: everything common except MONGO_URL.
const { MONGO_URL: _unusedMongoUrl, ...common } = commonEnv;

/** The action-runner's environment, one comment per variable (see also `commonEnv`). */
export const actionRunnerEnvSchema = z
  .object({
    ...common,
    /** Token table `<principal>=<role>+<role>:<token>,…` for callers of this service. */
    SLUICE_AUTH_TOKENS: z.string().superRefine((spec, ctx) => {
      try {
        parseTokenTable(spec);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
      }
    }),
    /** Address (host:port) of the artifact service, for CommitArtifact. */
    ARTIFACT_ADDR: z.string(),
    /** This runner's bearer token towards other services (a principal with role `runner`). */
    SLUICE_SERVICE_TOKEN: z.string(),
    /** Name of this runner in results (`updatedBy`) and logs; default `<hostname>-<random>`. */
    RUNNER_ID: z.string().optional(),
    /** The pool whose jobs this runner takes (`sluice.jobs.<pool>.…`). */
    RUNNER_POOL: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, "must contain only letters, digits, '_' and '-'")
      .default("default"),
    /** Jobs this runner runs at once, across all the providers it serves. */
    RUNNER_CONCURRENCY: positiveInt()
      .refine((n) => n <= 64, "must be at most 64")
      .default(2),
    /** Lease of a job: redelivered to another runner when this one stops heartbeating for this long. */
    RUNNER_ACK_WAIT_MS: durationMs()
      .refine((ms) => ms >= 3_000, "must be at least 3s")
      .default(30_000),
    /** Extra variables of the runner's environment passed on to jobs, comma-separated names. */
    RUNNER_PASS_ENV: z.string().optional(),
    /** Parent directory of per-job workspaces. */
    WORKSPACE_ROOT: z.string().default(tmpdir()),
    // No S3_* variables: ObjectStore deploys get presigned PUTs from the artifact service.
  });

/** The runner's resolved configuration. */
export interface ActionRunnerConfig extends Readonly<Omit<CommonConfig<readonly TokenEntry[]>, "mongoUrl">> {
  readonly artifactAddr: string;
  readonly serviceToken: string;
  readonly runnerId: string;
  readonly pool: string;
  readonly concurrency: number;
  readonly ackWaitMs: number;
  readonly workspaceRoot: string;
  /**
   * The environment jobs start from: an allow-list of the runner's own variables. Never the
   * whole environment — it holds the runner's token.
   */
  readonly jobBaseEnv: Readonly<Record<string, string>>;
}

/** Variables of the runner's environment that jobs inherit. */
export const JOB_ENV_ALLOWLIST: readonly string[] = [
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "LANG",
  "LANGUAGE",
  "LC_ALL",
  "LC_CTYPE",
  "TZ",
  "TMPDIR",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "NODE_EXTRA_CA_CERTS",
];

/** Parses the runner's environment; throws a ConfigError naming every bad variable. */
export function loadActionRunnerConfig(env: Record<string, string | undefined>): ActionRunnerConfig {
  const e = loadConfig(actionRunnerEnvSchema, env);
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
  return {
    ...commonConfig(e),
    authTokens: parseTokenTable(e.SLUICE_AUTH_TOKENS),
    artifactAddr: e.ARTIFACT_ADDR,
    serviceToken: e.SLUICE_SERVICE_TOKEN,
    runnerId: e.RUNNER_ID ?? `${hostname()}-${randomUUID().slice(0, 8)}`,
    pool: e.RUNNER_POOL,
    concurrency: e.RUNNER_CONCURRENCY,
    ackWaitMs: e.RUNNER_ACK_WAIT_MS,
    workspaceRoot: e.WORKSPACE_ROOT,
    jobBaseEnv,
  };
}
