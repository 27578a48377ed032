import { connectBus, createSharedSlots, isConsumerNotFound, isPermissionViolation } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { DomainError, JOB_STARTED_STATUS } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { createClient, createServer } from "@sluice/grpc";
import type { Authenticator } from "@sluice/grpc";
import { ArtifactService, JobResultSchema, JobSchema, LogBatchSchema } from "@sluice/proto";
import type { Job, JobResult } from "@sluice/proto";
import { createEgressPolicy, createLogger, createMetrics, createTeardown, elapsedMs, once } from "@sluice/service-kit";
import { createCancellations, subscribeCancellations } from "./cancellations.js";
import type { Cancellations } from "./cancellations.js";
import type { ActionRunnerConfig } from "./config.js";
import { resolveJobSandbox } from "./isolation.js";
import { LeaseLostError, createJobLeases } from "./job-leases.js";
import type { JobLeases } from "./job-leases.js";
import { JobCancelledError, createJobRunner, resultOf } from "./job-runner.js";
import type { ArtifactCommitter, JobRunner, OutputGrantRenewer, ProviderTable } from "./job-runner.js";
import type { DeployGranter } from "./providers/object-store-deploy.js";
import { ANSWERED_LATER_STATUS } from "./providers/provider.js";
import { SERVED_ACTIONS, createProviderTable, servedActions } from "./providers/table.js";

const metrics = createMetrics("@sluice/action-runner");

/** A running action-runner. */
export interface ActionRunnerService {
  /** Bound port of the gRPC server (health and reflection). */
  readonly port: number;
  /**
   * The durable consumers this runner pulls from: `runner-<pool>`, one per pool of RUNNER_POOLS,
   * each filtering the served providers' `<Category>.<Provider>` job subjects.
   */
  readonly consumers: readonly string[];
  /**
   * Stops taking jobs, gives running jobs until the deadline to finish (their results are
   * published), hands the rest back to the queue, then closes connections. Idempotent.
   */
  stop(deadlineMs: number): Promise<void>;
  /** Rejects, naming the part, when one dies for good (the NATS connection closed by itself). */
  readonly closed: Promise<never>;
}

/** What tests (or an embedding process) may supply instead of the defaults. */
export interface ActionRunnerDeps {
  readonly logger?: Logger;
  /** Replaces ArtifactService.CommitArtifact over gRPC. */
  readonly commitArtifact?: ArtifactCommitter;
  /** Replaces ArtifactService.RenewOutputGrants over gRPC (only used together with `commitArtifact`). */
  readonly renewOutputGrants?: OutputGrantRenewer;
  /** Replaces ArtifactService.IssueDeployGrants over gRPC (only used together with `commitArtifact`). */
  readonly issueDeployGrants?: DeployGranter;
  /** Replaces the built-in provider table (benchmarks measure the runner with a provider that does nothing). */
  readonly providers?: ProviderTable;
}

/** How long a result publish is retried before the job is handed back to the queue. */
const RESULT_PUBLISH_ATTEMPTS = 3;

/**
 * Starts the runner: the gRPC server (health + reflection), the bus, the cancel subscription,
 * and one durable pull consumer per pool.
 *
 * Each consumer filters on the served `<Category>.<Provider>` subjects (a multi-filter consumer)
 * rather than `sluice.jobs.<pool>.>`: SLUICE_JOBS is a work queue, where consumers' filters must
 * not overlap, and the approval service consumes `…Approval.Manual` from the same stream. The
 * consumers share one set of `RUNNER_CONCURRENCY` slots, so the limit is runner-wide: a loop
 * pulls only as many jobs as there are free slots, so no job waits in a local buffer while its
 * lease runs out. All runners of a pool share its consumer, so they must serve the same
 * providers: a runner whose provider set differs from that of a consumer in use refuses to
 * start (see `checkProviderSet`).
 */
