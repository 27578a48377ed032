import { z } from "zod";
import { ConfigError, commonConfig, commonEnv, gitHostEnv, loadConfig } from "@sluice/service-kit";
import type { CommonConfig } from "@sluice/service-kit";
import type { ObjectStoreAccess } from "./object-poller.js";
import type { WebhookReceiverConfig } from "./webhooks/receiver.js";

const Env = z.object({
  ...commonEnv,
  // Database holding the source cursors.
  MONGO_DB: z.string().min(1).default("sluice_sources"),
  // How often each Git source is checked with `git ls-remote`.
  POLL_INTERVAL_MS: z.coerce.number().int().min(100).default(60_000),
  // A remote that does not answer within this is skipped until the next poll.
  GIT_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  // How long a replica holds a source while polling it; a crashed replica's sources are polled
  // by another one after this. Default: 3 git timeouts + 30 s (ls-remote, fetch and diff).
  POLL_LEASE_MS: z.coerce.number().int().min(1000).optional(),
  // A failing remote is retried after the interval doubled per failure, at most this long.
  POLL_MAX_BACKOFF_MS: z.coerce.number().int().min(1000).default(30 * 60_000),
  // Where bare mirrors for filePaths triggers are kept (a cache: safe to delete). Default: a
  // directory under the system temp dir.
  GIT_CACHE_DIR: z.string().default(""),
  // The orchestrator, asked for every pipeline at start and every RESYNC_INTERVAL_MS, so a lost
  // declaration event is caught up with. Empty: declaration events only.
  ORCHESTRATOR_ADDR: z.string().default(""),
  // Bearer token (role `service`) presented to the orchestrator.
  SLUICE_SERVICE_TOKEN: z.string().default(""),
  RESYNC_INTERVAL_MS: z.coerce.number().int().min(1000).default(300_000),
  // The webhook receiver (HTTP). Port 0: a random free port, logged at start.
  WEBHOOK_HOST: z.string().min(1).default("127.0.0.1"),
  WEBHOOK_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  // What webhook URLs start with when the receiver sits behind a proxy; empty: http://host:port.
  WEBHOOK_PUBLIC_URL: z
    .string()
    .regex(/^https?:\/\/[^\s?#]+$/, "must be an http(s) URL without query or fragment, e.g. https://ci.example.com/sluice")
    .default(""),
  WEBHOOK_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(25 * 1024 * 1024).default(1024 * 1024),
  // Secrets of the native endpoints /hooks/github, /hooks/gitlab, /hooks/gitea; unset: 404.
  WEBHOOK_GITHUB_SECRET: z.string().default(""),
  WEBHOOK_GITLAB_TOKEN: z.string().default(""),
  WEBHOOK_GITEA_SECRET: z.string().default(""),
  // How long a delivery id is remembered, so its replay starts nothing.
  WEBHOOK_DELIVERY_TTL_SECONDS: z.coerce.number().int().min(60).default(7 * 24 * 3600),
  // The object store ObjectStore (AWS S3) sources are polled in, as the artifact service reads it
  // (e.g. http://127.0.0.1:9000). Empty: ObjectStore sources are not polled.
  S3_ENDPOINT: z.string().default(""),
  S3_ACCESS_KEY: z.string().default(""),
  S3_SECRET_KEY: z.string().default(""),
  S3_REGION: z.string().min(1).default("us-east-1"),
});

export interface SourcePollerConfig extends CommonConfig {
  mongoDb: string;
  pollIntervalMs: number;
  gitTimeoutMs: number;
  /** @default 3 × gitTimeoutMs + 30 s */
  pollLeaseMs?: number;
  /** @default 30 minutes */
  pollMaxBackoffMs?: number;
  /** "" or absent: a directory under the system temp dir. */
  gitCacheDir?: string;
  /** How often the loop looks for due sources; @default min(pollIntervalMs, 1000). Tests that drive polls set it high. */
  pollTickMs?: number;
  /** Names this replica's leases; @default host-pid-random */
  replicaId?: string;
  /**
   * The part of the poller's environment git may see: PATH and the network settings
   * (`GIT_HOST_ENV`), never `GIT_*`, `HOME` or a token. @default a PATH only
   */
  gitHostEnv?: Readonly<Record<string, string>>;
  /** SLUICE_BUS_PREFIX; empty: the production subjects. */
  busPrefix: string;
  /** Empty: no resync, declaration events only. */
  orchestratorAddr?: string;
  serviceToken?: string;
  resyncIntervalMs?: number;
  /** The webhook receiver; omitted: 127.0.0.1, a random port, no native endpoints. */
  webhooks?: Partial<WebhookReceiverConfig>;
  /** Where ObjectStore sources are HEADed (S3_*); absent: they are not polled. */
  objectStore?: ObjectStoreAccess;
}

export function loadSourcePollerConfig(env: Record<string, string | undefined>): SourcePollerConfig {
  const e = loadConfig(Env, env);
  const objectStore = objectStoreOf(e);
  return {
    ...(objectStore === undefined ? {} : { objectStore }),
    ...commonConfig(e),
    mongoDb: e.MONGO_DB,
    pollIntervalMs: e.POLL_INTERVAL_MS,
    gitTimeoutMs: e.GIT_TIMEOUT_MS,
    ...(e.POLL_LEASE_MS === undefined ? {} : { pollLeaseMs: e.POLL_LEASE_MS }),
    pollMaxBackoffMs: e.POLL_MAX_BACKOFF_MS,
    gitCacheDir: e.GIT_CACHE_DIR,
    gitHostEnv: gitHostEnv(env),
    busPrefix: e.SLUICE_BUS_PREFIX ?? "",
    orchestratorAddr: e.ORCHESTRATOR_ADDR,
    serviceToken: e.SLUICE_SERVICE_TOKEN,
    resyncIntervalMs: e.RESYNC_INTERVAL_MS,
    webhooks: {
      host: e.WEBHOOK_HOST,
      port: e.WEBHOOK_PORT,
      publicUrl: e.WEBHOOK_PUBLIC_URL,
      maxBodyBytes: e.WEBHOOK_MAX_BODY_BYTES,
      githubSecret: e.WEBHOOK_GITHUB_SECRET,
      gitlabToken: e.WEBHOOK_GITLAB_TOKEN,
      giteaSecret: e.WEBHOOK_GITEA_SECRET,
      deliveryTtlSeconds: e.WEBHOOK_DELIVERY_TTL_SECONDS,
    },
  };
}

/** S3_ENDPOINT & co. as the minio client takes them; undefined when S3_ENDPOINT is empty. */
function objectStoreOf(e: { S3_ENDPOINT: string; S3_ACCESS_KEY: string; S3_SECRET_KEY: string; S3_REGION: string }): ObjectStoreAccess | undefined {
  if (e.S3_ENDPOINT === "") return undefined;
  const problem = (message: string): ConfigError => new ConfigError([{ variable: "S3_ENDPOINT", message }]);
  let url: URL;
  try {
    url = new URL(e.S3_ENDPOINT);
  } catch {
    throw problem(`"${e.S3_ENDPOINT}" is not a URL (e.g. http://127.0.0.1:9000)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw problem("must use http or https");
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.username !== "") throw problem("must be scheme://host[:port] without path, query or credentials");
  if (e.S3_ACCESS_KEY === "" || e.S3_SECRET_KEY === "") {
    throw new ConfigError([{ variable: e.S3_ACCESS_KEY === "" ? "S3_ACCESS_KEY" : "S3_SECRET_KEY", message: "is required when S3_ENDPOINT is set" }]);
  }
  const useSSL = url.protocol === "https:";
  return {
    endPoint: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port === "" ? (useSSL ? 443 : 80) : Number(url.port),
    useSSL,
    accessKey: e.S3_ACCESS_KEY,
    secretKey: e.S3_SECRET_KEY,
    region: e.S3_REGION,
  };
}
