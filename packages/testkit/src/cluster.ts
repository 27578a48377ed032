import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { service as healthServiceDefinition } from "grpc-health-check";
import { freePort, launch, type ManagedProcess } from "./process.js";
import { startNats, type NatsServer, type S3Settings } from "./servers.js";

/** The five Sluice services, in start order (dependencies first). */
export const CLUSTER_SERVICES = ["artifact", "approval", "orchestrator", "action-runner", "source-poller"] as const;

/** One of {@link CLUSTER_SERVICES}. */
export type ClusterService = (typeof CLUSTER_SERVICES)[number];

/** Bearer tokens the cluster accepts (all in every service's SLUICE_AUTH_TOKENS). */
export interface ClusterTokens {
  /** Principal `dev`, role admin: for people, the CLI and e2e tests. */
  admin: string;
  /** Principal `orchestrator`, role service: what the orchestrator presents to approval and artifact. */
  service: string;
  /** Principal `runner`, role runner: what action runners present to the artifact service. */
  runner: string;
}

/** A NATS user and password. */
export interface NatsLogin {
  user: string;
  password: string;
}

/**
 * An authorized bus for the cluster: the nats-server `authorization` block and one login per
 * service (e.g. from @sluice/bus `generateBusAuthorization`, which the testkit cannot import
 * because @sluice/bus tests import the testkit). The artifact service does not use the bus.
 */
export interface ClusterBusAuthorization {
  config: string;
  logins: Record<Exclude<ClusterService, "artifact">, NatsLogin> & { admin: NatsLogin };
}

/** Options of {@link startCluster}. */
export interface StartClusterOptions {
  /** Servers the services use (e.g. from `startServers()` or `inject("servers")`). */
  servers: { natsUrl: string; mongoUrl: string; s3: S3Settings };
  /** Repository root; services run from `<repoRoot>/services/<name>/dist/main.js` (build them first). */
  repoRoot: string;
  /**
   * Environment every service starts from. Variables the cluster sets itself (ports, URLs, tokens…) always
   * win over these, except those also listed in `env`.
   * @default the current process environment (so PATH, HOME and git settings reach the runner)
   */
  baseEnv?: Record<string, string | undefined>;
  /** Extra variables for every service; they override the cluster's own. */
  env?: Record<string, string>;
  /** Per-service extra variables; they override everything else. */
  serviceEnv?: Partial<Record<ClusterService, Record<string, string>>>;
  /** SLUICE_BUS_PREFIX: isolates streams and subjects (tests sharing one nats-server). */
  busPrefix?: string;
  /**
   * Runs the cluster on its own nats-server with this authorization (generated for `busPrefix`),
   * each service with its own user; `servers.natsUrl` is then not used. Unset: `servers.natsUrl`
   * without credentials.
   */
  busAuthorization?: ClusterBusAuthorization;
  /** MONGO_DB becomes `<prefix>_<service>` (underscored) so clusters can share one MongoDB. @default service defaults */
  mongoDbPrefix?: string;
  /** POLL_INTERVAL_MS of the source poller. @default the service's default (60 s) */
  pollIntervalMs?: number;
  /** LOG_LEVEL of every service. @default "info" */
  logLevel?: string;
  /** Each service's stdout/stderr is appended to `<logDir>/<service>.log` (created if missing). */
  logDir?: string;
  /** How long each service may take to report SERVING. @default 60000 */
  readyTimeoutMs?: number;
  /** Per service: SIGTERM, then SIGKILL after this. @default 15000 */
  stopGraceMs?: number;
  /** The artifact service's DEPLOY_BUCKETS: which pipelines' ObjectStore deploys may write which buckets. @default {@link DEFAULT_DEPLOY_BUCKETS} */
  deployBuckets?: string;
  /** The artifact service's SOURCE_BUCKETS: which pipelines' ObjectStore sources may read which buckets. @default none */
  sourceBuckets?: string;
}