export async function startActionRunner(config: ActionRunnerConfig, deps: ActionRunnerDeps = {}): Promise<ActionRunnerService> {
  const logger = (deps.logger ?? createLogger({ service: "action-runner", level: config.logLevel })).child({
    runner: config.runnerId,
    pools: config.pools.join(","),
  });

  const teardown = createTeardown({ logger });
  const server = createServer({ logger, auth: noCallers, permissions: {}, tls: config.grpcTls });
  // Runs last; the job consumer's step already turned health NOT_SERVING (same promise).
  teardown.add("grpc", (ms) => server.stop(ms));

  try {
    let commitArtifact = deps.commitArtifact;
    let renewOutputGrants = deps.renewOutputGrants;
    let issueDeployGrants = deps.issueDeployGrants;
    if (commitArtifact === undefined) {
      const artifacts = createClient(ArtifactService, config.artifactAddr, { token: config.serviceToken, deadlineMs: 30_000, tls: config.grpcClientTls });
      teardown.add("artifact client", () => artifacts.close());
      commitArtifact = async (commit, signal) => {
        await artifacts.commitArtifact(commit, { signal });
      };
      renewOutputGrants = async (request, signal) =>
        (await artifacts.renewOutputGrants({ actionExecutionId: request.actionExecutionId, outputNames: [...request.outputNames] }, { signal })).outputs;
      issueDeployGrants = async (request, signal) =>
        (await artifacts.issueDeployGrants({ actionExecutionId: request.actionExecutionId, bucket: request.bucket, keys: [...request.keys] }, { signal })).grants;
    }
    const sandbox = await resolveJobSandbox({ isolation: config.jobIsolation, uid: config.jobUid, gid: config.jobGid, logger });
    logger.info("job isolation", { mode: sandbox.mode, uid: sandbox.uid ?? process.getuid?.() });
    const connected: { bus?: Bus } = {};
    const jobRunner = createJobRunner({
      logger,
      runnerId: config.runnerId,
      workspaceRoot: config.workspaceRoot,
      providers: deps.providers ?? createProviderTable({
        deployGrants: issueDeployGrants,
        httpInvoke: { secret: config.httpInvokeSecret, egress: createEgressPolicy({ allow: config.egressAllow }) },
      }),
      commitArtifact,
      ...(renewOutputGrants === undefined ? {} : { renewOutputGrants }),
      baseEnv: config.jobBaseEnv,
      sandbox,
      // Bound once the bus is connected (below), before the first job is taken.
      publishLog: async (batch, msgId) => {
        const logBus = connected.bus;
        if (logBus === undefined) return;
        await logBus.publish(logBus.subjects.logSubject(batch.pipelineName ?? "", batch.actionExecutionId ?? ""), LogBatchSchema, batch, { msgId });
      },
    });
    const leases = createJobLeases();

    const bus = await connectBus({
      servers: config.natsUrl,
      name: `action-runner-${config.runnerId}`,
      logger,
      prefix: config.busPrefix,
      credentials: config.natsCredentials,
      tls: config.natsTls,
    });
    teardown.add("bus", () => bus.close());
    connected.bus = bus;
    teardown.watch("NATS connection", bus.nc.closed());
    await bus.ensureStreams();

    // Subscribed before the first job is taken, so no cancel for a job of ours is missed.
    const cancellations = createCancellations();
    const cancelSubscription = subscribeCancellations(bus, cancellations, logger);
    teardown.add("cancel subscription", () => cancelSubscription.stop());

    // Running jobs ignore the consumer's stop signal (which fires at once) and get this one,
    // aborted only when the shutdown deadline is close: jobs may finish during the grace period.
    const shutdown = new AbortController();
    const served = servedActions(config.providers);
    const slots = createSharedSlots(config.concurrency);
    const consumers: Consumer[] = [];
    for (const pool of config.pools) {
      await removeLegacyConsumers(bus, pool, logger);
      const filterSubject = served.map(({ category, provider }) => bus.subjects.jobSubject(pool, category, provider));
      await checkProviderSet(bus, pool, filterSubject, config.providers);
      consumers.push(
        await bus.consume({
          stream: bus.streams.jobs,
          durable: runnerDurable(pool),
          filterSubject,
          schema: JobSchema,
          ackWaitMs: config.ackWaitMs,
          slots,
          // With more consumers than slots, a consumer holding a slot in an idle pull keeps it
          // until the pull expires: short pulls let another pool's job in soon.
          ...(config.pools.length > 1 ? { pullExpiresMs: MULTI_POOL_PULL_EXPIRES_MS } : {}),
          handler: (job, ctx) => {
            // Time from the orchestrator's publish to a runner taking the job (first delivery only).
            if (ctx.deliveryCount === 1) {
              metrics.dispatchLatency.record(elapsedMs(ctx.publishedAt) ?? NaN, { provider: job.actionTypeId?.provider, pool });
            }
            return handleJob(job, ctx, { jobRunner, cancellations, leases, bus, logger, config, pool, shutdown: shutdown.signal });
          },
        }),
      );
    }
    teardown.add("job consumer", async (deadlineMs) => {
      // Health turns NOT_SERVING at once, while the jobs still finish.
      void server.stop(deadlineMs);
      // Leave a fifth of the grace period (at most 5 s) to hand jobs back and drain NATS.
      const handBackAt = Math.max(0, deadlineMs - Math.min(5_000, Math.floor(deadlineMs / 5)));
      const timer = setTimeout(() => shutdown.abort(new Error("shutdown deadline")), handBackAt);
      timer.unref();
      try {
        await Promise.all(consumers.map((c) => c.stop()));
      } finally {
        clearTimeout(timer);
      }
    });

    const port = await server.listen(config.grpcHost, config.grpcPort);
    const durables = consumers.map((c) => c.durable);
    logger.info("action-runner started", { port, consumers: durables, providers: config.providers });

    return {
      port,
      consumers: durables,
      stop: once(async (deadlineMs: number) => {
        const started = Date.now();
        logger.info("action-runner stopping", { deadlineMs });
        await teardown.run(deadlineMs);
        logger.info("action-runner stopped", { ms: Date.now() - started });
      }),
      closed: teardown.fatal,
    };
  } catch (err) {
    // Every failed step is already logged by name; the start's own error is the one to report.
    await teardown.run(0).catch(() => undefined);
    throw err;
  }
}

