import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { ensureBinary, ensureMongoServerBinary, type BinaryOptions } from "./binaries.js";
import { freePort, launch, makeTempDir, removeDir, waitUntilReady, type ManagedProcess } from "./process.js";

/** S3 connection settings in the shape the `minio` client takes, plus the endpoint as a URL. */
export interface S3Settings {
  /** Host name or IP, e.g. `127.0.0.1`. */
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  /** `http(s)://<endPoint>:<port>` — what services take as `S3_ENDPOINT`. */
  url: string;
}

/** Options shared by the server launchers. */
export interface StartServerOptions {
  /** Binary lookup (explicit path, PATH, cache dir, build log). */
  binary?: BinaryOptions;
  /** How long to wait for the server to become ready. @default 60000 (FerretDB's first start and MinIO take seconds) */
  readyTimeoutMs?: number;
  /** Append the server's stdout/stderr to this file. */
  logFile?: string;
}

/** Options of {@link startNats}. */
export interface StartNatsOptions extends StartServerOptions {
  /**
   * nats-server configuration text, e.g. the `authorization { users = [...] }` block that
   * @sluice/bus's `natsAuthorizationConfig` renders; written to a 0600 file in the store dir.
   * Unset: no authorization (any connection may do anything).
   */
  config?: string;
}

/** A running nats-server with JetStream. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** HTTP monitoring port (`/healthz`, `/jsz`). */
  monitorPort: number;
  /** JetStream store directory (removed by stop). */
  storeDir: string;
  /** SIGTERM, SIGKILL after 5 s, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** A running MongoDB-compatible server. */
export interface MongoServer {
  /** `mongodb://127.0.0.1:<port>/` */
  url: string;
  port: number;
  /** `mongod` (real MongoDB from PATH) or `ferretdb` (FerretDB over SQLite). */
  kind: "mongod" | "ferretdb";
  dataDir: string;
  /** SIGTERM, SIGKILL after 5 s, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** A running single-drive MinIO. */
export interface MinioServer extends S3Settings {
  consolePort: number;
  dataDir: string;
  /** SIGTERM, SIGKILL after 5 s, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_READY_MS = 60_000;
const PORT_RACE_ATTEMPTS = 3;

// A start that failed because the child exited early is most likely a lost race for the port picked by
// freePort(); those are retried with fresh ports, timeouts are not.
class ExitedEarly extends Error {}

async function withPortRetry<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof ExitedEarly) || attempt >= PORT_RACE_ATTEMPTS) throw err;
    }
  }
}

async function ready(proc: ManagedProcess, what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  try {
    await waitUntilReady(proc, what, probe, timeoutMs);
  } catch (err) {
    const exitedEarly = proc.hasExited();
    await proc.stop();
    throw exitedEarly ? new ExitedEarly(err instanceof Error ? err.message : String(err)) : err;
  }
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", reject);
  });
}

function stopper(proc: ManagedProcess, dir: string): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      await proc.stop();
      await removeDir(dir);
    })();
    return stopping;
  };
}

async function cleanupOnFailure<T>(dir: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}

/**
 * Starts nats-server with JetStream on a random loopback port and a temp store dir; resolves once
 * `/healthz` (which includes JetStream) answers 200.
 */
export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServer> {
  const bin = await ensureBinary("nats-server", opts.binary);
  return withPortRetry(async () => {
    const storeDir = await makeTempDir("nats");
    return cleanupOnFailure(storeDir, async () => {
      const [port, monitorPort] = [await freePort(), await freePort()];
      const args = ["-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort)];
      if (opts.config !== undefined) {
        // The file holds passwords: readable by this user only, removed with the store dir.
        const file = join(storeDir, "nats.conf");
        await writeFile(file, opts.config, { mode: 0o600 });
        args.push("-c", file);
      }
      const proc = launch("nats-server", bin, args, { env: {}, ...logOpt(opts) });
      await ready(proc, "nats-server", () => httpOk(`http://127.0.0.1:${monitorPort}/healthz`), opts.readyTimeoutMs ?? DEFAULT_READY_MS);
      return { url: `nats://127.0.0.1:${port}`, port, monitorPort, storeDir, stop: stopper(proc, storeDir) };
    });
  });
}

async function mongoPing(url: string): Promise<boolean> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 1000, connectTimeoutMS: 1000, directConnection: true });
  try {
    await client.connect();
    const res = await client.db("admin").command({ ping: 1 });
    return res["ok"] === 1;
  } finally {
    await client.close();
  }
}

