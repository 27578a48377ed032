import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { ConfigError, commonConfig, commonEnv, durationMs, loadConfig, port } from "./config.js";
import type { CommonConfig } from "./config.js";

const schema = z.object({ ...commonEnv, MONGO_DB: z.string().default("sluice_test"), POLL_INTERVAL_MS: durationMs().default(60_000) });

// A token the policy accepts outside dev mode (32+ random-looking characters).
const STRONG = "3f9c2a7e1b8d4c6f0a5e9b2d7c1f8a4e";

const valid = {
  NATS_URL: "nats://127.0.0.1:4222",
  MONGO_URL: "mongodb://127.0.0.1:27017/",
  SLUICE_AUTH_TOKENS: `alice=admin:${STRONG}`,
};

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("applies defaults and converts values", () => {
    const config = loadConfig(schema, { ...valid, GRPC_PORT: "50051", SHUTDOWN_GRACE_MS: "5s", POLL_INTERVAL_MS: "1500", IGNORED: "x" });
    expect(config).toEqual({
      ...valid,
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: 50051,
      LOG_LEVEL: "info",
      SHUTDOWN_GRACE_MS: 5000,
      MONGO_DB: "sluice_test",
      POLL_INTERVAL_MS: 1500,
    });
  });

  it("reports every bad variable at once, each by name", () => {
    const err = configError(() =>
      loadConfig(schema, { NATS_URL: "http://x", GRPC_PORT: "70000", LOG_LEVEL: "loud", SHUTDOWN_GRACE_MS: "soon", SLUICE_BUS_PREFIX: "a.b" }),
    );
    expect(err.issues.map((i) => i.variable).sort()).toEqual(
      ["GRPC_PORT", "LOG_LEVEL", "MONGO_URL", "NATS_URL", "SHUTDOWN_GRACE_MS", "SLUICE_AUTH_TOKENS", "SLUICE_BUS_PREFIX"].sort(),
    );
    expect(err.message).toContain("MONGO_URL: is required");
    expect(err.message).toContain("SLUICE_AUTH_TOKENS: is required");
    expect(err.message).toContain("NATS_URL: must be one or more nats:// URLs");
    expect(err.message).toContain('GRPC_PORT: must be a port number 0-65535, got "70000"');
    expect(err.message).toContain('SHUTDOWN_GRACE_MS: must be a duration like 500, 500ms, 10s, 5m or 1h, got "soon"');
    expect(err.message).toMatch(/LOG_LEVEL: /);
    expect(err.message.split("\n")).toHaveLength(1 + 7);
  });

  it("treats an empty value as unset", () => {
    expect(loadConfig(schema, { ...valid, GRPC_HOST: "", LOG_LEVEL: "" })).toMatchObject({ GRPC_HOST: "127.0.0.1", LOG_LEVEL: "info" });
    expect(configError(() => loadConfig(schema, { ...valid, MONGO_URL: "" })).message).toContain("MONGO_URL: is required");
  });

  it("accepts several NATS URLs", () => {
    expect(loadConfig(schema, { ...valid, NATS_URL: "nats://a:4222, nats://b:4222" }).NATS_URL).toBe("nats://a:4222, nats://b:4222");
  });
});

describe("durationMs and port", () => {
  it("parse units and bounds", () => {
    const d = durationMs();
    expect(["250", "250ms", "2s", "1.5m", "1h"].map((v) => d.parse(v))).toEqual([250, 250, 2000, 90_000, 3_600_000]);
    expect(d.safeParse("-1s").success).toBe(false);
    expect(port().parse("0")).toBe(0);
    expect(port().safeParse("1.5").success).toBe(false);
  });
});

