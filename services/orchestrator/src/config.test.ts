import { describe, expect, it } from "vitest";
import { ConfigError } from "@sluice/service-kit";
import { loadOrchestratorConfig } from "./config.js";

const base = { NATS_URL: "nats://127.0.0.1:4222", MONGO_URL: "mongodb://127.0.0.1:27017", SLUICE_DEV_MODE: "true", SLUICE_AUTH_TOKENS: "a=admin:t" };

describe("loadOrchestratorConfig", () => {
  it("applies the documented defaults", () => {
    const config = loadOrchestratorConfig(base);
    expect(config).toMatchObject({
      mongoDb: "sluice_orchestrator",
      grpcHost: "127.0.0.1",
      grpcPort: 0,
      busPrefix: "",
      approvalAddr: "",
      artifactAddr: "",
      defaultArtifactBucket: "sluice-artifacts",
      outboxSweepMs: 2000,
      timerSweepMs: 1000,
    });
  });

  it("reads durations and addresses", () => {
    const config = loadOrchestratorConfig({ ...base, OUTBOX_SWEEP_MS: "5s", TIMER_SWEEP_MS: "250", ARTIFACT_ADDR: "artifact:50051", SLUICE_SERVICE_TOKEN: "svc" });
    expect(config.outboxSweepMs).toBe(5000);
    expect(config.timerSweepMs).toBe(250);
    expect(config.artifactAddr).toBe("artifact:50051");
    expect(config.serviceToken).toBe("svc");
  });

  it("names every bad variable at once", () => {
    let error: unknown;
    try {
      loadOrchestratorConfig({ MONGO_URL: "postgres://x", SLUICE_DEV_MODE: "true", SLUICE_AUTH_TOKENS: "a=admin:t", OUTBOX_SWEEP_MS: "soon", DEFAULT_ARTIFACT_BUCKET: "Bad_Bucket" });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const variables = (error as ConfigError).issues.map((i) => i.variable).sort();
    expect(variables).toEqual(["DEFAULT_ARTIFACT_BUCKET", "MONGO_URL", "NATS_URL", "OUTBOX_SWEEP_MS"]);
  });
});