/**
 * Starts a MongoDB-compatible server on a random loopback port with a temp data dir: `mongod` when one is
 * on PATH, else FerretDB (SQLite backend). Resolves once a `ping` through the mongodb driver succeeds.
 */
export async function startMongo(opts: StartServerOptions = {}): Promise<MongoServer> {
  const { kind, path: bin } = await ensureMongoServerBinary(opts.binary);
  return withPortRetry(async () => {
    const dataDir = await makeTempDir(kind);
    return cleanupOnFailure(dataDir, async () => {
      const port = await freePort();
      const args =
        kind === "mongod"
          ? ["--dbpath", dataDir, "--port", String(port), "--bind_ip", "127.0.0.1", "--quiet"]
          : [
              "--handler=sqlite",
              `--sqlite-url=file:${dataDir}/`,
              `--listen-addr=127.0.0.1:${port}`,
              `--state-dir=${dataDir}`,
              // Its debug HTTP listener defaults to the fixed port 8088, which parallel instances would fight over.
              "--debug-addr=-",
              "--telemetry=disable",
              "--log-level=warn",
            ];
      const proc = launch(kind, bin, args, { env: {}, cwd: dataDir, ...logOpt(opts) });
      const url = `mongodb://127.0.0.1:${port}/`;
      await ready(proc, kind, () => mongoPing(url), opts.readyTimeoutMs ?? DEFAULT_READY_MS);
      return { url, port, kind, dataDir, stop: stopper(proc, dataDir) };
    });
  });
}

/**
 * Starts a single-drive MinIO with random root credentials on random loopback ports and a temp data dir;
 * resolves once `/minio/health/live` answers 200.
 */
export async function startMinio(opts: StartServerOptions = {}): Promise<MinioServer> {
  const bin = await ensureBinary("minio", opts.binary);
  return withPortRetry(async () => {
    const dataDir = await makeTempDir("minio");
    return cleanupOnFailure(dataDir, async () => {
      const [port, consolePort] = [await freePort(), await freePort()];
      const accessKey = `sluice${randomBytes(6).toString("hex")}`;
      const secretKey = randomBytes(24).toString("hex");
      const args = [
        "server",
        join(dataDir, "data"),
        "--address",
        `127.0.0.1:${port}`,
        "--console-address",
        `127.0.0.1:${consolePort}`,
        "--certs-dir",
        join(dataDir, "certs"),
        "--quiet",
      ];
      // A minimal environment: nothing from the caller's MINIO_* variables leaks into the test server.
      const env = { MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, MINIO_UPDATE: "off", HOME: dataDir };
      const proc = launch("minio", bin, args, { env, cwd: dataDir, ...logOpt(opts) });
      await ready(proc, "minio", () => httpOk(`http://127.0.0.1:${port}/minio/health/live`), opts.readyTimeoutMs ?? DEFAULT_READY_MS);
      return {
        endPoint: "127.0.0.1",
        port,
        useSSL: false,
        accessKey,
        secretKey,
        url: `http://127.0.0.1:${port}`,
        consolePort,
        dataDir,
        stop: stopper(proc, dataDir),
      };
    });
  });
}

function logOpt(opts: StartServerOptions): { logFile?: string } {
  return opts.logFile === undefined ? {} : { logFile: opts.logFile };
}

/**
 * Builds {@link S3Settings} from an endpoint URL such as `http://127.0.0.1:9000` (the `S3_ENDPOINT`
 * format). Throws naming `S3_ENDPOINT` when the URL is not http(s).
 */
