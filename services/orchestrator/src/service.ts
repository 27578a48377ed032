import { randomUUID } from "node:crypto";
import { connectBus, isTransientError, resultPublisherOf } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { DomainError, JOB_STARTED_STATUS, isDomainError, jobOutcomeFromProto, noopLogger, runOfJob, sourceRevisionFromProto, staleAttempt } from "@sluice/domain";
import type { JobOutcome, Logger, PipelineRuntime, PipelineSpec } from "@sluice/domain";
import { createClient, createServer, createTokenAuthenticator, parseTokenTable } from "@sluice/grpc";
import { ActionTypeService, ApprovalService, ArtifactService, DeadLetterSchema, JobResultSchema, JobService, PipelineService, SourceChangedSchema } from "@sluice/proto";
import type { JobResult, PipelineDeclaration } from "@sluice/proto";
import { connectMongo, createMetrics, createTeardown, once, startSweeper } from "@sluice/service-kit";
import { ACTION_TYPE_PERMISSIONS, createActionTypeApi } from "./action-types/action-type-api.js";
import { createActionTypeCatalog } from "./action-types/action-type-store.js";
import { busLogReader } from "./api/action-log.js";
import { PIPELINE_PERMISSIONS, createPipelineApi } from "./api/pipeline-api.js";
import type { OrchestratorConfig } from "./config.js";
import { JOB_PERMISSIONS, createJobApi } from "./jobs/job-api.js";
import { startJobIntake } from "./jobs/job-intake.js";
import { createJobStore } from "./jobs/job-store.js";
import { declarationUpdates } from "./pipelines/declaration-update.js";
import { applyDefinition } from "./pipelines/definition-update.js";
import { createPipelineStore } from "./pipelines/pipeline-store.js";
import { specOf as specOfDeclaration } from "./pipelines/spec-of.js";
import { createDeadLetterHandler } from "./runtime/dead-letters.js";
import { createOutboxPublisher } from "./runtime/publisher.js";
import { createRuntimeStore } from "./runtime/runtime-store.js";
import type { ApplyOptions, ApplyResult, ArchivedExecution, RuntimeStore } from "./runtime/runtime-store.js";
import { REFUSED_RESULT_CODE, refuseResult } from "./result-intake.js";
import { createKeyedSerial } from "./serial.js";

const metrics = createMetrics("@sluice/orchestrator");

/** A running orchestrator. */
export interface Orchestrator {
  /** The bound gRPC port. */
  readonly port: number;
  /** The runtime store (tests drive and inspect it). */
  readonly runtime: RuntimeStore;
  /** Stops taking work, finishes what is in flight, closes connections; idempotent. */
  stop(deadlineMs: number): Promise<void>;
  /** Rejects, naming the part, when one dies for good (the NATS connection closed by itself). */
  readonly closed: Promise<never>;
}

/** Optional collaborators of `startOrchestrator`. */
export interface OrchestratorDeps {
  /** @default noopLogger */
  logger?: Logger;
  /** Epoch ms; tests move time forward to reach deadlines. @default Date.now */
  clock?: () => number;
  /**
   * Quiet time before a runtime document is compacted (see RuntimeStoreOptions).
   * Tests that run two replicas on FerretDB, which cannot take concurrent
   * writers, pass `Infinity` so that no write happens in the background.
   */
  compactAfterMs?: number;
  /** How long an idle WatchPipelineExecution waits before re-reading the execution. @default 5000 */
  watchResyncMs?: number;
  /** How long a MongoDB operation waits for a reachable server (tests of outages shorten it). @default 10000 */
  mongoServerSelectionTimeoutMs?: number;
  /** How long a polled custom job waits for AcknowledgeJob before polls hand it out again. @default 60000 */
  jobHandoutMs?: number;
}

/** Entries younger than this are being published by the write that made them. */
const OUTBOX_MIN_AGE_MS = 3000;
/** Durable consumer names, shared by every replica. */
const RESULTS_DURABLE = "orchestrator-results";
const SOURCES_DURABLE = "orchestrator-sources";
const DEAD_LETTERS_DURABLE = "orchestrator-dead-letters";
/** Results/source changes handled at once; one pipeline's are still applied one by one. */
const CONSUMER_CONCURRENCY = 8;

