import { connectBus } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import { createServer, createTokenAuthenticator, parseTokenTable } from "@sluice/grpc";
import { StateChangeEventSchema } from "@sluice/proto";
import { connectMongo } from "@sluice/service-kit";
import type { SourcePollerConfig } from "./config.js";
import { CursorStore } from "./cursor-store.js";
import { gitSourcesOf } from "./git-sources.js";
import { pollOnce } from "./poller.js";

export interface SourcePoller {
  port: number;
  /** Runs one poll round now (tests; the loop keeps running on its own). */
  pollNow(): Promise<number>;
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
  const declarations = await bus.consume({
    stream: bus.streams.events,
    durable: "source-poller-declarations",
    filterSubject: bus.subjects.eventKindFilter("declaration"),
    schema: StateChangeEventSchema,
    handler: async (event) => {
      if (event.detailType !== "Sluice Pipeline Declaration Change") return;
      if (event.state === "DELETED" || !event.declaration) {
        await store.removePipeline(event.pipeline);
        return;
      }
      await store.syncPipeline(event.pipeline, gitSourcesOf(event.declaration), Date.now());
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

  const server = createServer({ logger, auth: createTokenAuthenticator(parseTokenTable(config.authTokens)), permissions: {} });
  const port = await server.listen(config.grpcHost, config.grpcPort);
  logger.info("source-poller started", { port, pollIntervalMs: config.pollIntervalMs });

  let stopping: Promise<void> | undefined;
  return {
    port,
    pollNow: () => pollOnce(pollOptions),
    stop: (deadlineMs) =>
      (stopping ??= (async () => {
        // Order: stop answering, stop taking work, let the current round finish, then close connections.
        stopped = true;
        if (timer) clearTimeout(timer);
        await server.stop(deadlineMs);
        await declarations.stop();
        await round;
        await bus.close();
        await mongo.close();
      })()),
  };
}
