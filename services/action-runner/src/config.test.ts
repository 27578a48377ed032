import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadActionRunnerConfig, secretVariableNames } from "./config.js";

const minimal = {
  NATS_URL: "nats://127.0.0.1:4222",
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
      pools: ["default"],
      providers: ["Git", "Commands", "ObjectStore", "Rule", "Http"],
      concurrency: 2,
      ackWaitMs: 30_000,
      leaseSelfCheck: true,
      workspaceRoot: tmpdir(),
    });
    expect(config.runnerId).not.toBe("");
    expect(config).toMatchObject({ jobIsolation: "auto", jobUid: undefined, jobGid: undefined });
    expect(config).not.toHaveProperty("authTokens");
    // Jobs inherit only allow-listed variables: never the runner's credentials or anything else.
    expect(config.jobBaseEnv).toEqual({ PATH: "/bin", HOME: "/home/r" });
  });

  it("turns the lease self-check off only in dev mode (fault-injection tests of the orchestrator's fence)", () => {
    expect(loadActionRunnerConfig({ ...minimal, RUNNER_LEASE_SELF_CHECK: "false" }).leaseSelfCheck).toBe(false);
    expect(() => loadActionRunnerConfig({ ...minimal, SLUICE_DEV_MODE: "false", SLUICE_SERVICE_TOKEN: "3f9a1c7e5b2d8064aa91c3e7f5b2d8064aa91c3e", RUNNER_LEASE_SELF_CHECK: "false" })).toThrow(
      /RUNNER_LEASE_SELF_CHECK: false is for fault-injection tests only: it needs SLUICE_DEV_MODE=true/,
    );
    expect(() => loadActionRunnerConfig({ ...minimal, RUNNER_LEASE_SELF_CHECK: "no" })).toThrow(/RUNNER_LEASE_SELF_CHECK/);
  });

  it("reads the Http invoke signing key from a variable or a file, at least 32 characters, not both", () => {
    const key = "k".repeat(32);
    expect(loadActionRunnerConfig(minimal).httpInvokeSecret).toBeUndefined();
    expect(loadActionRunnerConfig({ ...minimal, HTTP_INVOKE_SECRET: key }).httpInvokeSecret).toBe(key);
    const dir = mkdtempSync(path.join(tmpdir(), "runner-http-key-"));
    try {
      const file = path.join(dir, "key");
      writeFileSync(file, `${key}\n`, { mode: 0o600 });
      expect(loadActionRunnerConfig({ ...minimal, HTTP_INVOKE_SECRET_FILE: file }).httpInvokeSecret).toBe(key);
      writeFileSync(file, "short\n");
      expect(() => loadActionRunnerConfig({ ...minimal, HTTP_INVOKE_SECRET_FILE: file })).toThrow(/HTTP_INVOKE_SECRET_FILE: .* must hold at least 32 characters/);
      expect(() => loadActionRunnerConfig({ ...minimal, HTTP_INVOKE_SECRET: key, HTTP_INVOKE_SECRET_FILE: file })).toThrow(/HTTP_INVOKE_SECRET: set HTTP_INVOKE_SECRET or HTTP_INVOKE_SECRET_FILE, not both/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => loadActionRunnerConfig({ ...minimal, HTTP_INVOKE_SECRET: "short" })).toThrow(/HTTP_INVOKE_SECRET: must be at least 32 characters/);
    expect(secretVariableNames({ HTTP_INVOKE_SECRET: key })).toEqual(["HTTP_INVOKE_SECRET"]);
  });

  it("ignores S3 credentials (deploys use grants from the artifact service) and parses extra pass-through variables", () => {
    const config = loadActionRunnerConfig({
      ...minimal,
      S3_ENDPOINT: "https://s3.example.com:9443",
      S3_ACCESS_KEY: "ak",
      S3_SECRET_KEY: "sk",
      RUNNER_PASS_ENV: "GOPROXY, NPM_CONFIG_REGISTRY",
      GOPROXY: "https://proxy.golang.org",
      RUNNER_POOLS: "gpu, arm64 ,gpu",
      RUNNER_PROVIDERS: "Commands,Rule",
      RUNNER_CONCURRENCY: "4",
    });
    expect(config).not.toHaveProperty("objectStore");
    expect(JSON.stringify(config)).not.toMatch(/"(ak|sk)"/);
    expect(config.jobBaseEnv["GOPROXY"]).toBe("https://proxy.golang.org");
    expect(config.jobBaseEnv["PATH"]).toBe("/usr/local/bin:/usr/bin:/bin");
    expect(config.pools).toEqual(["gpu", "arm64"]);
    expect(config.providers).toEqual(["Commands", "Rule"]);
    expect(config.concurrency).toBe(4);
  });

  it("names every bad variable at once", () => {
    let message = "";
    try {
      loadActionRunnerConfig({
        NATS_URL: "",
        SLUICE_AUTH_TOKENS: "garbage",
        GRPC_PORT: "70000",
        RUNNER_POOLS: "ok,a.b",
        RUNNER_PROVIDERS: "Commands,Lambda",
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
      "RUNNER_POOLS",
      "RUNNER_PROVIDERS",
      "RUNNER_CONCURRENCY",
    ]) {
      expect(message).toContain(name);
    }
  });

  it("takes the deprecated RUNNER_POOL as one pool, never together with RUNNER_POOLS", () => {
    expect(loadActionRunnerConfig({ ...minimal, RUNNER_POOL: "legacy" }).pools).toEqual(["legacy"]);
    const refused = (env: Record<string, string>): string => {
      try {
        loadActionRunnerConfig({ ...minimal, ...env });
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
      return "";
    };
    expect(refused({ RUNNER_POOL: "a", RUNNER_POOLS: "b" })).toContain("RUNNER_POOL: is the deprecated form of RUNNER_POOLS");
    expect(refused({ RUNNER_POOL: "a,b" })).toContain("RUNNER_POOL: names one pool; use RUNNER_POOLS for several");
    expect(refused({ RUNNER_POOLS: "custom" })).toContain('RUNNER_POOLS: "custom" is reserved');
    expect(refused({ RUNNER_POOLS: "p".repeat(33) })).toContain("RUNNER_POOLS: ");
    expect(refused({ RUNNER_POOLS: " , " })).toContain("RUNNER_POOLS: must name at least one");
    expect(refused({ RUNNER_PROVIDERS: "Manual" })).toContain('RUNNER_PROVIDERS: "Manual" is not a provider a runner serves (Git, Commands, ObjectStore, Rule, Http)');
  });

  it("refuses a token table: a runner gets only its own credential", () => {
    for (const table of ["ops=admin:admin-token", "orchestrator=service:svc-token,runner=runner:runner-token", "garbage"]) {
      let message = "";
      try {
        loadActionRunnerConfig({ ...minimal, SLUICE_AUTH_TOKENS: table });
      } catch (err) {
        message = err instanceof Error ? err.message : String(err);
      }
      expect(message).toContain("SLUICE_AUTH_TOKENS: must not be set on a runner");
      // The refusal names principals, never their tokens.
      expect(message).not.toMatch(/admin-token|svc-token|runner-token/);
    }
  });

  it("reads the runner's token from SLUICE_SERVICE_TOKEN_FILE, and wants exactly one source", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "runner-config-"));
    try {
      const file = path.join(dir, "token");
      writeFileSync(file, "file-token\n", { mode: 0o600 });
      const { SLUICE_SERVICE_TOKEN: _inline, ...withoutToken } = minimal;
      expect(loadActionRunnerConfig({ ...withoutToken, SLUICE_SERVICE_TOKEN_FILE: file }).serviceToken).toBe("file-token");
      expect(() => loadActionRunnerConfig(withoutToken)).toThrow(/SLUICE_SERVICE_TOKEN: exactly one of/);
      expect(() => loadActionRunnerConfig({ ...minimal, SLUICE_SERVICE_TOKEN_FILE: file })).toThrow(/SLUICE_SERVICE_TOKEN: exactly one of/);
      expect(() => loadActionRunnerConfig({ ...withoutToken, SLUICE_SERVICE_TOKEN_FILE: path.join(dir, "missing") })).toThrow(
        /SLUICE_SERVICE_TOKEN_FILE: cannot read .*missing \(ENOENT\)/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("parses the job uid and gid, and refuses root or a gid alone", () => {
    expect(loadActionRunnerConfig({ ...minimal, RUNNER_JOB_UID: "1500" })).toMatchObject({ jobUid: 1500, jobGid: 1500 });
    expect(loadActionRunnerConfig({ ...minimal, RUNNER_JOB_UID: "1500", RUNNER_JOB_GID: "1600", RUNNER_JOB_ISOLATION: "pid-namespace" })).toMatchObject({
      jobUid: 1500,
      jobGid: 1600,
      jobIsolation: "pid-namespace",
    });
    expect(() => loadActionRunnerConfig({ ...minimal, RUNNER_JOB_UID: "0" })).toThrow(/RUNNER_JOB_UID: must be a uid other than 0/);
    expect(() => loadActionRunnerConfig({ ...minimal, RUNNER_JOB_UID: "nobody" })).toThrow(/RUNNER_JOB_UID: must be a numeric uid/);
    expect(() => loadActionRunnerConfig({ ...minimal, RUNNER_JOB_GID: "1600" })).toThrow(/RUNNER_JOB_GID: needs RUNNER_JOB_UID/);
    expect(() => loadActionRunnerConfig({ ...minimal, RUNNER_JOB_ISOLATION: "chroot" })).toThrow(/RUNNER_JOB_ISOLATION/);
  });

  it("refuses to pass the runner's credentials or bus settings to jobs", () => {
    expect(() => loadActionRunnerConfig({ ...minimal, RUNNER_PASS_ENV: "GOPROXY,SLUICE_SERVICE_TOKEN,NATS_PASSWORD" })).toThrow(
      /RUNNER_PASS_ENV: must not pass the runner's own settings to jobs: SLUICE_SERVICE_TOKEN, NATS_PASSWORD/,
    );
  });

  it("names the variables to scrub from the runner's own environment", () => {
    expect(
      secretVariableNames({
        SLUICE_SERVICE_TOKEN: "t",
        NATS_PASSWORD: "p",
        NATS_NKEY_SEED: "s",
        MY_API_KEY: "k",
        NATS_URL: "nats://runner:pw@nats:4222",
        PATH: "/bin",
        NATS_USER: "runner",
        SLUICE_SERVICE_TOKEN_FILE: "/etc/sluice/token",
        HOME: "/root",
      }).sort(),
    ).toEqual(["MY_API_KEY", "NATS_NKEY_SEED", "NATS_PASSWORD", "NATS_URL", "SLUICE_SERVICE_TOKEN"]);
  });

});
