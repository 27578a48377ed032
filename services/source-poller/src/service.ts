import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { SOURCE_POLLER_RULES_DURABLE_NAME, connectBus, isTransientError } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import { createClient, createServer, createTokenAuthenticator, parseTokenTable } from "@sluice/grpc";
import { PipelineService, SourceService, StateChangeEventSchema } from "@sluice/proto";
import { connectMongo, createTeardown, gitHostEnv, once } from "@sluice/service-kit";
import type { SourcePollerConfig } from "./config.js";
import { CursorStore } from "./cursor-store.js";
import { createGitMirrors } from "./git-mirror.js";
import { ObjectCursorStore } from "./object-cursor-store.js";
import { createHeadObject, pollObjectsOnce } from "./object-poller.js";
import type { ObjectPollerOptions } from "./object-poller.js";
import { pollOnce } from "./poller.js";
import type { PollerOptions } from "./poller.js";
import { applyDeclaration, createPerPipeline, resyncDeclarations } from "./resync.js";
import { SOURCE_STATE_PERMISSIONS, createSourceApi } from "./source-api.js";
import { applyEventRules } from "./starts/event-rules.js";
import { fireDueSchedules } from "./starts/scheduler.js";
import { StartStore } from "./starts/start-store.js";
import { createStarter } from "./starts/starter.js";
import { WEBHOOK_PERMISSIONS } from "./webhooks/webhook-api.js";
import { startWebhooks } from "./webhooks/webhooks.js";

export interface SourcePoller {
  port: number;
  /** What webhook URLs start with (the HTTP receiver's address, or WEBHOOK_PUBLIC_URL). */
  webhookBaseUrl: string;
  /** Runs one poll round now (tests; the loop keeps running on its own). */
  pollNow(): Promise<number>;
  /** Resyncs every pipeline from the orchestrator now; 0 without ORCHESTRATOR_ADDR (tests). */
  resyncNow(): Promise<number>;
  /** Starts the schedules due now (tests; a loop does it every second); 0 without ORCHESTRATOR_ADDR. */
  fireSchedulesNow(): Promise<number>;
  stop(deadlineMs: number): Promise<void>;
  /** Rejects, naming the part, when one dies for good (the NATS connection closed by itself). */
  readonly closed: Promise<never>;
}

/**
 * Starts the source poller: it learns Git sources from the orchestrator's
 * declaration events, keeps a cursor per source in MongoDB and publishes
 * SourceChanged when a branch moves (or a tag appears) in a way the source's trigger matches.
 * Replicas share the cursors through per-cursor leases.
 */
