import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ConfigError, commonEnv, isDevMode, loadConfig } from "./config.js";
import { WELL_KNOWN_TOKENS, weakTokenReason } from "./token-policy.js";

const STRONG = "c0f1e2d3a4b5968778695a4b3c2d1e0f";
const OTHER = "9a8b7c6d5e4f30211203f4e5d6c7b8a9";
const schema = z.object({ ...commonEnv, SLUICE_SERVICE_TOKEN: z.string().default("") });
const base = { NATS_URL: "nats://127.0.0.1:4222", MONGO_URL: "mongodb://127.0.0.1:27017/" };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("weakTokenReason", () => {
  it("accepts long random tokens", () => {
    expect(weakTokenReason(STRONG)).toBeUndefined();
    expect(weakTokenReason("Zq8_-Kp2vN7xW4mR9tY1bC6dF3gH5jL0")).toBeUndefined();
  });

  it("refuses short, well-known and patterned tokens", () => {
    for (const known of WELL_KNOWN_TOKENS) expect(weakTokenReason(known)).toBeDefined();
    expect(weakTokenReason("dev-admin-token")).toMatch(/shorter than 32/);
    expect(weakTokenReason("a".repeat(64))).toMatch(/different characters/);
    expect(weakTokenReason("ab".repeat(32))).toMatch(/different characters/);
    expect(weakTokenReason("changeme-changeme-changeme-changeme")).toMatch(/well-known words/);
    expect(weakTokenReason("dev-admin-token-dev-admin-token-dev-admin-token")).toMatch(/well-known words/);
    expect(weakTokenReason("Password-Password-Secret-Token-1234")).toMatch(/well-known words/);
  });
});

describe("loadConfig's token policy (an operator starting a service with a guessable token)", () => {
  it("refuses weak tokens of the table and the service token, naming variable and principal but never the token", () => {
    const err = configError(() =>
      loadConfig(schema, { ...base, SLUICE_AUTH_TOKENS: `ops=admin:${STRONG},dev=admin:dev-admin-token,ci=operator:${"x".repeat(40)}`, SLUICE_SERVICE_TOKEN: "changeme" }),
    );
    expect(err.issues.map((i) => i.variable)).toEqual(["SLUICE_AUTH_TOKENS", "SLUICE_AUTH_TOKENS", "SLUICE_SERVICE_TOKEN"]);
    expect(err.message).toContain('entry 1 (principal "dev") is shorter than 32 characters');
    expect(err.message).toContain('entry 2 (principal "ci") has fewer than 8 different characters');
    expect(err.message).toContain("SLUICE_SERVICE_TOKEN: the token is shorter than 32 characters");
    expect(err.message).not.toContain("dev-admin-token");
    expect(err.message).not.toContain("changeme");
    expect(err.message).not.toContain("xxxx");
    expect(err.message).not.toContain(STRONG);
  });

  it("accepts strong tokens, and a service that does not read SLUICE_SERVICE_TOKEN ignores it", () => {
    expect(loadConfig(schema, { ...base, SLUICE_AUTH_TOKENS: `ops=admin:${STRONG}`, SLUICE_SERVICE_TOKEN: OTHER }).SLUICE_SERVICE_TOKEN).toBe(OTHER);
    expect(loadConfig(z.object(commonEnv), { ...base, SLUICE_AUTH_TOKENS: `ops=admin:${STRONG}`, SLUICE_SERVICE_TOKEN: "short" }).SLUICE_AUTH_TOKENS).toContain("ops=admin");
  });

  it("accepts weak tokens only with SLUICE_DEV_MODE=true, and refuses a dev-mode value it does not understand", () => {
    const weak = { ...base, SLUICE_AUTH_TOKENS: "dev=admin:dev-admin-token", SLUICE_SERVICE_TOKEN: "dev-service-token" };
    expect(() => loadConfig(schema, weak)).toThrow(ConfigError);
    expect(() => loadConfig(schema, { ...weak, SLUICE_DEV_MODE: "false" })).toThrow(ConfigError);
    expect(loadConfig(schema, { ...weak, SLUICE_DEV_MODE: "true" }).SLUICE_SERVICE_TOKEN).toBe("dev-service-token");
    const err = configError(() => loadConfig(schema, { ...weak, SLUICE_DEV_MODE: "yes" }));
    expect(err.issues.map((i) => i.variable)).toContain("SLUICE_DEV_MODE");
    expect(isDevMode({ SLUICE_DEV_MODE: "TRUE" })).toBe(true);
    expect(isDevMode({})).toBe(false);
  });

  it("reports weak tokens together with the schema's own errors", () => {
    const err = configError(() => loadConfig(schema, { MONGO_URL: "mongodb://x", NATS_URL: "http://x", SLUICE_AUTH_TOKENS: "a=admin:t" }));
    expect(err.issues.map((i) => i.variable).sort()).toEqual(["NATS_URL", "SLUICE_AUTH_TOKENS"]);
  });
});
