// @sluice/service-kit: what every service's main.ts needs — configuration from the environment,
// the pino logger, the MongoDB connection and the process lifecycle (teardown, sweepers).
export {
  ConfigError,
  LOG_LEVELS,
  commonConfig,
  commonEnv,
  durationMs,
  egressAllow,
  grpcTlsEnv,
  isDevMode,
  loadConfig,
  mongoUrl,
  natsUrl,
  pemFile,
  port,
  positiveInt,
} from "./config.js";
export type { CommonConfig, CommonConfigOf, CommonEnvInput, ConfigIssue, GrpcClientTls, GrpcServerTls, LogLevel } from "./config.js";
export { DEV_MODE_VARIABLE, MIN_TOKEN_LENGTH, WELL_KNOWN_TOKENS, weakTokenReason } from "./token-policy.js";
export { EgressRefusedError, EgressTimeoutError, createEgressPolicy, egressRequest, parseEgressAllow } from "./egress.js";
export type { EgressPolicy, EgressPolicyOptions, EgressRequest, EgressResolver, EgressResponse, EgressRule } from "./egress.js";
export { REDACTED_KEYS, REDACT_PATHS, createLogger } from "./logger.js";
export type { CreateLoggerOptions } from "./logger.js";
export { GIT_HOST_ENV, gitHostEnv, gitProcessEnv } from "./git-env.js";
export { connectMongo } from "./mongo.js";
export type { ConnectMongoOptions, MongoConnection } from "./mongo.js";
export { FORCE_EXIT_MARGIN_MS, once, runService } from "./lifecycle.js";
export type { ServiceHost, ShutdownSignal, StoppableService } from "./lifecycle.js";
export { ServiceFailure, TeardownError, createTeardown } from "./teardown.js";
export type { Teardown, TeardownOptions, TeardownStep } from "./teardown.js";
export { startSweeper } from "./sweeper.js";
export type { Sweeper } from "./sweeper.js";
export { DEFAULT_METRIC_EXPORT_INTERVAL_MS, DEFAULT_TELEMETRY_SHUTDOWN_TIMEOUT_MS, startTelemetry } from "./telemetry.js";
export type { Telemetry, TelemetryOptions } from "./telemetry.js";
export { METRIC_NAMES, createMetrics, elapsedMs } from "./metrics.js";
export type {
  ActionAttributes,
  DispatchAttributes,
  DlqAttributes,
  ExecutionAttributes,
  QueuedJobs,
  SluiceMetrics,
  StaleResultAttributes,
  TypedCounter,
  TypedHistogram,
} from "./metrics.js";
export { runMain } from "./service-main.js";
export type { MainConfig, MainOptions } from "./service-main.js";