/**
 * Starts the orchestrator: Mongo, the bus and its streams, indexes, the
 * sweepers, the result, source, dead-letter and custom job consumers, then the
 * PipelineService and JobService — in that order, so nothing serves before what it depends
 * on is ready. Stopping runs in reverse.
 */
export async function startOrchestrator(config: OrchestratorConfig, deps: OrchestratorDeps = {}): Promise<Orchestrator> {
  const logger = (deps.logger ?? noopLogger).child({ service: "orchestrator" });
  const clock = deps.clock ?? Date.now;
  const auth = createTokenAuthenticator(parseTokenTable(config.authTokens));

  // Open WatchPipelineExecution streams end (cleanly) when this aborts.
  const stopping = new AbortController();
  const teardown = createTeardown({ logger });

  try {
    const mongo = await connectMongo(config.mongoUrl, config.mongoDb, { appName: "sluice-orchestrator", serverSelectionTimeoutMS: deps.mongoServerSelectionTimeoutMs });
    teardown.add("mongo", () => mongo.close());
    const { db } = mongo;
    const bus = await connectBus({
      servers: config.natsUrl,
      name: "orchestrator",
      logger,
      prefix: config.busPrefix === "" ? undefined : config.busPrefix,
      credentials: config.natsCredentials,
      tls: config.natsTls,
    });
    teardown.add("bus", () => bus.close());
    teardown.watch("NATS connection", bus.nc.closed());
    await bus.ensureStreams();

    const artifacts = config.artifactAddr === "" ? undefined : createClient(ArtifactService, config.artifactAddr, { token: config.serviceToken, deadlineMs: 15_000, tls: config.grpcClientTls });
    if (artifacts === undefined) logger.warn("ARTIFACT_ADDR is not set: jobs are dispatched without artifact grants");
    else teardown.add("artifact client", () => artifacts.close());
    const approvals = config.approvalAddr === "" ? undefined : createClient(ApprovalService, config.approvalAddr, { deadlineMs: 15_000, tls: config.grpcClientTls });
    if (approvals === undefined) logger.warn("APPROVAL_ADDR is not set: PutApprovalResult is unavailable");
    else teardown.add("approval client", () => approvals.close());

    const pipelines = createPipelineStore(db);
    await pipelines.ensureIndexes();
    const actionTypes = createActionTypeCatalog(db);
    await actionTypes.ensureIndexes();
    await actionTypes.refresh();
    const specOf = (declaration: PipelineDeclaration): PipelineSpec => specOfDeclaration(declaration, config.defaultArtifactBucket, actionTypes);
    const jobs = createJobStore(db);
    await jobs.ensureIndexes();
    const publisher = createOutboxPublisher({ bus, logger, artifacts, answerableLater: (job) => jobs.insert(job, clock(), "InProgress") });
    // The one path of a job's result into the runtime: runners' and the approval service's
    // results, dead letters, and the failures of jobs the outbox will not dispatch.
    const applyResult = (name: string, result: JobOutcome, options?: ApplyOptions): Promise<ApplyResult> =>
      runtime.apply(name, { type: "JobCompleted", result }, options);
    const runtime = createRuntimeStore({
      db,
      subjects: bus.subjects,
      publisher,
      logger,
      clock,
      undispatched: (name, result) => ignoreUnknownPipeline(logger, name, () => applyResult(name, result)),
      ...(deps.compactAfterMs === undefined ? {} : { compactAfterMs: deps.compactAfterMs }),
      loadSpec: async (name) => {
        const stored = await pipelines.find(name);
        return stored === undefined ? undefined : specOf(stored.declaration);
      },
    });
    teardown.add("runtime store", () => runtime.close());
    const unobserve = metrics.observeQueuedJobs(() => runtime.queuedJobs());
    teardown.add("queued jobs gauges", () => unobserve());
    await runtime.ensureIndexes();

    const outboxSweeper = startSweeper("outbox", config.outboxSweepMs, () => runtime.sweepOutbox(OUTBOX_MIN_AGE_MS), logger);
    const timerSweeper = startSweeper("timers", config.timerSweepMs, () => runtime.sweepTimers(), logger);
    teardown.add("sweepers", () => Promise.all([outboxSweeper.stop(), timerSweeper.stop()]));

    const updates = declarationUpdates({ pipelines, runtime, subjects: bus.subjects, specOf, actionTypes, defaultArtifactBucket: config.defaultArtifactBucket });
    const definitionDeps = { pipelines, runtime, actionTypes, updates, logger, clock };
    const sourceChanges = createKeyedSerial();

    // Stopped together, so none keeps taking messages while another drains its handlers.
    const consumers: Consumer[] = [];
    teardown.add("consumers", () => Promise.all(consumers.map((c) => c.stop())));
    consumers.push(
      await bus.consume({
        stream: bus.streams.results,
        durable: RESULTS_DURABLE,
        filterSubject: bus.subjects.streamFilter("results"),
        schema: JobResultSchema,
        concurrency: CONSUMER_CONCURRENCY,
        // An outage (MongoDB, a lost write race) retries until it passes: a result is never dropped for it.
        isTransient: isTransientError,
        handler: async (msg, ctx) => {
          const refuse = resultRefusal(bus, logger, msg, ctx.subject);
          const outcome = jobOutcomeFromProto(msg);
          await ignoreUnknownPipeline(logger, msg.pipelineName, () =>
            msg.status === JOB_STARTED_STATUS
              ? runtime.apply(msg.pipelineName, { type: "JobStarted", report: outcome }, { refuse })
              : applyResult(msg.pipelineName, outcome, { refuse: (state) => refuse(state) ?? staleRefusal(logger, msg, outcome, ctx.subject, bus, state) }),
          );
        },
      }),
    );
    consumers.push(
      await bus.consume({
        stream: bus.streams.sources,
        durable: SOURCES_DURABLE,
        filterSubject: bus.subjects.streamFilter("sources"),
        schema: SourceChangedSchema,
        concurrency: CONSUMER_CONCURRENCY,
        // An outage (MongoDB, a lost write race) retries until it passes: a result is never dropped for it.
        isTransient: isTransientError,
        handler: async (msg) => {
          if (msg.revision === undefined || msg.revision.revisionId === "") {
            throw new DomainError("ValidationException", "revision: is required", [{ field: "revision.revisionId", message: "is required" }]);
          }
          const revision = sourceRevisionFromProto(msg.sourceActionName, msg.revision);
          const change = {
            // A redelivery gets another id; decide() still starts nothing twice for one revision.
            executionId: randomUUID(),
            actionName: msg.sourceActionName,
            revision,
            trigger: { triggerType: msg.triggerType === "" ? "PollForSourceChanges" : msg.triggerType, triggerDetail: msg.triggerDetail },
          };
          const { definition } = msg;
          await ignoreUnknownPipeline(logger, msg.pipelineName, () =>
            // One source change of a pipeline at a time here: a definition is adopted and its
            // revision started before the next change reads the stored declaration.
            sourceChanges.run(msg.pipelineName, async () => {
              // The repository's definition first, so the revision's execution runs the version it declares.
              const outcome = definition === undefined ? undefined : await applyDefinition(definitionDeps, msg.pipelineName, revision, definition);
              if (outcome?.kind === "rejected") await runtime.apply(msg.pipelineName, { type: "DefinitionRejected", ...change, violations: outcome.violations });
              else await runtime.apply(msg.pipelineName, { type: "SourceChanged", ...change });
            }),
          );
        },
      }),
    );

    // A job no consumer could take, or a result that could not be applied, fails its action now
    // rather than at its timeout.
    consumers.push(
      await bus.consume({
        stream: bus.streams.dlq,
        durable: DEAD_LETTERS_DURABLE,
        filterSubject: [bus.subjects.dlqSubject(bus.streams.jobs), bus.subjects.dlqSubject(bus.streams.results)],
        schema: DeadLetterSchema,
        isTransient: isTransientError,
        handler: createDeadLetterHandler(bus.streams, applyResult, logger),
      }),
    );
    consumers.push(await startJobIntake(bus, jobs, logger, clock));

    const server = createServer({ logger, auth, permissions: { ...PIPELINE_PERMISSIONS, ...JOB_PERMISSIONS, ...ACTION_TYPE_PERMISSIONS }, tls: config.grpcTls });
    server.add(
      PipelineService,
      createPipelineApi({
        pipelines,
        runtime,
        archive: db.collection<ArchivedExecution>("executions"),
        subjects: bus.subjects,
        specOf,
        actionTypes,
        defaultArtifactBucket: config.defaultArtifactBucket,
        approvals,
        subscribeEvents: (filter, handler) => bus.subscribeEvents(filter, handler),
        artifacts,
        logs: busLogReader(bus),
        shutdown: stopping.signal,
        ...(deps.watchResyncMs === undefined ? {} : { watchResyncMs: deps.watchResyncMs }),
        watchMaxPerPrincipal: config.watchMaxPerPrincipal,
        watchMaxTotal: config.watchMaxTotal,
        logger,
        clock: () => new Date(clock()),
      }),
    );
    server.add(
      JobService,
      createJobApi({
        jobs,
        actionTypes,
        artifacts,
        applyResult: (name, result) => applyResult(name, result),
        logger,
        clock,
        ...(deps.jobHandoutMs === undefined ? {} : { handoutMs: deps.jobHandoutMs }),
      }),
    );
    server.add(ActionTypeService, createActionTypeApi({ catalog: actionTypes, logger, clock: () => new Date(clock()) }));
    // Registered before listen so a failed bind still closes the server. Runs first: the
    // watches end and no call is taken while the consumers and sweepers stop.
    teardown.add("grpc", (ms) => {
      stopping.abort(new Error("the orchestrator is shutting down"));
      return server.stop(ms);
    });
    const port = await server.listen(config.grpcHost, config.grpcPort);

    logger.info("orchestrator started", { port, db: config.mongoDb, busPrefix: config.busPrefix });
    return {
      port,
      runtime,
      stop: once((deadlineMs: number) => teardown.run(deadlineMs).then(() => logger.info("orchestrator stopped"))),
      closed: teardown.fatal,
    };
  } catch (err) {
    // Every failed step is already logged by name; the start's own error is the one to report.
    await teardown.run(0).catch(() => undefined);
    throw err;
  }
}

