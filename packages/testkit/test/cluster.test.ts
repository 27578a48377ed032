import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CLUSTER_SERVICES, startCluster, type ClusterService } from "../src/index.js";

// Stand-in services with the real process contract (env in, gRPC health on GRPC_HOST:GRPC_PORT, SIGTERM
// to stop), so the launcher is tested without the real services' build. Each prints its environment and
// appends to a shared file when it stops, which shows the stop order.
const require = createRequire(import.meta.url);
const grpcPath = require.resolve("@grpc/grpc-js");
const healthPath = require.resolve("grpc-health-check");

const FAKE_MAIN = `
import grpc from ${JSON.stringify(grpcPath)};
import health from ${JSON.stringify(healthPath)};
import { appendFileSync } from "node:fs";
const name = process.argv[1].split("/").at(-3);
const env = process.env;
if (env.FAKE_CRASH === name) { console.error("boom: " + name + " cannot start"); process.exit(3); }
const keys = ["NATS_URL","MONGO_URL","MONGO_DB","GRPC_HOST","GRPC_PORT","SLUICE_AUTH_TOKENS","LOG_LEVEL","SLUICE_BUS_PREFIX",
  "APPROVAL_ADDR","ARTIFACT_ADDR","SLUICE_SERVICE_TOKEN","RUNNER_ID","S3_ENDPOINT","S3_ACCESS_KEY","S3_SECRET_KEY",
  "S3_REGION","POLL_INTERVAL_MS","EXTRA","ONLY_RUNNER","HOME_SEEN","DEPLOY_BUCKETS"];
const seen = Object.fromEntries(keys.filter((k) => env[k] !== undefined).map((k) => [k, env[k]]));
seen.HOME_SEEN = env.HOME === undefined ? "no" : "yes";
console.log("ENV " + JSON.stringify(seen));
const server = new grpc.Server();
new health.HealthImplementation({ "": "SERVING" }).addToServer(server);
server.bindAsync(env.GRPC_HOST + ":" + env.GRPC_PORT, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) { console.error(err.message); process.exit(1); }
});
process.on("SIGTERM", () => {
  appendFileSync(env.FAKE_ORDER_FILE, name + "\\n");
  server.tryShutdown(() => process.exit(0));
});
`;

let repoRoot: string;
let logDir: string;
let orderFile: string;

beforeAll(async () => {
  repoRoot = await mkdtemp(join(tmpdir(), "testkit-cluster-"));
  logDir = join(repoRoot, "logs");
  orderFile = join(repoRoot, "order.log");
  for (const name of CLUSTER_SERVICES) {
    await mkdir(join(repoRoot, "services", name, "dist"), { recursive: true });
    await writeFile(join(repoRoot, "services", name, "dist", "main.js"), FAKE_MAIN);
  }
  await writeFile(join(repoRoot, "package.json"), JSON.stringify({ type: "module" }));
});

afterAll(async () => {
  await rm(repoRoot, { recursive: true, force: true });
});

async function envOf(service: ClusterService): Promise<Record<string, string>> {
  const text = await readFile(join(logDir, `${service}.log`), "utf8");
  const line = text.split("\n").find((l) => l.startsWith("ENV "));
  if (line === undefined) throw new Error(`${service} printed no environment:\n${text}`);
  return JSON.parse(line.slice(4)) as Record<string, string>;
}

