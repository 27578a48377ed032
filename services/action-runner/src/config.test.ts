import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { loadActionRunnerConfig } from "./config.js";

const minimal = {
  NATS_URL: "nats://127.0.0.1:4222",
  SLUICE_AUTH_TOKENS: "ops=admin:admin-token",
  SLUICE_DEV_MODE: "true",
  ARTIFACT_ADDR: "127.0.0.1:50052",
  SLUICE_SERVICE_TOKEN: "runner-token",
};

describe("action-runner config", () => {
  it("applies defaults", () => {
    const config = loadActionRunnerConfig({ ...minimal, PATH: "/bin", HOME: "/home/r", SECRET_THING: "x" });
    expect(config).toMatchObject({
      natsUrl: "nats://127.0.0.1:4222",
      grpcHost: "127.0.0.1",
      grpcPort: 0,
      logLevel: "info",
      shutdownGraceMs: 10_000,
      busPrefix: undefined,
      artifactAddr: "127.0.0.1:50052",
      serviceToken: "runner-token",
      pool: "default",
      concurrency: 2,
      ackWaitMs: 30_000,
      workspaceRoot: tmpdir(),
    });
    expect(config.runnerId).not.toBe("");
    expect(config.authTokens).toEqual([{ principal: "ops", roles: ["admin"], token: "admin-token" }]);
    // Jobs inherit only allow-listed variables: never the runner's credentials or anything else.
    expect(config.jobBaseEnv).toEqual({ PATH: "/bin", HOME: "/home/r" });
  });

  it("ignores S3 credentials (deploys use grants from the artifact service) and parses extra pass-through variables", () => {
    const config = loadActionRunnerConfig({
      ...minimal,
      S3_ENDPOINT: "https://s3.example.com:9443",
      S3_ACCESS_KEY: "ak",
      S3_SECRET_KEY: "sk",
      RUNNER_PASS_ENV: "GOPROXY, NPM_CONFIG_REGISTRY",
      GOPROXY: "https://proxy.golang.org",
      RUNNER_POOL: "gpu",
      RUNNER_CONCURRENCY: "4",
    });
    expect(config).not.toHaveProperty("objectStore");
    expect(JSON.stringify(config)).not.toMatch(/"(ak|sk)"/);
    expect(config.jobBaseEnv["GOPROXY"]).toBe("https://proxy.golang.org");
    expect(config.jobBaseEnv["PATH"]).toBe("/usr/local/bin:/usr/bin:/bin");
    expect(config.pool).toBe("gpu");
    expect(config.concurrency).toBe(4);
  });

  it("names every bad variable at once", () => {
    let message = "";
    try {
      loadActionRunnerConfig({
        NATS_URL: "",
        SLUICE_AUTH_TOKENS: "garbage",
        GRPC_PORT: "70000",
        RUNNER_POOL: "a.b",
        RUNNER_CONCURRENCY: "0",
      });
    } catch (err) {
      message = err instanceof Error ? err.message : String(err);
    }
    for (const name of [
      "NATS_URL",
      "SLUICE_AUTH_TOKENS",
      "GRPC_PORT",
      "ARTIFACT_ADDR",
      "SLUICE_SERVICE_TOKEN",
      "RUNNER_POOL",
      "RUNNER_CONCURRENCY",
    ]) {
      expect(message).toContain(name);
    }
  });
});
