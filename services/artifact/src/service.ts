import { noopLogger } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { createServer, createTokenAuthenticator } from "@sluice/grpc";
import { ArtifactService } from "@sluice/proto";
import { connectMongo, createTeardown, once } from "@sluice/service-kit";
import { ARTIFACT_PERMISSIONS, createArtifactApi } from "./artifact-api.js";
import { createArtifactStore } from "./artifact-store.js";
import type { ArtifactConfig } from "./config.js";
import { createDeployAllowanceStore } from "./deploy-allowances.js";
import { createObjectStore } from "./object-store.js";

/** Injected collaborators; all optional. */
export interface ArtifactServiceDeps {
  /** @default noopLogger */
  logger?: Logger;
  /** The clock for creation times and grant expiry. @default () => new Date() */
  now?: () => Date;
}

/** A running artifact service. */
export interface RunningArtifactService {
  /** The bound gRPC port. */
  readonly port: number;
  /** Stops taking calls, lets calls in flight finish within `deadlineMs`, then closes MongoDB. Idempotent. */
  stop(deadlineMs: number): Promise<void>;
}

/**
 * Starts the artifact service: MongoDB (metadata, indexes) first, then the
 * gRPC server. The object store is reached lazily (buckets are created on
 * first use), so a slow MinIO does not block start-up. Stopping runs in reverse.
 */
export async function startArtifactService(config: ArtifactConfig, deps: ArtifactServiceDeps = {}): Promise<RunningArtifactService> {
  const logger = deps.logger ?? noopLogger;
  const now = deps.now ?? (() => new Date());
  const teardown = createTeardown({ logger });
  let port: number;
  try {
    const mongo = await connectMongo(config.mongoUrl, config.mongoDb);
    teardown.add("mongo", () => mongo.close());
    const server = createServer({ logger, auth: createTokenAuthenticator(config.authTokens), permissions: ARTIFACT_PERMISSIONS, tls: config.grpcTls });
    // Calls in flight use MongoDB, so the server drains before the client closes.
    teardown.add("grpc", (ms) => server.stop(ms));
    const store = createArtifactStore(mongo.db);
    await store.ensureIndexes();
    const objects = createObjectStore(config.s3);
    const allowances = createDeployAllowanceStore(mongo.db);
    server.add(
      ArtifactService,
      createArtifactApi({ store, allowances, deployBuckets: config.deployBuckets, sourceBuckets: config.sourceBuckets, objects, grantTtlSeconds: config.grantTtlSeconds, logger, now }),
    );
    port = await server.listen(config.grpcHost, config.grpcPort);
  } catch (err) {
    // Every failed step is already logged by name; the start's own error is the one to report.
    await teardown.run(0).catch(() => undefined);
    throw err;
  }
  logger.info("artifact service started", { port });

  return {
    port,
    stop: once((deadlineMs: number) => teardown.run(deadlineMs).then(() => logger.info("artifact service stopped"))),
  };
}