/** How long one pull waits for a job when the runner has several pools (see startActionRunner). */
const MULTI_POOL_PULL_EXPIRES_MS = 2_000;

/** The durable consumer name of a pool's runners: `runner-<pool>`. */
export function runnerDurable(pool: string): string {
  return `runner-${pool}`;
}

/**
 * Refuses to start when the pool's consumer is in use (open pull requests or unacked jobs) with
 * other filters than this runner's: its runners serve another provider set, and taking the
 * consumer over would change what they receive. An idle consumer with other filters (an older
 * release, or a fleet reconfigured) is taken over. Two runners with different sets starting at
 * the same instant both pass; the later one's filters win (see the architecture's known limits).
 */
async function checkProviderSet(bus: Bus, pool: string, filters: readonly string[], providers: readonly string[]): Promise<void> {
  let info: Awaited<ReturnType<Bus["jsm"]["consumers"]["info"]>>;
  try {
    info = await bus.jsm.consumers.info(bus.streams.jobs, runnerDurable(pool));
  } catch (err) {
    if (isConsumerNotFound(err)) return;
    throw err;
  }
  const existing = (info.config.filter_subjects ?? []).length > 0 ? [...(info.config.filter_subjects ?? [])] : info.config.filter_subject === undefined ? [] : [info.config.filter_subject];
  if ([...existing].sort().join("\n") === [...filters].sort().join("\n")) return;
  if (info.num_waiting === 0 && info.num_ack_pending === 0) return;
  const theirs = [...new Set(SERVED_ACTIONS.filter((a) => existing.some((f) => f.endsWith(`.${a.category}.${a.provider}`))).map((a) => a.served))];
  throw new Error(
    `RUNNER_PROVIDERS: consumer ${runnerDurable(pool)} of pool ${pool} is in use by runners serving ${theirs.join(",") || "other jobs"}, this runner serves ${providers.join(",")}; the runners of one pool must serve the same providers (or use another pool)`,
  );
}

/**
 * Deletes the per-provider durables of releases before the runner-wide consumer
 * (`runner-<pool>-<Category>-<Provider>`). Their filters overlap the new consumer's, which a
 * work-queue stream refuses; their unacked jobs stay in the stream and go to the new consumer.
 * A runner of the old release still running loses its consumer and only logs pull failures.
 */