describe("commonConfig", () => {
  it("maps every common variable to its camelCase field", () => {
    const e = loadConfig(z.object(commonEnv), {
      ...valid,
      GRPC_HOST: "0.0.0.0",
      GRPC_PORT: "50051",
      LOG_LEVEL: "debug",
      SHUTDOWN_GRACE_MS: "3s",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      SLUICE_BUS_PREFIX: "t1",
    });
    const config: CommonConfig = commonConfig(e);
    expect(config).toStrictEqual({
      natsUrl: "nats://127.0.0.1:4222",
      mongoUrl: "mongodb://127.0.0.1:27017/",
      grpcHost: "0.0.0.0",
      grpcPort: 50051,
      authTokens: valid.SLUICE_AUTH_TOKENS,
      logLevel: "debug",
      otlpEndpoint: "http://collector:4318",
      shutdownGraceMs: 3000,
      busPrefix: "t1",
    });
  });

  it("keeps unset optional fields present but undefined", () => {
    const config = commonConfig(loadConfig(z.object(commonEnv), valid));
    expect(Object.keys(config)).toEqual(expect.arrayContaining(["otlpEndpoint", "busPrefix"]));
    expect(config.otlpEndpoint).toBeUndefined();
    expect(config.busPrefix).toBeUndefined();
  });

  it("leaves out the bus fields and mongoUrl when the schema has no NATS_URL or MONGO_URL", () => {
    const { NATS_URL: _nats, SLUICE_BUS_PREFIX: _prefix, MONGO_URL: _mongo, ...rest } = commonEnv;
    const e = loadConfig(z.object({ ...rest, SLUICE_AUTH_TOKENS: rest.SLUICE_AUTH_TOKENS.transform((spec) => spec.split(",")) }), {
      SLUICE_AUTH_TOKENS: "a=admin:x,b=viewer:y",
      SLUICE_DEV_MODE: "true",
    });
    const config: Omit<CommonConfig<string[]>, "natsUrl" | "mongoUrl" | "busPrefix"> = commonConfig(e);
    expect(config).toStrictEqual({
      grpcHost: "127.0.0.1",
      grpcPort: 0,
      authTokens: ["a=admin:x", "b=viewer:y"],
      logLevel: "info",
      otlpEndpoint: undefined,
      shutdownGraceMs: 10_000,
    });
    expectTypeOf(commonConfig(e)).not.toHaveProperty("natsUrl");
    expectTypeOf(commonConfig(e)).not.toHaveProperty("mongoUrl");
    expectTypeOf(commonConfig(e)).not.toHaveProperty("busPrefix");
    expectTypeOf(commonConfig(e).authTokens).toEqualTypeOf<string[]>();
    expect(config).not.toHaveProperty("natsUrl");
    expect(config).not.toHaveProperty("mongoUrl");
    expect(config).not.toHaveProperty("busPrefix");
  });
});

describe("gRPC TLS variables", () => {
  const dir = mkdtempSync(join(tmpdir(), "sluice-tls-config-"));
  const file = (name: string): string => {
    const path = join(dir, name);
    writeFileSync(path, `-----BEGIN ${name}-----\n`);
    return path;
  };
  const cert = file("cert.pem");
  const key = file("key.pem");
  const ca = file("ca.pem");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the files and maps them to server and client TLS settings", () => {
    const config = commonConfig(
      loadConfig(z.object(commonEnv), {
        ...valid,
        GRPC_TLS_CERT: cert,
        GRPC_TLS_KEY: key,
        GRPC_TLS_CA: ca,
        GRPC_TLS_CLIENT_AUTH: "require",
        GRPC_CLIENT_TLS_CA: ca,
        GRPC_CLIENT_TLS_CERT: cert,
        GRPC_CLIENT_TLS_KEY: key,
      }),
    );
    expect(config.grpcTls).toEqual({ cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca), requireClientCert: true });
    expect(config.grpcClientTls).toEqual({ ca: readFileSync(ca), cert: readFileSync(cert), key: readFileSync(key) });
  });

  it("names the variable of an unreadable file, a certificate without its key, and mutual TLS without a CA", () => {
    const err = configError(() =>
      loadConfig(z.object(commonEnv), { ...valid, GRPC_TLS_CERT: join(dir, "missing.pem"), GRPC_TLS_CLIENT_AUTH: "require", GRPC_CLIENT_TLS_CERT: cert, GRPC_CLIENT_TLS_KEY: key }),
    );
    expect(err.message).toContain(`GRPC_TLS_CERT: cannot read "${join(dir, "missing.pem")}": ENOENT`);
    expect(err.message).toContain("GRPC_TLS_KEY: is required when GRPC_TLS_CERT is set");
    expect(err.message).toContain("GRPC_TLS_CA: is required when GRPC_TLS_CLIENT_AUTH=require");
    expect(err.message).toContain("GRPC_CLIENT_TLS_CA: is required when GRPC_CLIENT_TLS_CERT is set");
  });
});