/** What the example pipeline of `npm start` deploys to (packages/dev-cluster's EXAMPLE_BUCKET). */
export const DEFAULT_DEPLOY_BUCKETS = "example=sluice-example-site";

/** A running cluster. */
export interface Cluster {
  /** gRPC address (`127.0.0.1:<port>`) of each service. */
  addresses: Record<ClusterService, string>;
  tokens: ClusterTokens;
  /** The source poller's webhook receiver (`http://127.0.0.1:<port>`) and the secrets of its native endpoints. */
  webhooks: { url: string; githubSecret: string; gitlabToken: string; giteaSecret: string };
  /** The NATS the services use, and the admin login when it is the cluster's own authorized server. */
  nats?: { url: string; admin?: NatsLogin };
  /** The last few KiB of a service's output (for assertion messages). */
  outputTail(service: ClusterService): string;
  /** Stops the services one by one in reverse start order (SIGTERM, SIGKILL at the deadline). Idempotent. */
  stop(): Promise<void>;
}

// Variables the services read: never inherited from the caller's environment, so a developer's shell
// setting (say MONGO_DB) cannot make two clusters share state.
const SERVICE_VARIABLES = [
  "NATS_URL",
  "NATS_USER",
  "NATS_PASSWORD",
  "NATS_TLS_CA",
  "NATS_TLS_CERT",
  "NATS_TLS_KEY",
  "MONGO_URL",
  "MONGO_DB",
  "GRPC_HOST",
  "GRPC_PORT",
  "SLUICE_AUTH_TOKENS",
  "SLUICE_DEV_MODE",
  "LOG_LEVEL",
  "SHUTDOWN_GRACE_MS",
  "SLUICE_BUS_PREFIX",
  "APPROVAL_ADDR",
  "ARTIFACT_ADDR",
  "SLUICE_SERVICE_TOKEN",
  "ORCHESTRATOR_ADDR",
  "DEFAULT_ARTIFACT_BUCKET",
  "OUTBOX_SWEEP_MS",
  "TIMER_SWEEP_MS",
  "RUNNER_ID",
  "RUNNER_POOL",
  "RUNNER_POOLS",
  "RUNNER_PROVIDERS",
  "RUNNER_CONCURRENCY",
  "WORKSPACE_ROOT",
  "S3_ENDPOINT",
  "S3_ACCESS_KEY",
  "S3_SECRET_KEY",
  "S3_REGION",
  "GRANT_TTL_SECONDS",
  "DEPLOY_BUCKETS",
  "SOURCE_BUCKETS",
  "APPROVAL_SWEEP_MS",
  "POLL_INTERVAL_MS",
  "GIT_TIMEOUT_MS",
  "WEBHOOK_HOST",
  "WEBHOOK_PORT",
  "WEBHOOK_PUBLIC_URL",
  "WEBHOOK_GITHUB_SECRET",
  "WEBHOOK_GITLAB_TOKEN",
  "WEBHOOK_GITEA_SECRET",
];

const DEFAULT_READY_MS = 60_000;
const DEFAULT_STOP_GRACE_MS = 15_000;

function token(): string {
  return randomBytes(24).toString("hex");
}

/** The SLUICE_AUTH_TOKENS table (`<principal>=<role>+<role>:<token>,...`) for the cluster's tokens. */
export function clusterTokenTable(tokens: ClusterTokens): string {
  return [`dev=admin:${tokens.admin}`, `orchestrator=service:${tokens.service}`, `runner=runner:${tokens.runner}`].join(",");
}

interface HealthClient extends grpc.Client {
  Check(
    req: { service: string },
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { status: string }) => void,
  ): grpc.ClientUnaryCall;
}

// grpc-health-check's definition comes from its own proto-loader; the shape is what grpc-js expects.
const HealthClientCtor = grpc.makeClientConstructor(healthServiceDefinition, "grpc.health.v1.Health") as unknown as new (address: string, creds: grpc.ChannelCredentials) => HealthClient;