async function removeLegacyConsumers(bus: Bus, pool: string, logger: Logger): Promise<void> {
  const legacy = new Set(SERVED_ACTIONS.map(({ category, provider }) => `runner-${pool}-${category}-${provider}`));
  const present: string[] = [];
  try {
    for await (const info of bus.jsm.consumers.list(bus.streams.jobs)) {
      if (legacy.has(info.name)) present.push(info.name);
    }
  } catch (err) {
    // A least-privilege runner user may not list consumers: an operator removes legacy ones.
    if (!isPermissionViolation(err)) throw err;
    logger.debug("legacy consumers not checked: this NATS user may not list consumers");
    return;
  }
  for (const durable of present) {
    try {
      await bus.jsm.consumers.delete(bus.streams.jobs, durable);
      logger.info("legacy per-provider consumer removed", { durable });
    } catch (err) {
      // Another runner removed it first; anything else shows up when the new consumer is created.
      logger.warn("could not remove legacy consumer", { durable, err: String(err) });
    }
  }
}

/**
 * The runner's gRPC server serves only health and reflection, which take no token, so no
 * caller is ever authenticated: the runner holds no token table a job could steal.
 */
const noCallers: Authenticator = {
  authenticate() {
    throw new DomainError("UnauthenticatedException", "the action runner serves no authenticated methods");
  },
};

interface JobHandlerDeps {
  readonly jobRunner: JobRunner;
  readonly cancellations: Cancellations;
  readonly leases: JobLeases;
  readonly bus: Bus;
  readonly logger: Logger;
  readonly config: ActionRunnerConfig;
  /** The pool the job came from: its result goes to that pool's result subject. */
  readonly pool: string;
  readonly shutdown: AbortSignal;
}

/** What handleJob needs of a delivery. */
interface Delivery {
  readonly deliveryCount: number;
  working(): void;
}

/**
 * Runs one job and publishes its result. Resolving acks the job; throwing hands it back
 * (the bus naks it): only when the runner is shutting down, the result cannot be published, or
 * the lease was lost (see job-leases.ts). A cancelled job (by the orchestrator, before or while
 * it runs) resolves with a Failed `JobCancelled` result, so it is acked and never redelivered.
 * A job id already running or recently finished here is not run again.
 */
async function handleJob(job: Job, delivery: Delivery, deps: JobHandlerDeps): Promise<void> {
  const { jobRunner, cancellations, leases, bus, logger, config, pool, shutdown } = deps;
  const held = leases.running(job.jobId);
  if (held !== undefined) {
    logger.info("job redelivered while it runs here: not started again, lease kept", { jobId: job.jobId, deliveryCount: delivery.deliveryCount });
    const detach = held.attach(delivery.deliveryCount, () => delivery.working());
    // The newer lease is this runner's: results of this delivery are not stale.
    await reportStarted(bus, job, delivery.deliveryCount, pool, config.runnerId, logger);
    try {
      const result = await held.done;
      if (result === undefined) throw new Error(`job ${job.jobId}: the run this delivery joined ended without a result`);
      return;
    } finally {
      detach();
    }
  }
  const earlier = leases.finished(job.jobId);
  if (earlier !== undefined) {
    logger.info("job redelivered after it finished here: result republished, not run again", { jobId: job.jobId, deliveryCount: delivery.deliveryCount });
    await publishResult(bus, earlier, pool, logger);
    return;
  }

  const lease = leases.begin(job.jobId, delivery.deliveryCount, () => delivery.working());
  const leaseLost = new AbortController();
  // When the server last acknowledged a heartbeat: the time it was sent, so the estimate errs early.
  let confirmedAt = Date.now();
  const limitMs = Math.floor(config.ackWaitMs * 0.9);
  const intervalMs = Math.max(250, Math.floor(config.ackWaitMs / 4));
  const silentFor = (): number => Date.now() - confirmedAt;
  let beating = false;
  const selfCheck = config.leaseSelfCheck;
  const beat = async (): Promise<void> => {
    if (beating) return;
    // Silent too long already (the process was paused, or the connection down): a heartbeat
    // now cannot win back a lease the server may have handed on, so it must not count as confirmed.
    if (selfCheck && silentFor() > limitMs) {
      if (!leaseLost.signal.aborted) {
        logger.warn("job lease lost: aborting the job", { jobId: job.jobId, silentMs: silentFor() });
        leaseLost.abort(new LeaseLostError(job.jobId, silentFor()));
      }
      return;
    }
    beating = true;
    const sentAt = Date.now();
    try {
      lease.heartbeat();
      await withTimeout(bus.nc.flush(), intervalMs);
      confirmedAt = Math.max(confirmedAt, sentAt);
    } catch {
      // Not confirmed: the check below decides whether the lease is gone.
    } finally {
      beating = false;
    }
    if (selfCheck && silentFor() > limitMs && !leaseLost.signal.aborted) {
      logger.warn("job lease lost: aborting the job", { jobId: job.jobId, silentMs: silentFor() });
      leaseLost.abort(new LeaseLostError(job.jobId, silentFor()));
    }
  };
  // Heartbeat: keeps the lease while the job runs; every ack_wait/4, so one lost beat does not lose it.
  const heartbeat = setInterval(() => void beat(), intervalMs);
  void beat();
  const registration = cancellations.begin(job.jobId);
  let result: JobResult | undefined;
  try {
    // Tells the orchestrator the job left the queue, and which delivery holds the lease now.
    await reportStarted(bus, job, delivery.deliveryCount, pool, config.runnerId, logger);
    const started = performance.now();
    try {
      result = await jobRunner.run(job, AbortSignal.any([shutdown, leaseLost.signal]), registration.signal);
      metrics.actionDuration.record(performance.now() - started, {
        provider: job.actionTypeId?.provider ?? "",
        category: job.actionTypeId?.category,
        status: result.status,
      });
    } catch (err) {
      if (leaseLost.signal.aborted) throw leaseLost.signal.reason as LeaseLostError;
      if (err instanceof JobCancelledError) {
        logger.info("job handed back: runner stopping", { jobId: job.jobId });
      }
      throw err;
    }
    // Finished, but the server may have given up on us meanwhile: someone else reports it.
    if (leaseLost.signal.aborted || (selfCheck && silentFor() > limitMs)) {
      const lost = new LeaseLostError(job.jobId, silentFor());
      logger.warn("job lease lost: result not published", { jobId: job.jobId, silentMs: silentFor() });
      result = undefined;
      throw lost;
    }
    // The newest delivery held here (a redelivery may have joined): older ones are fenced off.
    result.delivery = lease.held.delivery;
    await publishResult(bus, result, pool, logger);
  } catch (err) {
    result = undefined;
    throw err;
  } finally {
    registration.end();
    clearInterval(heartbeat);
    lease.settle(result);
  }
}

