// Safe defaults of the five services as processes: an operator who starts one with a well-known
// token (the attack: a deployment shipped with the README's token) gets a refusal naming the
// variable and principal, never the token; started without GRPC_HOST every service binds loopback.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadArtifactConfig, startArtifactService } from "@sluice/artifact";
import { createArtifactClient, isRpcError } from "@sluice/client";
import { loadOrchestratorConfig } from "@sluice/orchestrator";
import { CLUSTER_SERVICES, startCluster } from "@sluice/testkit";
import type {} from "@sluice/testkit";
import { GrpcStatus } from "@sluice/grpc";
import { describe, expect, inject, it } from "vitest";
import { makeTestPki } from "@sluice/testkit";
import { REPO_ROOT } from "./helpers.js";

const servers = inject("servers");
const strong = (): string => randomBytes(24).toString("hex");

describe("services refuse weak tokens outside dev mode", () => {
  const base = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    NATS_URL: "nats://127.0.0.1:1",
    MONGO_URL: "mongodb://127.0.0.1:1",
    S3_ENDPOINT: "http://127.0.0.1:1",
    S3_ACCESS_KEY: "k",
    S3_SECRET_KEY: "s",
    ARTIFACT_ADDR: "127.0.0.1:1",
    SLUICE_AUTH_TOKENS: `dev=admin:dev-admin-token,orchestrator=service:${strong()}`,
    SLUICE_SERVICE_TOKEN: "dev-runner-token",
  };

  for (const name of CLUSTER_SERVICES) {
    it(`${name} exits 1 naming SLUICE_AUTH_TOKENS and principal "dev", without echoing the token`, () => {
      const run = spawnSync(process.execPath, [join(REPO_ROOT, "services", name, "dist", "main.js")], { env: base, encoding: "utf8", timeout: 60_000 });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('SLUICE_AUTH_TOKENS: the token of entry 0 (principal "dev") is shorter than 32 characters');
      if (name === "orchestrator" || name === "action-runner") expect(run.stderr).toContain("SLUICE_SERVICE_TOKEN: the token is shorter than 32 characters");
      expect(run.stderr + run.stdout).not.toContain("dev-admin-token");
      expect(run.stderr + run.stdout).not.toContain("dev-runner-token");
    });
  }
});

describe("services bind loopback unless told otherwise", () => {
  it("with GRPC_HOST unset every service listens on 127.0.0.1; dev mode warns loudly", async () => {
    const logDir = mkdtempSync(join(tmpdir(), "sluice-safe-defaults-"));
    // GRPC_HOST="" counts as unset: each service's own default decides. Tokens are the cluster's random ones.
    const cluster = await startCluster({
      servers,
      repoRoot: REPO_ROOT,
      logDir,
      busPrefix: `sd${randomBytes(3).toString("hex")}`,
      mongoDbPrefix: `sd_${randomBytes(3).toString("hex")}`,
      env: { GRPC_HOST: "" },
      serviceEnv: { approval: { SLUICE_DEV_MODE: "true" } },
    });
    try {
      for (const name of CLUSTER_SERVICES) {
        const lines = readFileSync(join(logDir, `${name}.log`), "utf8")
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        const listening = lines.filter((l) => l["msg"] === "grpc server listening");
        expect(listening.map((l) => l["host"]), name).toEqual(["127.0.0.1"]);
        const devWarning = lines.some((l) => typeof l["msg"] === "string" && l["msg"].includes("DEV MODE"));
        expect(devWarning, name).toBe(name === "approval");
      }
    } finally {
      await cluster.stop();
      rmSync(logDir, { recursive: true, force: true });
    }
  });
});

describe("mutual TLS from the environment", () => {
  it("the artifact service with GRPC_TLS_* serves the orchestrator's GRPC_CLIENT_TLS_* client and refuses a client without a certificate", async () => {
    const pki = makeTestPki();
    const serviceToken = strong();
    const artifact = await startArtifactService(
      loadArtifactConfig({
        MONGO_URL: servers.mongoUrl,
        MONGO_DB: `sd_tls_${randomBytes(3).toString("hex")}`,
        SLUICE_AUTH_TOKENS: `orchestrator=service:${serviceToken}`,
        S3_ENDPOINT: servers.s3.url,
        S3_ACCESS_KEY: servers.s3.accessKey,
        S3_SECRET_KEY: servers.s3.secretKey,
        GRPC_TLS_CERT: pki.paths.serverCert,
        GRPC_TLS_KEY: pki.paths.serverKey,
        GRPC_TLS_CA: pki.paths.ca,
        GRPC_TLS_CLIENT_AUTH: "require",
      }),
    );
    const address = `127.0.0.1:${artifact.port}`;
    const orchestrator = loadOrchestratorConfig({
      NATS_URL: servers.natsUrl,
      MONGO_URL: servers.mongoUrl,
      SLUICE_AUTH_TOKENS: `ops=admin:${strong()}`,
      ARTIFACT_ADDR: address,
      SLUICE_SERVICE_TOKEN: serviceToken,
      GRPC_CLIENT_TLS_CA: pki.paths.ca,
      GRPC_CLIENT_TLS_CERT: pki.paths.clientCert,
      GRPC_CLIENT_TLS_KEY: pki.paths.clientKey,
    });
    const withCert = createArtifactClient({ address, token: serviceToken, deadlineMs: 10_000, tls: orchestrator.grpcClientTls });
    const withoutCert = createArtifactClient({ address, token: serviceToken, deadlineMs: 10_000, tls: { ca: pki.ca } });
    const plaintext = createArtifactClient({ address, token: serviceToken, deadlineMs: 10_000 });
    try {
      // Through TLS and the token check: the artifact simply does not exist.
      const missing = await withCert.getArtifact({ artifactId: "no-such/artifact" }).catch((e: unknown) => e);
      expect(isRpcError(missing, GrpcStatus.NOT_FOUND)).toBe(true);
      for (const client of [withoutCert, plaintext]) {
        expect(isRpcError(await client.getArtifact({ artifactId: "no-such/artifact" }).catch((e: unknown) => e), GrpcStatus.UNAVAILABLE)).toBe(true);
      }
    } finally {
      for (const c of [withCert, withoutCert, plaintext]) c.close();
      await artifact.stop(2000);
      pki.remove();
    }
  });
});
