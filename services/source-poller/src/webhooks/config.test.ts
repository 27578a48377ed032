import { describe, expect, it } from "vitest";
import { loadSourcePollerConfig } from "../config.js";

const base = { NATS_URL: "nats://127.0.0.1:4222", MONGO_URL: "mongodb://127.0.0.1:27017", SLUICE_AUTH_TOKENS: "dev=admin:0123456789abcdef0123456789abcdef" };

describe("webhook configuration", () => {
  it("defaults to loopback, a random port, 1 MiB bodies and no native endpoints", () => {
    expect(loadSourcePollerConfig(base).webhooks).toEqual({
      host: "127.0.0.1",
      port: 0,
      publicUrl: "",
      maxBodyBytes: 1024 * 1024,
      githubSecret: "",
      gitlabToken: "",
      giteaSecret: "",
      deliveryTtlSeconds: 7 * 24 * 3600,
    });
  });

  it("reads every WEBHOOK_* variable and names the bad ones", () => {
    const config = loadSourcePollerConfig({ ...base, WEBHOOK_HOST: "0.0.0.0", WEBHOOK_PORT: "8088", WEBHOOK_PUBLIC_URL: "https://ci.example.com/sluice", WEBHOOK_GITHUB_SECRET: "gh" });
    expect(config.webhooks).toMatchObject({ host: "0.0.0.0", port: 8088, publicUrl: "https://ci.example.com/sluice", githubSecret: "gh" });
    const bad = (): unknown => loadSourcePollerConfig({ ...base, WEBHOOK_PUBLIC_URL: "ci.example.com", WEBHOOK_PORT: "70000", WEBHOOK_MAX_BODY_BYTES: "10" });
    expect(bad).toThrow(/WEBHOOK_PUBLIC_URL: must be an http\(s\) URL/);
    expect(bad).toThrow(/WEBHOOK_PORT: /);
    expect(bad).toThrow(/WEBHOOK_MAX_BODY_BYTES: /);
  });
});
