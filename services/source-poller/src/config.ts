import { z } from "zod";
import { commonEnv, loadConfig } from "@sluice/service-kit";
import type { LogLevel } from "@sluice/service-kit";

const Env = z.object({
  ...commonEnv,
  // Database holding the source cursors.
  MONGO_DB: z.string().min(1).default("sluice_sources"),
  // How often each Git source is checked with `git ls-remote`.
  POLL_INTERVAL_MS: z.coerce.number().int().min(100).default(60_000),
  // A remote that does not answer within this is skipped until the next poll.
  GIT_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
});

export interface SourcePollerConfig {
  natsUrl: string;
  mongoUrl: string;
  mongoDb: string;
  grpcHost: string;
  grpcPort: number;
  authTokens: string;
  logLevel: LogLevel;
  /** OTEL_EXPORTER_OTLP_ENDPOINT: where traces and metrics go (unset: nowhere). */
  otlpEndpoint?: string | undefined;
  shutdownGraceMs: number;
  pollIntervalMs: number;
  gitTimeoutMs: number;
  busPrefix: string;
}

export function loadSourcePollerConfig(env: Record<string, string | undefined>): SourcePollerConfig {
  const e = loadConfig(Env, env);
  return {
    natsUrl: e.NATS_URL,
    mongoUrl: e.MONGO_URL,
    mongoDb: e.MONGO_DB,
    grpcHost: e.GRPC_HOST,
    grpcPort: e.GRPC_PORT,
    authTokens: e.SLUICE_AUTH_TOKENS,
    logLevel: e.LOG_LEVEL,
    otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    pollIntervalMs: e.POLL_INTERVAL_MS,
    gitTimeoutMs: e.GIT_TIMEOUT_MS,
    busPrefix: e.SLUICE_BUS_PREFIX ?? "",
  };
}