/** How long a started report may take before the job runs without it. */
const STARTED_REPORT_TIMEOUT_MS = 5_000;

/**
 * Publishes the "started" report of delivery `delivery` of `job` (a JobResult with status
 * InProgress): the job is no longer queued, and results of lower deliveries are stale. A report
 * that cannot be published is logged, and the job runs anyway: without it the orchestrator shows
 * the job queued and cannot fence an older delivery's result, but loses nothing else.
 */
async function reportStarted(bus: Bus, job: Job, delivery: number, pool: string, runnerId: string, logger: Logger): Promise<void> {
  const report = {
    ...resultOf(job, runnerId),
    status: JOB_STARTED_STATUS,
    delivery,
  };
  const subject = bus.subjects.resultSubject(job.pipelineName, { runner: pool });
  try {
    await withTimeout(bus.publish(subject, JobResultSchema, report, { msgId: `started:${job.jobId}:${delivery}` }), STARTED_REPORT_TIMEOUT_MS);
  } catch (err) {
    logger.warn("started report not published; the job runs without it", { jobId: job.jobId, delivery, err: String(err) });
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

async function publishResult(bus: Bus, result: JobResult, pool: string, logger: Logger): Promise<void> {
  if (result.status === ANSWERED_LATER_STATUS) {
    // Answered through JobService by whoever accepted the work: nothing to publish.
    logger.info("job answered later through JobService: no result published", { jobId: result.jobId });
    return;
  }
  // The pool in the subject is what NATS lets this runner's user publish, and what the orchestrator checks.
  const subject = bus.subjects.resultSubject(result.pipelineName, { runner: pool });
  for (let attempt = 1; ; attempt++) {
    try {
      // msgId: a redelivered job that already reported is de-duplicated by JetStream. It names
      // the delivery: another delivery's result (run elsewhere after a lost lease) must not be
      // dropped as a repeat of a stale one the orchestrator refuses.
      await bus.publish(subject, JobResultSchema, result, { msgId: `result:${result.jobId}:${result.delivery}` });
      logger.debug("result published", { jobId: result.jobId, status: result.status, subject });
      return;
    } catch (err) {
      if (attempt >= RESULT_PUBLISH_ATTEMPTS) throw err;
      logger.warn("result publish failed; retrying", { jobId: result.jobId, attempt, err: String(err) });
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}
