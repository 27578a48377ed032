// The cluster of a test file started in this process instead of as five processes, for the few
// behaviours a test cannot reach through the environment: the orchestrator and the approval service
// take an injected clock here (neither reads a clock offset from its environment), so a test can move
// time past a deadline of minutes. Everything else is the real thing: the same `startX(config)` that
// each service's main.ts calls, its config parsed from the same variables, real NATS, MongoDB and
// MinIO, and the public gRPC API. No source poller: tests using this start executions themselves.
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import type { WriteStream } from "node:fs";
import { join } from "node:path";
import { loadActionRunnerConfig, startActionRunner } from "@sluice/action-runner";
import { loadApprovalConfig, startApprovalService } from "@sluice/approval";
import { loadArtifactConfig, startArtifactService } from "@sluice/artifact";
import type { Logger } from "@sluice/domain";
import { loadOrchestratorConfig, startOrchestrator } from "@sluice/orchestrator";
import { createLogger } from "@sluice/service-kit";
import { clusterTokenTable } from "@sluice/testkit";
import type { Cluster, ClusterService, ClusterTokens } from "@sluice/testkit";
import { E2E_DEPLOY_BUCKETS } from "./helpers.js";
import type { ClusterSetup } from "./helpers.js";

/** Options of {@link startInProcessCluster}. */
export interface InProcessOptions {
  /** Epoch ms: the clock of the orchestrator (deadlines, timers) and of the approval service (expiry). */
  clock: () => number;
}

// Variables of the test process that the runner hands on to jobs (git and the shell need them).
const JOB_VARIABLES = ["PATH", "HOME", "USER", "LANG", "TMPDIR", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"];

/**
 * Starts artifact, approval, orchestrator and action-runner in this process (that order, as
 * `startCluster` does), each logging JSON lines to `<logDir>/<service>.log` so failures print the
 * same evidence. Pass it as `useCluster(name, { start: (s) => startInProcessCluster(s, opts) })`.
 */
export async function startInProcessCluster(setup: ClusterSetup, opts: InProcessOptions): Promise<Cluster> {
  const { servers, busPrefix, mongoDbPrefix, logDir } = setup;
  const token = (): string => randomBytes(24).toString("hex");
  const tokens: ClusterTokens = { admin: token(), service: token(), runner: token() };
  const streams: WriteStream[] = [];
  const loggerFor = (service: ClusterService): Logger => {
    const stream = createWriteStream(join(logDir, `${service}.log`), { flags: "a" });
    streams.push(stream);
    return createLogger({ service, level: "info", destination: stream });
  };
  const common = (service: ClusterService): Record<string, string> => ({
    NATS_URL: servers.natsUrl,
    GRPC_HOST: "127.0.0.1",
    GRPC_PORT: "0",
    SLUICE_AUTH_TOKENS: clusterTokenTable(tokens),
    SLUICE_BUS_PREFIX: busPrefix,
    MONGO_DB: `${mongoDbPrefix}_${service.replace(/-/g, "_")}`,
  });
  const s3 = { S3_ENDPOINT: servers.s3.url, S3_ACCESS_KEY: servers.s3.accessKey, S3_SECRET_KEY: servers.s3.secretKey, S3_REGION: "us-east-1" };
  const now = (): Date => new Date(opts.clock());

  const running: { name: ClusterService; stop(deadlineMs: number): Promise<void> }[] = [];
  const stopAll = async (): Promise<void> => {
    for (const service of [...running].reverse()) await service.stop(10_000);
    running.length = 0;
    await Promise.all(streams.map((s) => new Promise<void>((resolve) => s.end(resolve))));
  };
  const addresses = {} as Record<ClusterService, string>;
  try {
    const artifact = await startArtifactService(loadArtifactConfig({ ...common("artifact"), MONGO_URL: servers.mongoUrl, ...s3, DEPLOY_BUCKETS: E2E_DEPLOY_BUCKETS }), {
      logger: loggerFor("artifact"),
    });
    running.push({ name: "artifact", stop: (ms) => artifact.stop(ms) });
    addresses.artifact = `127.0.0.1:${artifact.port}`;

    const approval = await startApprovalService(
      // Expiry is swept often, so an expired approval is marked soon after the clock moves.
      loadApprovalConfig({ ...common("approval"), MONGO_URL: servers.mongoUrl, APPROVAL_SWEEP_MS: "100" }),
      { logger: loggerFor("approval"), now },
    );
    running.push({ name: "approval", stop: (ms) => approval.stop(ms) });
    addresses.approval = `127.0.0.1:${approval.port}`;

    const orchestrator = await startOrchestrator(
      loadOrchestratorConfig({
        ...common("orchestrator"),
        MONGO_URL: servers.mongoUrl,
        APPROVAL_ADDR: addresses.approval,
        ARTIFACT_ADDR: addresses.artifact,
        SLUICE_SERVICE_TOKEN: tokens.service,
        TIMER_SWEEP_MS: "200",
      }),
      { logger: loggerFor("orchestrator"), clock: opts.clock },
    );
    running.push({ name: "orchestrator", stop: (ms) => orchestrator.stop(ms) });
    addresses.orchestrator = `127.0.0.1:${orchestrator.port}`;

    const jobEnv: Record<string, string> = {};
    for (const name of JOB_VARIABLES) {
      const value = process.env[name];
      if (value !== undefined) jobEnv[name] = value;
    }
    const runner = await startActionRunner(
      loadActionRunnerConfig({
        ...jobEnv,
        RUNNER_PASS_ENV: JOB_VARIABLES.join(","),
        ...common("action-runner"),
        // Runners take no token table: it would be within their jobs' reach.
        SLUICE_AUTH_TOKENS: undefined,
        ARTIFACT_ADDR: addresses.artifact,
        SLUICE_SERVICE_TOKEN: tokens.runner,
        RUNNER_ID: `runner-${randomBytes(3).toString("hex")}`,
      }),
      { logger: loggerFor("action-runner") },
    );
    running.push({ name: "action-runner", stop: (ms) => runner.stop(ms) });
    addresses["action-runner"] = `127.0.0.1:${runner.port}`;
    addresses["source-poller"] = "";
  } catch (err) {
    await stopAll();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    addresses,
    tokens,
    // No source poller in this cluster, so no webhook receiver either.
    webhooks: { url: "", githubSecret: "", gitlabToken: "", giteaSecret: "" },
    outputTail: () => "",
    stop: () => (stopping ??= stopAll()),
  };
}
