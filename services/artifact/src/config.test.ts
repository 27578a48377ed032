import { describe, expect, it } from "vitest";
import { loadArtifactConfig } from "./config.js";

const base = {
  MONGO_URL: "mongodb://127.0.0.1:27017",
  SLUICE_AUTH_TOKENS: "orchestrator=service:abc",
  SLUICE_DEV_MODE: "true",
  S3_ENDPOINT: "http://127.0.0.1:9000",
  S3_ACCESS_KEY: "minio",
  S3_SECRET_KEY: "minio-secret",
};

describe("loadArtifactConfig", () => {
  it("parses the endpoint URL into the client's settings and applies defaults", () => {
    const config = loadArtifactConfig(base);
    expect(config.s3).toEqual({ endPoint: "127.0.0.1", port: 9000, useSSL: false, accessKey: "minio", secretKey: "minio-secret", region: "us-east-1" });
    expect(config).toMatchObject({ mongoDb: "sluice_artifacts", grpcHost: "127.0.0.1", grpcPort: 0, grantTtlSeconds: 900 });
    expect(config.authTokens).toEqual([{ principal: "orchestrator", roles: ["service"], token: "abc" }]);
  });

  it("defaults the port from the scheme and unwraps IPv6 hosts", () => {
    expect(loadArtifactConfig({ ...base, S3_ENDPOINT: "https://s3.example.com" }).s3).toMatchObject({ endPoint: "s3.example.com", port: 443, useSSL: true });
    expect(loadArtifactConfig({ ...base, S3_ENDPOINT: "http://[::1]:9000" }).s3).toMatchObject({ endPoint: "::1", port: 9000 });
  });

  it("names every bad variable at once", () => {
    const load = () =>
      loadArtifactConfig({ ...base, MONGO_URL: undefined, S3_ENDPOINT: "ftp://host/x", GRANT_TTL_SECONDS: "700000", SLUICE_AUTH_TOKENS: "nobody" });
    expect(load).toThrow(/MONGO_URL/);
    expect(load).toThrow(/S3_ENDPOINT/);
    expect(load).toThrow(/GRANT_TTL_SECONDS/);
    expect(load).toThrow(/SLUICE_AUTH_TOKENS/);
  });

  it("reads DEPLOY_BUCKETS, allowing nothing by default, and names it when malformed", () => {
    expect(loadArtifactConfig(base).deployBuckets.allows("example", "sluice-example-site")).toBe(false);
    const config = loadArtifactConfig({ ...base, DEPLOY_BUCKETS: "example=sluice-example-site" });
    expect(config.deployBuckets.allows("example", "sluice-example-site")).toBe(true);
    expect(() => loadArtifactConfig({ ...base, DEPLOY_BUCKETS: "example" })).toThrow(/DEPLOY_BUCKETS.*"example" must be <pipeline>=<bucket>/s);
  });
});