export function s3SettingsFromUrl(endpoint: string, accessKey: string, secretKey: string): S3Settings {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new Error(`S3_ENDPOINT: not a URL: ${JSON.stringify(endpoint)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new Error(`S3_ENDPOINT: expected http:// or https://, got ${u.protocol}`);
  }
  const useSSL = u.protocol === "https:";
  const port = u.port === "" ? (useSSL ? 443 : 80) : Number(u.port);
  // URL keeps IPv6 brackets in hostname; the minio client wants them off.
  const endPoint = u.hostname.replace(/^\[(.*)\]$/, "$1");
  return { endPoint, port, useSSL, accessKey, secretKey, url: `${u.protocol}//${u.host}` };
}

/** What {@link startServers} returns: connection settings for every server plus one stop for those it started. */
export interface Servers {
  natsUrl: string;
  mongoUrl: string;
  s3: S3Settings;
  /** Stops the servers this call started (never the ones passed in). Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startServers}: give a server's settings to reuse it instead of starting one. */
export interface StartServersOptions {
  /** Use this NATS (with JetStream) instead of starting nats-server (e.g. `$NATS_URL`). */
  natsUrl?: string | undefined;
  /** Use this MongoDB instead of starting one (e.g. `$MONGO_URL`). */
  mongoUrl?: string | undefined;
  /** Use this S3 endpoint instead of starting MinIO (see {@link s3SettingsFromUrl}). */
  s3?: S3Settings | undefined;
  binary?: BinaryOptions;
  readyTimeoutMs?: number;
  /** Directory for nats-server.log, mongo.log and minio.log. */
  logDir?: string;
}

/**
 * Returns NATS, MongoDB and S3 settings, starting (in parallel) whichever server was not given. If any start
 * fails, the ones that did start are stopped before the error is rethrown.
 */
export async function startServers(opts: StartServersOptions = {}): Promise<Servers> {
  const base = (file: string): StartServerOptions => ({
    ...(opts.binary === undefined ? {} : { binary: opts.binary }),
    ...(opts.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: opts.readyTimeoutMs }),
    ...(opts.logDir === undefined ? {} : { logFile: join(opts.logDir, file) }),
  });
  const given = { natsUrl: opts.natsUrl, mongoUrl: opts.mongoUrl, s3: opts.s3 };
  const none = Promise.resolve(undefined);
  const results = await Promise.allSettled([
    given.natsUrl === undefined ? startNats(base("nats-server.log")) : none,
    given.mongoUrl === undefined ? startMongo(base("mongo.log")) : none,
    given.s3 === undefined ? startMinio(base("minio.log")) : none,
  ] as const);
  const started: { stop(): Promise<void> }[] = [];
  const errors: unknown[] = [];
  for (const r of results) {
    if (r.status === "rejected") errors.push(r.reason);
    else if (r.value !== undefined) started.push(r.value);
  }
  const stopAll = async (): Promise<void> => {
    await Promise.all(started.map((s) => s.stop()));
  };
  if (errors.length > 0) {
    await stopAll();
    throw errors.length === 1 ? errors[0] : new AggregateError(errors, "starting test servers failed");
  }
  const [nats, mongo, minio] = results.map((r) => (r.status === "fulfilled" ? r.value : undefined)) as [
    NatsServer | undefined,
    MongoServer | undefined,
    MinioServer | undefined,
  ];
  const natsUrl = given.natsUrl ?? nats?.url;
  const mongoUrl = given.mongoUrl ?? mongo?.url;
  const s3 =
    given.s3 ??
    (minio === undefined
      ? undefined
      : {
          endPoint: minio.endPoint,
          port: minio.port,
          useSSL: minio.useSSL,
          accessKey: minio.accessKey,
          secretKey: minio.secretKey,
          url: minio.url,
        });
  if (natsUrl === undefined || mongoUrl === undefined || s3 === undefined) throw new Error("unreachable: server missing");
  let stopping: Promise<void> | undefined;
  return {
    natsUrl,
    mongoUrl,
    s3,
    stop: () => (stopping ??= stopAll()),
  };
}
