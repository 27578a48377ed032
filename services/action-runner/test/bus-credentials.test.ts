// The runner's NATS login is for the runner only: a job's environment is built from an
// allow-list, so NATS_USER, NATS_PASSWORD and the TLS key path never reach a job's process.
import { describe, expect, it } from "vitest";
import { loadActionRunnerConfig } from "../src/config.js";

describe("bus credentials and jobs", () => {
  it("reads the runner's NATS login but gives jobs none of the NATS variables", () => {
    const config = loadActionRunnerConfig({
      NATS_URL: "nats://127.0.0.1:4222",
      SLUICE_DEV_MODE: "true",
      ARTIFACT_ADDR: "127.0.0.1:50052",
      SLUICE_SERVICE_TOKEN: "runner-token",
      PATH: "/bin",
      NATS_USER: "runner-default",
      NATS_PASSWORD: "canary-nats-password-0123456789",
      NATS_TLS_CA: "/etc/nats/ca.pem",
      NATS_TLS_CERT: "/etc/nats/runner.pem",
      NATS_TLS_KEY: "/etc/nats/runner-key.pem",
    });
    expect(config.natsCredentials).toEqual({ user: "runner-default", password: "canary-nats-password-0123456789" });
    expect(Object.keys(config.jobBaseEnv).filter((k) => k.startsWith("NATS"))).toEqual([]);
    expect(Object.values(config.jobBaseEnv)).not.toContain("canary-nats-password-0123456789");
  });
});
