export {
  cachedBinaryLocation,
  ensureBinary,
  ensureMongoServerBinary,
  serverPins,
} from "./binaries.js";
export type { BinaryName, BinaryOptions, MongoServerBinary } from "./binaries.js";
export { freePort, launch } from "./process.js";
export type { LaunchOptions, ManagedProcess } from "./process.js";
export { s3SettingsFromUrl, startMinio, startMongo, startNats, startServers } from "./servers.js";
export type {
  MinioServer,
  MongoServer,
  NatsServer,
  S3Settings,
  Servers,
  StartNatsOptions,
  StartServerOptions,
  StartServersOptions,
} from "./servers.js";
export type { ProvidedServers } from "./vitest-context.js";
export { CLUSTER_SERVICES, DEFAULT_DEPLOY_BUCKETS, clusterTokenTable, startCluster } from "./cluster.js";
export type { Cluster, ClusterBusAuthorization, ClusterService, ClusterTokens, NatsLogin, StartClusterOptions } from "./cluster.js";
export { AlsContextManager, inMemoryTracing } from "./tracing.js";
export type { InMemoryTracing } from "./tracing.js";
export { makeTestPki } from "./pki.js";
export type { TestPki } from "./pki.js";
export { recordingLogger, startTcpRelay } from "./relay.js";
export { startGitHttpServer } from "./git-http.js";
export type { GitHttpServer } from "./git-http.js";
export type { RecordedLine, RecordingLogger, TcpRelay } from "./relay.js";