function checkServing(client: HealthClient): Promise<boolean> {
  return new Promise((resolve) => {
    client.Check({ service: "" }, { deadline: Date.now() + 1000 }, (err, res) => {
      resolve(err === null && res?.status === "SERVING");
    });
  });
}

async function waitServing(proc: ManagedProcess, name: string, address: string, timeoutMs: number): Promise<void> {
  const client = new HealthClientCtor(address, grpc.credentials.createInsecure());
  const deadline = Date.now() + timeoutMs;
  try {
    for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
      if (proc.hasExited()) {
        throw new Error(`${name} exited (${String(await proc.exited)}) before reporting SERVING:\n${proc.outputTail()}`);
      }
      if (await checkServing(client)) return;
      if (Date.now() > deadline) {
        throw new Error(`${name} not SERVING at ${address} after ${timeoutMs} ms:\n${proc.outputTail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  } finally {
    client.close();
  }
}

function dbName(prefix: string | undefined, service: ClusterService): Record<string, string> {
  return prefix === undefined ? {} : { MONGO_DB: `${prefix}_${service.replace(/-/g, "_")}` };
}

/**
 * Starts the five services as `node services/<name>/dist/main.js` processes on random loopback ports, one by
 * one (artifact, approval, orchestrator, action-runner, source-poller), each once its gRPC health says
 * SERVING. If one fails to start, those already running are stopped and the error (with the service's
 * output) is thrown. Used by `npm start` (packages/dev-cluster) and the system tests.
 */
export async function startCluster(opts: StartClusterOptions): Promise<Cluster> {
  for (const name of CLUSTER_SERVICES) {
    const main = join(opts.repoRoot, "services", name, "dist", "main.js");
    if (!existsSync(main)) throw new Error(`startCluster: ${main} is missing (run \`npm run build\` first)`);
  }
  if (opts.logDir !== undefined) mkdirSync(opts.logDir, { recursive: true });

  const tokens: ClusterTokens = { admin: token(), service: token(), runner: token() };
  const ports = {} as Record<ClusterService, number>;
  for (const name of CLUSTER_SERVICES) ports[name] = await freePort();
  const addresses = {} as Record<ClusterService, string>;
  for (const name of CLUSTER_SERVICES) addresses[name] = `127.0.0.1:${ports[name]}`;
  const webhookPort = await freePort();
  const webhooks = { url: `http://127.0.0.1:${webhookPort}`, githubSecret: token(), gitlabToken: token(), giteaSecret: token() };

  const inherited: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.baseEnv ?? process.env)) {
    if (v !== undefined && !SERVICE_VARIABLES.includes(k)) inherited[k] = v;
  }
  const { mongoUrl, s3 } = opts.servers;
  let ownNats: NatsServer | undefined;
  if (opts.busAuthorization !== undefined) {
    ownNats = await startNats({ config: opts.busAuthorization.config, ...(opts.logDir === undefined ? {} : { logFile: join(opts.logDir, "nats-server.log") }) });
  }
  const natsUrl = ownNats?.url ?? opts.servers.natsUrl;
  const natsLogin = (name: ClusterService): Record<string, string> => {
    const logins = opts.busAuthorization?.logins;
    if (logins === undefined || name === "artifact") return {};
    return { NATS_USER: logins[name].user, NATS_PASSWORD: logins[name].password };
  };
  const s3Env = { S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey, S3_REGION: "us-east-1" };
  const common = (name: ClusterService): Record<string, string> => ({
    NATS_URL: natsUrl,
    GRPC_HOST: "127.0.0.1",
    GRPC_PORT: String(ports[name]),
    // Runners get only their own token: a token table on a runner is within its jobs' reach.
    ...(name === "action-runner" ? {} : { SLUICE_AUTH_TOKENS: clusterTokenTable(tokens) }),
    LOG_LEVEL: opts.logLevel ?? "info",
    ...(opts.busPrefix === undefined ? {} : { SLUICE_BUS_PREFIX: opts.busPrefix }),
    ...natsLogin(name),
  });
  const own: Record<ClusterService, Record<string, string>> = {
    artifact: { MONGO_URL: mongoUrl, ...dbName(opts.mongoDbPrefix, "artifact"), ...s3Env, DEPLOY_BUCKETS: opts.deployBuckets ?? DEFAULT_DEPLOY_BUCKETS,
      ...(opts.sourceBuckets === undefined ? {} : { SOURCE_BUCKETS: opts.sourceBuckets }),
    },
    approval: { MONGO_URL: mongoUrl, ...dbName(opts.mongoDbPrefix, "approval") },
    orchestrator: {
      MONGO_URL: mongoUrl,
      ...dbName(opts.mongoDbPrefix, "orchestrator"),
      APPROVAL_ADDR: addresses.approval,
      ARTIFACT_ADDR: addresses.artifact,
      SLUICE_SERVICE_TOKEN: tokens.service,
    },
    "action-runner": {
      ARTIFACT_ADDR: addresses.artifact,
      SLUICE_SERVICE_TOKEN: tokens.runner,
      // No S3 credential: deploys get presigned PUTs from the artifact service.
      RUNNER_ID: `runner-${randomBytes(3).toString("hex")}`,
    },
    "source-poller": {
      MONGO_URL: mongoUrl,
      ...dbName(opts.mongoDbPrefix, "source-poller"),
      ORCHESTRATOR_ADDR: addresses.orchestrator,
      SLUICE_SERVICE_TOKEN: tokens.service,
      // HEADs ObjectStore sources; runners never get an object-store credential.
      ...s3Env,
      ...(opts.pollIntervalMs === undefined ? {} : { POLL_INTERVAL_MS: String(opts.pollIntervalMs) }),
      WEBHOOK_HOST: "127.0.0.1",
      WEBHOOK_PORT: String(webhookPort),
      WEBHOOK_GITHUB_SECRET: webhooks.githubSecret,
      WEBHOOK_GITLAB_TOKEN: webhooks.gitlabToken,
      WEBHOOK_GITEA_SECRET: webhooks.giteaSecret,
    },
  };

  const running: { name: ClusterService; proc: ManagedProcess }[] = [];
  const graceMs = opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
  const stopAll = async (): Promise<void> => {
    // Reverse order, one at a time: a service stops before the ones it calls.
    for (const { proc } of [...running].reverse()) await proc.stop(graceMs);
    await ownNats?.stop();
  };

  // The orchestrator creates the streams; with per-service users the others may not and wait
  // for them, so it starts before approval (whose address it only dials on demand).
  const startOrder: readonly ClusterService[] =
    opts.busAuthorization === undefined ? CLUSTER_SERVICES : ["artifact", "orchestrator", "approval", "action-runner", "source-poller"];
  try {
    for (const name of startOrder) {
      const env = { ...inherited, ...common(name), ...own[name], ...opts.env, ...opts.serviceEnv?.[name] };
      const main = join(opts.repoRoot, "services", name, "dist", "main.js");
      const proc = launch(name, process.execPath, [main], {
        env,
        cwd: opts.repoRoot,
        ...(opts.logDir === undefined ? {} : { logFile: join(opts.logDir, `${name}.log`) }),
      });
      running.push({ name, proc });
      await waitServing(proc, name, addresses[name], opts.readyTimeoutMs ?? DEFAULT_READY_MS);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    addresses,
    tokens,
    webhooks,
    nats: opts.busAuthorization === undefined ? { url: natsUrl } : { url: natsUrl, admin: opts.busAuthorization.logins.admin },
    outputTail: (service) => running.find((r) => r.name === service)?.proc.outputTail() ?? "",
    stop: () => (stopping ??= stopAll()),
  };
}
