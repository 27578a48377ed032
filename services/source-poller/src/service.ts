import { connectBus, isTransientError } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import { createClient, createServer, createTokenAuthenticator, parseTokenTable } from "@sluice/grpc";
import { PipelineService, StateChangeEventSchema } from "@sluice/proto";
import { connectMongo } from "@sluice/service-kit";
import type { SourcePollerConfig } from "./config.js";
import { CursorStore } from "./cursor-store.js";
import { pollOnce } from "./poller.js";
import { applyDeclaration, createPerPipeline, resyncDeclarations } from "./resync.js";

export interface SourcePoller {
  port: number;
  /** Runs one poll round now (tests; the loop keeps running on its own). */
  pollNow(): Promise<number>;
  /** Resyncs every pipeline from the orchestrator now; 0 without ORCHESTRATOR_ADDR (tests). */
  resyncNow(): Promise<number>;
  stop(deadlineMs: number): Promise<void>;
}

/**
 * Starts the source poller: it learns Git sources from the orchestrator's
 * declaration events, keeps a cursor per source in MongoDB and publishes
 * SourceChanged when a branch moves.
 */
export async function startSourcePoller(config: SourcePollerConfig, deps: { logger: Logger }): Promise<SourcePoller> {
  const { logger } = deps;
  const mongo = await connectMongo(config.mongoUrl, config.mongoDb);
  const store = new CursorStore(mongo.db);
  await store.ensureIndexes();
  const bus = await connectBus({ servers: config.natsUrl, name: "source-poller", logger, prefix: config.busPrefix, credentials: config.natsCredentials, tls: config.natsTls });
  await bus.ensureStreams();

  const pollOptions = { store, bus, logger, intervalMs: config.pollIntervalMs, gitTimeoutMs: config.gitTimeoutMs };
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
      await perPipeline.run(event.pipeline, () => applyDeclaration(store, event.pipeline, declaration, Date.now()));
      if (declaration === undefined) return;
      // Record new sources' baselines now, close to the moment the pipeline's first execution
      // fetches them: a commit pushed after this point is a change, one before it is not.
      await pollOnce(pollOptions);
    },
  });

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<unknown> = Promise.resolve();
  const tickMs = Math.min(config.pollIntervalMs, 1000);
  const loop = (): void => {
    if (stopped) return;
    round = pollOnce(pollOptions)
      .catch((err: unknown) => logger.error("poll round failed", { error: String(err) }))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, tickMs).unref();
      });
  };
  loop();

  const orchestrator =
    config.orchestratorAddr === undefined || config.orchestratorAddr === ""
      ? undefined
      : createClient(PipelineService, config.orchestratorAddr, { token: config.serviceToken ?? "", deadlineMs: 15_000, tls: config.grpcClientTls });
  if (orchestrator === undefined) logger.warn("ORCHESTRATOR_ADDR is not set: a lost declaration event is never caught up with");
  const resyncNow = async (): Promise<number> => (orchestrator === undefined ? 0 : resyncDeclarations(orchestrator, store, perPipeline, logger));
  let resyncTimer: NodeJS.Timeout | undefined;
  let resyncing: Promise<unknown> = Promise.resolve();
  // At start (a retry soon when the orchestrator is not up yet), then every RESYNC_INTERVAL_MS.
  const resyncLoop = (): void => {
    if (stopped || orchestrator === undefined) return;
    let failed = false;
    resyncing = resyncNow()
      .catch((err: unknown) => {
        failed = true;
        logger.warn("declaration resync failed; retrying", { error: err instanceof Error ? err.message : String(err) });
      })
      .finally(() => {
        if (!stopped) resyncTimer = setTimeout(resyncLoop, failed ? Math.min(5_000, config.resyncIntervalMs ?? 300_000) : (config.resyncIntervalMs ?? 300_000)).unref();
      });
  };
  resyncLoop();

  const server = createServer({ logger, auth: createTokenAuthenticator(parseTokenTable(config.authTokens)), permissions: {}, tls: config.grpcTls });
  const port = await server.listen(config.grpcHost, config.grpcPort);
  logger.info("source-poller started", { port, pollIntervalMs: config.pollIntervalMs });

  let stopping: Promise<void> | undefined;
  return {
    port,
    pollNow: () => pollOnce(pollOptions),
    resyncNow,
    stop: (deadlineMs) =>
      (stopping ??= (async () => {
        // Order: stop answering, stop taking work, let the current round finish, then close connections.
        stopped = true;
        if (timer) clearTimeout(timer);
        if (resyncTimer) clearTimeout(resyncTimer);
        await server.stop(deadlineMs);
        await declarations.stop();
        await round;
        await resyncing;
        orchestrator?.close();
        await bus.close();
        await mongo.close();
      })()),
  };
}