export async function startSourcePoller(config: SourcePollerConfig, deps: { logger: Logger }): Promise<SourcePoller> {
  const { logger } = deps;
  const teardown = createTeardown({ logger });
  try {
    const mongo = await connectMongo(config.mongoUrl, config.mongoDb);
    teardown.add("mongo", () => mongo.close());
    const store = new CursorStore(mongo.db);
    await store.ensureIndexes();
    const starts = new StartStore(mongo.db);
    await starts.ensureIndexes();
    const objectSources = new ObjectCursorStore(mongo.db);
    await objectSources.ensureIndexes();
    const bus = await connectBus({ servers: config.natsUrl, name: "source-poller", logger, prefix: config.busPrefix, credentials: config.natsCredentials, tls: config.natsTls });
    teardown.add("bus", () => bus.close());
    teardown.watch("NATS connection", bus.nc.closed());
    await bus.ensureStreams();

    const git = { timeoutMs: config.gitTimeoutMs, hostEnv: config.gitHostEnv ?? gitHostEnv({}) };
    const owner = config.replicaId ?? `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
    // Mirrors are per replica (two processes fetching into one repository fight over its locks);
    // the default one goes with the process.
    const ownCache = config.gitCacheDir === undefined || config.gitCacheDir === "";
    const cacheDir = ownCache ? path.join(tmpdir(), "sluice-source-poller-mirrors", owner.replace(/[^A-Za-z0-9._-]/g, "_")) : (config.gitCacheDir as string);
    mkdirSync(cacheDir, { recursive: true });
    if (ownCache) teardown.add("mirror cache", () => rmSync(cacheDir, { recursive: true, force: true }));
    const pollOptions: PollerOptions = {
      store,
      bus,
      logger,
      intervalMs: config.pollIntervalMs,
      gitTimeoutMs: config.gitTimeoutMs,
      gitHostEnv: git.hostEnv,
      owner,
      leaseMs: config.pollLeaseMs ?? 3 * config.gitTimeoutMs + 30_000,
      mirrors: createGitMirrors(cacheDir, git),
      maxBackoffMs: config.pollMaxBackoffMs ?? 30 * 60_000,
    };
    const webhooks = await startWebhooks({ db: mongo.db, bus, logger, config: config.webhooks, gitTimeoutMs: pollOptions.gitTimeoutMs, gitHostEnv: pollOptions.gitHostEnv, mirrors: pollOptions.mirrors });
    teardown.add("webhook receiver", () => webhooks.receiver.stop());
    const followers = { sourceActions: webhooks.sourceActions, starts, objectSources };
    const objectPoll = objectPollerOptions(config, { store: objectSources, bus, logger, owner });
    const pollAll = async (): Promise<number> => (await pollOnce(pollOptions)) + (objectPoll === undefined ? 0 : await pollObjectsOnce(objectPoll));
    const perPipeline = createPerPipeline();
    const declarations = await bus.consume({
      stream: bus.streams.events,
      durable: "source-poller-declarations",
      filterSubject: bus.subjects.eventKindFilter("declaration"),
      schema: StateChangeEventSchema,
      // MongoDB down: the event waits for it rather than being dead-lettered.
      isTransient: isTransientError,
      handler: async (event) => {
        if (event.detailType !== "Sluice Pipeline Declaration Change") return;
        const declaration = event.state === "DELETED" ? undefined : event.declaration;
        await perPipeline.run(event.pipeline, () => applyDeclaration(store, event.pipeline, declaration, Date.now(), followers));
        if (declaration === undefined) return;
        // Record new sources' baselines now, close to the moment the pipeline's first execution
        // fetches them: a commit pushed after this point is a change, one before it is not.
        await pollAll();
      },
    });
    teardown.add("declaration consumer", () => declarations.stop());

    const tickMs = config.pollTickMs ?? Math.min(config.pollIntervalMs, 1000);
    // The loop wakes when the next source comes due (at most every tickMs), so a change is seen
    // within the interval plus the poll itself, not plus a whole tick. A due source another
    // replica holds is looked at again after 100 ms rather than in a busy loop.
    const untilNextDue = async (): Promise<number> => {
      const dues = [await store.nextDueAt(), objectPoll === undefined ? undefined : await objectSources.nextDueAt()].filter((d): d is number => d !== undefined);
      if (dues.length === 0) return tickMs;
      const due = Math.min(...dues);
      const wait = due - Date.now();
      return Math.max(wait <= 0 ? 100 : wait, 5);
    };
    const polling = startLoop(
      async () => {
        await pollAll();
        return config.pollTickMs === undefined ? Math.min(await untilNextDue(), tickMs) : tickMs;
      },
      (outcome) => {
        if (outcome.failed) {
          logger.error("poll round failed", { error: String(outcome.error) });
          return tickMs;
        }
        return typeof outcome.value === "number" ? outcome.value : tickMs;
      },
    );
    teardown.add("poll loop", () => polling.stop());

    const orchestrator =
      config.orchestratorAddr === undefined || config.orchestratorAddr === ""
        ? undefined
        : createClient(PipelineService, config.orchestratorAddr, { token: config.serviceToken ?? "", deadlineMs: 15_000, tls: config.grpcClientTls });
    const resyncNow = async (): Promise<number> => (orchestrator === undefined ? 0 : resyncDeclarations(orchestrator, store, perPipeline, logger, Date.now, followers));
    let fireSchedulesNow = (): Promise<number> => Promise.resolve(0);
    if (orchestrator === undefined) {
      logger.warn("ORCHESTRATOR_ADDR is not set: a lost declaration event is never caught up with, and schedules and event rules start nothing");
    } else {
      // Schedules and event rules start executions through the orchestrator's API.
      const starter = createStarter(orchestrator);
      fireSchedulesNow = () => fireDueSchedules(starts, starter, logger, Date.now());
      const ticking = startLoop(fireSchedulesNow, (outcome) => {
        if (outcome.failed) logger.error("schedule round failed", { error: String(outcome.error) });
        return 1000;
      });
      teardown.add("schedule loop", () => ticking.stop());
      const client = orchestrator;
      const rules = await bus.consume({
        stream: bus.streams.events,
        durable: SOURCE_POLLER_RULES_DURABLE_NAME,
        filterSubject: bus.subjects.eventKindFilter("pipeline"),
        schema: StateChangeEventSchema,
        // The orchestrator or MongoDB down: the event waits rather than being dead-lettered.
        isTransient: isTransientError,
        handler: async (event) => {
          await applyEventRules(event, starts, starter, client, logger);
        },
      });
      teardown.add("event rule consumer", () => rules.stop());
      teardown.add("orchestrator client", () => orchestrator.close());
      const resyncMs = config.resyncIntervalMs ?? 300_000;
      // At start (a retry soon when the orchestrator is not up yet), then every RESYNC_INTERVAL_MS.
      const resyncing = startLoop(resyncNow, (outcome) => {
        if (!outcome.failed) return resyncMs;
        logger.warn("declaration resync failed; retrying", { error: outcome.error instanceof Error ? outcome.error.message : String(outcome.error) });
        return Math.min(5_000, resyncMs);
      });
      teardown.add("resync loop", () => resyncing.stop());
    }

    const server = createServer({ logger, auth: createTokenAuthenticator(parseTokenTable(config.authTokens)), permissions: { ...WEBHOOK_PERMISSIONS, ...SOURCE_STATE_PERMISSIONS }, tls: config.grpcTls });
    server.add(SourceService, { ...webhooks.api, ...createSourceApi(store) });
    // Registered before listen so a failed bind still closes the server.
    teardown.add("grpc", (ms) => server.stop(ms));
    const port = await server.listen(config.grpcHost, config.grpcPort);
    logger.info("source-poller started", { port, pollIntervalMs: config.pollIntervalMs, replica: owner, leaseMs: pollOptions.leaseMs, webhookUrl: webhooks.receiver.baseUrl });

    return {
      port,
      webhookBaseUrl: webhooks.receiver.baseUrl,
      pollNow: pollAll,
      resyncNow,
      fireSchedulesNow: () => fireSchedulesNow(),
      stop: once((deadlineMs: number) => teardown.run(deadlineMs).then(() => logger.info("source-poller stopped"))),
      closed: teardown.fatal,
    };
  } catch (err) {
    // Every failed step is already logged by name; the start's own error is the one to report.
    await teardown.run(0).catch(() => undefined);
    throw err;
  }
}

/** Polling of ObjectStore sources, when the poller has object-store access (S3_ENDPOINT). */
function objectPollerOptions(
  config: SourcePollerConfig,
  deps: Pick<ObjectPollerOptions, "store" | "bus" | "logger" | "owner">,
): ObjectPollerOptions | undefined {
  if (config.objectStore === undefined) {
    deps.logger.warn("S3_ENDPOINT is not set: ObjectStore (S3) sources are not polled; they start by StartPipelineExecution only");
    return undefined;
  }
  return { ...deps, head: createHeadObject(config.objectStore), intervalMs: config.pollIntervalMs, leaseMs: config.pollLeaseMs ?? 60_000, maxBackoffMs: config.pollMaxBackoffMs ?? 30 * 60_000 };
}

/** How a loop round ended. */
type RoundOutcome = { failed: false; value: unknown } | { failed: true; error: unknown };

/**
 * Runs `round` now, then again after the delay `next` picks from how the round ended; never two
 * rounds at once. `stop` ends the loop and waits for the round in progress.
 */
function startLoop(round: () => Promise<unknown>, next: (outcome: RoundOutcome) => number): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  const loop = (): void => {
    if (stopped) return;
    current = round().then(
      (value: unknown) => schedule({ failed: false, value }),
      (error: unknown) => schedule({ failed: true, error }),
    );
  };
  const schedule = (outcome: RoundOutcome): void => {
    const delayMs = next(outcome);
    if (!stopped) timer = setTimeout(loop, delayMs).unref();
  };
  loop();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}
