import type { Bus } from "@sluice/bus";
import { connectBus, isTransientError } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { createServer, createTokenAuthenticator } from "@sluice/grpc";
import { ApprovalService, JobResultSchema, JobSchema } from "@sluice/proto";
import { connectMongo, createEgressPolicy, createTeardown, once, startSweeper } from "@sluice/service-kit";
import { APPROVAL_PERMISSIONS, createApprovalApi } from "./approval-api.js";
import { createApprovalStore } from "./approval-store.js";
import type { ApprovalConfig } from "./config.js";
import { expireDue } from "./expiry.js";
import { createJobIntake } from "./job-intake.js";
import { createNotifier } from "./notifications.js";
import type { Notifier } from "./notifications.js";
import { createResultOutbox } from "./results.js";
import type { ResultOutbox } from "./results.js";
import type { ApprovalStore } from "./approval-store.js";

/** The durable consumer name on SLUICE_JOBS; every replica shares it, so each approval job is taken once. */
export const APPROVAL_DURABLE = "approval";

/** Injected collaborators; all optional. */
export interface ApprovalServiceDeps {
  /** @default noopLogger */
  logger?: Logger;
  /** The clock for created/decided times, expiry and notification retries. @default () => new Date() */
  now?: () => Date;
  /** Timeout of one notification POST. @default NOTIFY_TIMEOUT_MS (5 s) */
  notifyTimeoutMs?: number;
  /** How long a MongoDB operation waits for a reachable server (tests of outages shorten it). @default 10000 */
  mongoServerSelectionTimeoutMs?: number;
}

/** A running approval service. */
export interface RunningApprovalService {
  /** The bound gRPC port. */
  readonly port: number;
  /** Stops taking calls and jobs, finishes work in flight (calls within `deadlineMs`), then disconnects. Idempotent. */
  stop(deadlineMs: number): Promise<void>;
  /** Rejects, naming the part, when one dies for good (the NATS connection closed by itself). */
  readonly closed: Promise<never>;
}

/**
 * `<root>.jobs.*.Approval.Manual`: approval jobs of every runner pool (the
 * orchestrator publishes them to pool `default`, but a pool is a runner
 * concept that approvals do not have).
 */
export function approvalJobFilter(bus: Bus): string {
  const jobs = bus.subjects.streamFilter("jobs"); // "<root>.jobs.>"
  return `${jobs.slice(0, -1)}*.Approval.Manual`;
}

/**
 * Starts the approval service: MongoDB (state) first, then the bus (streams,
 * the approval-job consumer, the result sweeper), then the gRPC server, so
 * nothing is served before what it needs exists. Stopping runs in reverse.
 */
export async function startApprovalService(config: ApprovalConfig, deps: ApprovalServiceDeps = {}): Promise<RunningApprovalService> {
  const logger = deps.logger ?? noopLogger;
  const now = deps.now ?? (() => new Date());
  const teardown = createTeardown({ logger });
  let port: number;
  try {
    const mongo = await connectMongo(config.mongoUrl, config.mongoDb, { serverSelectionTimeoutMS: deps.mongoServerSelectionTimeoutMs });
    teardown.add("mongo", () => mongo.close());
    const store = createApprovalStore(mongo.db);
    await store.ensureIndexes();

    const bus = await connectBus({ servers: config.natsUrl, name: "approval", logger, prefix: config.busPrefix, credentials: config.natsCredentials, tls: config.natsTls });
    teardown.add("bus", () => bus.close());
    teardown.watch("NATS connection", bus.nc.closed());
    await bus.ensureStreams();
    const outbox = createResultOutbox(
      store,
      async (result, msgId) => {
        await bus.publish(bus.subjects.resultSubject(result.pipelineName, "approval"), JobResultSchema, result, { msgId });
      },
      logger,
    );
    const notifier = createNotifier(
      store,
      { region: config.region ?? "local", consoleUrl: config.consoleUrl, timeoutMs: deps.notifyTimeoutMs, egress: createEgressPolicy({ allow: config.egressAllow }) },
      logger,
      now,
    );
    // Stopped after the consumer (teardown runs most recent first): no kick comes after it.
    teardown.add("notifications", () => notifier.idle());
    const intake = createJobIntake(store, logger, now, notifier);
    const consumer = await bus.consume({
      stream: bus.streams.jobs,
      durable: APPROVAL_DURABLE,
      filterSubject: approvalJobFilter(bus),
      schema: JobSchema,
      // MongoDB down: the approval job waits for it rather than being dead-lettered.
      isTransient: isTransientError,
      handler: (job) => intake(job),
    });
    teardown.add("job consumer", () => consumer.stop());
    const sweeper = startSweeper("approval", config.sweepMs, approvalSweep({ outbox, store, notifier }, now, logger), logger);
    teardown.add("sweeper", () => sweeper.stop());

    const server = createServer({ logger, auth: createTokenAuthenticator(config.authTokens), permissions: APPROVAL_PERMISSIONS, tls: config.grpcTls });
    server.add(ApprovalService, createApprovalApi({ store, outbox, logger, now }));
    // Registered before listen so a failed bind still closes the server.
    teardown.add("grpc", (ms) => server.stop(ms));
    port = await server.listen(config.grpcHost, config.grpcPort);
  } catch (err) {
    // Every failed step is already logged by name; the start's own error is the one to report.
    await teardown.run(0).catch(() => undefined);
    throw err;
  }
  logger.info("approval service started", { port });

  return {
    port,
    stop: once((deadlineMs: number) => teardown.run(deadlineMs).then(() => logger.info("approval service stopped"))),
    closed: teardown.fatal,
  };
}

/**
 * One approval sweep: re-publishes decided-but-unpublished approvals, marks due approvals
 * Expired, and retries due notifications. Each part's failure is logged without stopping the
 * others (the sweeper runs one sweep at a time).
 */
function approvalSweep(parts: { outbox: ResultOutbox; store: ApprovalStore; notifier: Notifier }, now: () => Date, logger: Logger): () => Promise<void> {
  const step = async (name: string, run: () => Promise<number>, done: string): Promise<void> => {
    try {
      const n = await run();
      if (n > 0) logger.info(done, { count: n });
    } catch (err) {
      logger.warn("approval sweep failed", { step: name, err: err instanceof Error ? err.message : String(err) });
    }
  };
  return async () => {
    await step("results", () => parts.outbox.sweep(now()), "unpublished approval results re-published");
    await step("expiry", () => expireDue(parts.store, now(), logger), "approvals expired");
    await step("notifications", () => parts.notifier.sweep(now()), "approval notifications re-sent");
  };
}
