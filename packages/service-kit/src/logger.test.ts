import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";

/** Collects every JSON line the logger writes. */
function memory(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  const lines = (): Record<string, unknown>[] =>
    chunks
      .join("")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, lines };
}

describe("createLogger", () => {
  it("writes JSON lines with service, level label, time and fields", () => {
    const mem = memory();
    const log = createLogger({ service: "orchestrator", level: "debug", destination: mem.stream });
    log.info("pipeline created", { pipeline: "demo", version: 1 });
    log.debug("detail");
    const [first, second, ...rest] = mem.lines();
    expect(first).toMatchObject({ level: "info", service: "orchestrator", msg: "pipeline created", pipeline: "demo", version: 1 });
    expect(Number.isNaN(Date.parse(String(first?.["time"])))).toBe(false);
    expect(second).toMatchObject({ level: "debug", msg: "detail" });
    expect(rest).toEqual([]);
  });

  it("redacts secrets at the top level and one level down", () => {
    const mem = memory();
    const log = createLogger({ service: "artifact", destination: mem.stream });
    log.warn("grant issued", {
      token: "sk-top",
      url: "https://minio/bucket/key?X-Amz-Signature=abc",
      request: { authorization: "Bearer sk-nested", password: "p", secretKey: "s", secret: "x", keep: "visible" },
    });
    const [line] = mem.lines();
    expect(line).toMatchObject({
      token: "[REDACTED]",
      url: "[REDACTED]",
      request: { authorization: "[REDACTED]", password: "[REDACTED]", secretKey: "[REDACTED]", secret: "[REDACTED]", keep: "visible" },
    });
    expect(JSON.stringify(line)).not.toMatch(/sk-top|sk-nested|Signature/);
  });

  it("filters by level and carries child fields", () => {
    const mem = memory();
    const log = createLogger({ service: "runner", level: "warn", destination: mem.stream });
    log.info("dropped");
    log.child({ jobId: "j-1" }).error("job failed", { err: new Error("exit code 2") });
    const lines = mem.lines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "error", jobId: "j-1", msg: "job failed", err: { message: "exit code 2", type: "Error" } });
  });
});

describe("createLogger redaction of tokens, secrets and URL credentials", () => {
  it("redacts approval tokens, secret* and *Token fields at any depth and in child bindings, and URL userinfo everywhere", () => {
    const mem = memory();
    const log = createLogger({ service: "approval", destination: mem.stream });
    const child = log.child({ approvalToken: "tok-child-canary", pipelineName: "p" });
    child.info("approval decided", {
      approvalToken: "tok-top-canary",
      job: { deep: { approvalToken: "tok-deep-canary", secretAccessKey: "sak-canary", clientToken: "ct-canary", dbPassword: "pw-canary" } },
      repo: "https://bob:hunter2-canary@git.example.com/r.git",
      err: new Error("clone of https://bob:hunter2-canary@git.example.com/r.git failed"),
    });
    const text = mem.lines().map((l) => JSON.stringify(l)).join("\n");
    expect(text).not.toMatch(/canary/);
    const [line] = mem.lines();
    expect(line).toMatchObject({
      approvalToken: "[REDACTED]",
      pipelineName: "p",
      job: { deep: { approvalToken: "[REDACTED]", secretAccessKey: "[REDACTED]", clientToken: "[REDACTED]", dbPassword: "[REDACTED]" } },
      repo: "https://****@git.example.com/r.git",
      err: { message: "clone of https://****@git.example.com/r.git failed" },
    });
  });
});