/**
 * The check of a result against the state it is decided on: a result whose publisher (from its
 * subject) may not answer that job, or that claims another action execution's artifact, is
 * refused with a non-retryable error, so the bus dead-letters it with the reason (counted by
 * `sluice.dlq.messages`), and logged as `result rejected`.
 */
function resultRefusal(bus: Bus, logger: Logger, result: JobResult, subject: string): (state: PipelineRuntime) => Error | undefined {
  const publisher = resultPublisherOf(bus.catalog, subject);
  return (state) => {
    const reason = refuseResult(state, result, publisher);
    if (reason === undefined) return undefined;
    logger.warn("result rejected", { pipeline: result.pipelineName, jobId: result.jobId, subject, reason });
    return new DomainError(REFUSED_RESULT_CODE, `result refused (${result.jobId}): ${reason}`);
  };
}

/**
 * The fence of stale attempts (the domain's fencing.ts): a result from a lower delivery than the
 * highest one a runner reported started is refused like a forged one — dead-lettered with
 * REFUSED_RESULT_CODE, so it never fails the action — and counted (`sluice.results.stale`) and
 * logged as `stale result rejected`.
 */
function staleRefusal(logger: Logger, msg: JobResult, outcome: JobOutcome, subject: string, bus: Bus, state: PipelineRuntime): Error | undefined {
  const reason = staleAttempt(state, outcome);
  if (reason === undefined) return undefined;
  const publisher = resultPublisherOf(bus.catalog, subject);
  const pool = publisher?.kind === "runner" ? publisher.pool : undefined;
  metrics.staleResults.add(1, { pool });
  logger.warn("stale result rejected", {
    pipeline: msg.pipelineName,
    jobId: msg.jobId,
    delivery: msg.delivery,
    startedDelivery: runOfJob(state, outcome)?.startedDelivery,
    by: msg.updatedBy,
    reason,
  });
  return new DomainError(REFUSED_RESULT_CODE, `result refused (${msg.jobId}): ${reason}`);
}

/**
 * A message for a pipeline that does not exist (deleted while its jobs ran)
 * has nothing left to change: it is logged and acknowledged.
 */
async function ignoreUnknownPipeline(logger: Logger, pipelineName: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (isDomainError(err) && err.code === "PipelineNotFoundException") {
      logger.warn("message for an unknown pipeline dropped", { pipeline: pipelineName });
      return;
    }
    throw err;
  }
}
