import { z } from "zod";
import { BUCKET_NAME_PATTERN, DEFAULT_ARTIFACT_BUCKET, DEFAULT_WATCH_MAX_PER_PRINCIPAL, DEFAULT_WATCH_MAX_TOTAL } from "@sluice/domain";
import { commonConfig, commonEnv, durationMs, loadConfig } from "@sluice/service-kit";
import type { CommonConfig } from "@sluice/service-kit";

const Env = z.object({
  ...commonEnv,
  // Database holding pipelines, versions, runtime documents and archived executions.
  MONGO_DB: z.string().min(1).default("sluice_orchestrator"),
  // Approval service; PutApprovalResult is forwarded there. Empty: PutApprovalResult answers UNAVAILABLE.
  APPROVAL_ADDR: z.string().default(""),
  // Artifact service; grants are attached to jobs at dispatch. Empty: jobs go out without grants
  // (only useful in tests that do not move artifacts; a warning is logged at start).
  ARTIFACT_ADDR: z.string().default(""),
  // Bearer token (role `service`) the orchestrator presents to the approval and artifact services.
  SLUICE_SERVICE_TOKEN: z.string().default(""),
  // Bucket used by pipelines whose declaration names no artifact store.
  DEFAULT_ARTIFACT_BUCKET: z
    .string()
    .regex(BUCKET_NAME_PATTERN, { message: "must be an S3 bucket name (3-63 of a-z 0-9 . -)" })
    .default(DEFAULT_ARTIFACT_BUCKET),
  // How often outbox entries left behind by a crash are re-published.
  OUTBOX_SWEEP_MS: durationMs().default(2000),
  // How often due deadlines (action timeouts) are turned into TimerFired events.
  TIMER_SWEEP_MS: durationMs().default(1000),
  // Open WatchPipelineExecution streams allowed per principal, and in all (each holds an events consumer).
  WATCH_MAX_PER_PRINCIPAL: z.coerce.number().int().min(1).default(DEFAULT_WATCH_MAX_PER_PRINCIPAL),
  WATCH_MAX_TOTAL: z.coerce.number().int().min(1).default(DEFAULT_WATCH_MAX_TOTAL),
});

/** The orchestrator's resolved configuration (camelCase, defaults applied). */
export interface OrchestratorConfig extends CommonConfig {
  mongoDb: string;
  /** SLUICE_BUS_PREFIX; empty: the production subjects. */
  busPrefix: string;
  /** Empty: PutApprovalResult is unavailable. */
  approvalAddr: string;
  /** Empty: jobs are dispatched without artifact grants. */
  artifactAddr: string;
  serviceToken: string;
  defaultArtifactBucket: string;
  outboxSweepMs: number;
  timerSweepMs: number;
  watchMaxPerPrincipal: number;
  watchMaxTotal: number;
}

/**
 * Parses the orchestrator's environment. Throws `ConfigError` naming every bad
 * variable; called once, from `main.ts` (tests may call it with a plain object).
 */
export function loadOrchestratorConfig(env: Record<string, string | undefined>): OrchestratorConfig {
  const e = loadConfig(Env, env);
  return {
    ...commonConfig(e),
    mongoDb: e.MONGO_DB,
    busPrefix: e.SLUICE_BUS_PREFIX ?? "",
    approvalAddr: e.APPROVAL_ADDR,
    artifactAddr: e.ARTIFACT_ADDR,
    serviceToken: e.SLUICE_SERVICE_TOKEN,
    defaultArtifactBucket: e.DEFAULT_ARTIFACT_BUCKET,
    outboxSweepMs: e.OUTBOX_SWEEP_MS,
    timerSweepMs: e.TIMER_SWEEP_MS,
    watchMaxPerPrincipal: e.WATCH_MAX_PER_PRINCIPAL,
    watchMaxTotal: e.WATCH_MAX_TOTAL,
  };
}
