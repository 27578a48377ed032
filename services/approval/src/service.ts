import type { Bus } from "@sluice/bus";
import { connectBus, isTransientError } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { createServer, createTokenAuthenticator } from "@sluice/grpc";
import { ApprovalService, JobResultSchema, JobSchema } from "@sluice/proto";
import { connectMongo, createEgressPolicy } from "@sluice/service-kit";
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
  // Teardown steps, most recent first; also used to unwind a failed start.
  const teardown: { name: string; run: (deadlineMs: number) => Promise<void> }[] = [];
  const unwind = async (deadlineMs: number): Promise<void> => {
    const end = Date.now() + deadlineMs;
    for (const step of teardown) {
      try {
        await step.run(Math.max(0, end - Date.now()));
      } catch (err) {
        logger.error("shutdown step failed", { step: step.name, err: err instanceof Error ? err.message : String(err) });
      }
    }
  };

  let port: number;
  try {
    const mongo = await connectMongo(config.mongoUrl, config.mongoDb, { serverSelectionTimeoutMS: deps.mongoServerSelectionTimeoutMs });
    teardown.unshift({ name: "mongo", run: () => mongo.client.close() });
    const store = createApprovalStore(mongo.db);
    await store.ensureIndexes();

    const bus = await connectBus({ servers: config.natsUrl, name: "approval", logger, prefix: config.busPrefix, credentials: config.natsCredentials, tls: config.natsTls });
    teardown.unshift({ name: "bus", run: () => bus.close() });
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
    teardown.unshift({ name: "notifications", run: () => notifier.idle() });
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
    teardown.unshift({ name: "job consumer", run: () => consumer.stop() });
    const sweeper = startSweeper({ outbox, store, notifier }, config.sweepMs, now, logger);
    teardown.unshift({ name: "sweeper", run: () => sweeper.stop() });

    const server = createServer({ logger, auth: createTokenAuthenticator(config.authTokens), permissions: APPROVAL_PERMISSIONS, tls: config.grpcTls });
    server.add(ApprovalService, createApprovalApi({ store, outbox, logger, now }));
    // Registered before listen so a failed bind still closes the server.
    teardown.unshift({ name: "grpc", run: (ms) => server.stop(ms) });
    port = await server.listen(config.grpcHost, config.grpcPort);
  } catch (err) {
    await unwind(0);
    throw err;
  }
  logger.info("approval service started", { port });

  let stopping: Promise<void> | undefined;
  return {
    port,
    stop(deadlineMs) {
      stopping ??= unwind(deadlineMs).then(() => logger.info("approval service stopped"));
      return stopping;
    },
  };
}

/**
 * Every `intervalMs`: re-publishes decided-but-unpublished approvals, marks
 * due approvals Expired, and retries due notifications. One sweep at a time;
 * each part's failure is logged without stopping the others; the timer is
 * unref'd so it never keeps a process alive.
 */
function startSweeper(
  parts: { outbox: ResultOutbox; store: ApprovalStore; notifier: Notifier },
  intervalMs: number,
  now: () => Date,
  logger: Logger,
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  let stopped = false;
  const step = async (name: string, run: () => Promise<number>, done: string): Promise<void> => {
    try {
      const n = await run();
      if (n > 0) logger.info(done, { count: n });
    } catch (err) {
      logger.warn("approval sweep failed", { step: name, err: err instanceof Error ? err.message : String(err) });
    }
  };
  const sweep = async (): Promise<void> => {
    await step("results", () => parts.outbox.sweep(now()), "unpublished approval results re-published");
    await step("expiry", () => expireDue(parts.store, now(), logger), "approvals expired");
    await step("notifications", () => parts.notifier.sweep(now()), "approval notifications re-sent");
  };
  const tick = (): void => {
    if (running !== undefined || stopped) return;
    running = sweep().finally(() => {
      running = undefined;
    });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