describe("startCluster", () => {
  it("starts the five services with their wiring, waits for SERVING, stops them in reverse order", async () => {
    const servers = inject("servers");
    await rm(orderFile, { force: true });
    const cluster = await startCluster({
      servers,
      repoRoot,
      logDir,
      busPrefix: "tkc",
      mongoDbPrefix: "tkc",
      pollIntervalMs: 1500,
      baseEnv: { HOME: "/home/someone", MONGO_DB: "leaked-from-shell", FAKE_ORDER_FILE: orderFile },
      env: { EXTRA: "everyone" },
      serviceEnv: { "action-runner": { ONLY_RUNNER: "yes" } },
    });
    try {
      expect(Object.keys(cluster.addresses).sort()).toEqual([...CLUSTER_SERVICES].sort());
      const { tokens, addresses } = cluster;
      expect(new Set([tokens.admin, tokens.service, tokens.runner]).size).toBe(3);
      const table = `dev=admin:${tokens.admin},orchestrator=service:${tokens.service},runner=runner:${tokens.runner}`;

      const common = { NATS_URL: servers.natsUrl, GRPC_HOST: "127.0.0.1", SLUICE_AUTH_TOKENS: table, SLUICE_BUS_PREFIX: "tkc", EXTRA: "everyone", HOME_SEEN: "yes" };
      const s3 = { S3_ENDPOINT: servers.s3.url, S3_ACCESS_KEY: servers.s3.accessKey, S3_SECRET_KEY: servers.s3.secretKey, S3_REGION: "us-east-1" };
      for (const name of CLUSTER_SERVICES) {
        const env = await envOf(name);
        // Runners get no token table: only their own credential (SLUICE_SERVICE_TOKEN).
        const { SLUICE_AUTH_TOKENS: _table, ...runnerCommon } = common;
        expect(env).toMatchObject(name === "action-runner" ? runnerCommon : common);
        if (name === "action-runner") expect(env["SLUICE_AUTH_TOKENS"]).toBeUndefined();
        expect(`127.0.0.1:${env["GRPC_PORT"]}`).toBe(addresses[name]);
        expect(env["ONLY_RUNNER"]).toBe(name === "action-runner" ? "yes" : undefined);
      }
      expect(await envOf("artifact")).toMatchObject({ ...s3, MONGO_URL: servers.mongoUrl, MONGO_DB: "tkc_artifact", DEPLOY_BUCKETS: "example=sluice-example-site" });
      expect(await envOf("orchestrator")).toMatchObject({
        MONGO_URL: servers.mongoUrl,
        MONGO_DB: "tkc_orchestrator",
        APPROVAL_ADDR: addresses.approval,
        ARTIFACT_ADDR: addresses.artifact,
        SLUICE_SERVICE_TOKEN: tokens.service,
      });
      const runner = await envOf("action-runner");
      expect(runner).toMatchObject({ ARTIFACT_ADDR: addresses.artifact, SLUICE_SERVICE_TOKEN: tokens.runner });
      // The runner holds no object-store credential: deploys get presigned PUTs from the artifact service.
      expect(Object.keys(runner).filter((k) => k.startsWith("S3_"))).toEqual([]);
      expect(runner["MONGO_URL"]).toBeUndefined();
      expect(runner["MONGO_DB"]).toBeUndefined(); // the shell's MONGO_DB never leaks in
      expect(await envOf("source-poller")).toMatchObject({ POLL_INTERVAL_MS: "1500", MONGO_DB: "tkc_source_poller" });
    } finally {
      await cluster.stop();
    }
    expect((await readFile(orderFile, "utf8")).trim().split("\n")).toEqual([...CLUSTER_SERVICES].reverse());
    await cluster.stop(); // idempotent
  });

  it("fails with the service's output when one cannot start, stopping those already up", async () => {
    await rm(orderFile, { force: true });
    const err = await startCluster({
      servers: inject("servers"),
      repoRoot,
      baseEnv: { FAKE_ORDER_FILE: orderFile, FAKE_CRASH: "orchestrator" },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^orchestrator exited \(3\) before reporting SERVING:\n.*boom: orchestrator cannot start/s);
    expect((await readFile(orderFile, "utf8")).trim().split("\n")).toEqual(["approval", "artifact"]);
  });

  it("refuses to start when a service is not built", async () => {
    await expect(startCluster({ servers: inject("servers"), repoRoot: join(repoRoot, "nowhere") })).rejects.toThrow(
      /services\/artifact\/dist\/main\.js is missing \(run `npm run build` first\)/,
    );
  });
});
