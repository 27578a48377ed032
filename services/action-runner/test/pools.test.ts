// Runner pools and provider sets on a real nats-server: a job of a pool waits until a runner of
// that pool starts, one runner serves several pools under one concurrency limit and answers each
// on its pool's result subject, and runners of one pool must serve the same providers.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { JobResultSchema, JobSchema } from "@sluice/proto";
import type { JobResult } from "@sluice/proto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadActionRunnerConfig } from "../src/config.js";
import { runnerDurable, startActionRunner } from "../src/service.js";
import type { ActionRunnerService } from "../src/service.js";
import { makeJob, tempDir } from "./helpers.js";

describe("runner pools", () => {
  const { natsUrl } = inject("servers");
  const prefix = `arp${Date.now().toString(36)}`;
  let root: { dir: string; remove: () => Promise<void> };
  let bus: Bus;
  let resultsConsumer: Consumer;
  const results: { result: JobResult; subject: string }[] = [];
  const started: ActionRunnerService[] = [];

  const startRunner = async (id: string, env: Record<string, string>) => {
    const runner = await startActionRunner(
      loadActionRunnerConfig({
        NATS_URL: natsUrl,
        SLUICE_BUS_PREFIX: prefix,
        ARTIFACT_ADDR: "127.0.0.1:1",
        SLUICE_SERVICE_TOKEN: "runner-token",
        SLUICE_DEV_MODE: "true",
        RUNNER_ID: id,
        RUNNER_JOB_ISOLATION: "process-group",
        WORKSPACE_ROOT: path.join(root.dir, id),
        PATH: process.env["PATH"],
        ...env,
      }),
      { logger: noopLogger, commitArtifact: () => Promise.resolve() },
    );
    started.push(runner);
    return runner;
  };
  const resultOf = (jobId: string) => results.find((r) => r.result.jobId === jobId);

  beforeAll(async () => {
    root = await tempDir("sluice-runner-pools-");
    bus = await connectBus({ servers: natsUrl, name: "runner-pools-test", logger: noopLogger, prefix });
    await bus.ensureStreams();
    resultsConsumer = await bus.consume({
      stream: bus.streams.results,
      durable: "runner-pools-test-results",
      filterSubject: bus.subjects.streamFilter("results"),
      schema: JobResultSchema,
      handler: (result, ctx) => {
        // Started reports (status InProgress) say a runner took a delivery; these tests count outcomes.
        if (result.status === "InProgress") return Promise.resolve();
        results.push({ result, subject: ctx.subject });
        return Promise.resolve();
      },
    });
  });

  afterAll(async () => {
    await Promise.all(started.map((r) => r.stop(2_000)));
    await resultsConsumer?.stop();
    await bus?.close();
    await root?.remove();
  });

  it("leaves a job of pool gpu waiting while only a default runner runs, then runs it on a gpu runner", async () => {
    await startRunner("pools-default", {});
    const job = makeJob({ pipelineName: "pools", commands: ["true"] });
    await bus.publish(bus.subjects.jobSubject("gpu", "Build", "Commands"), JobSchema, job, { msgId: job.jobId });
    const control = makeJob({ pipelineName: "pools", commands: ["true"] });
    await bus.publish(bus.subjects.jobSubject("default", "Build", "Commands"), JobSchema, control, { msgId: control.jobId });
    await expect.poll(() => resultOf(control.jobId)?.result.status, { timeout: 30_000 }).toBe("Succeeded");
    expect(resultOf(job.jobId)).toBeUndefined();

    const gpu = await startRunner("pools-gpu", { RUNNER_POOLS: "gpu" });
    expect(gpu.consumers).toEqual(["runner-gpu"]);
    await expect.poll(() => resultOf(job.jobId)?.result.status, { timeout: 30_000 }).toBe("Succeeded");
    expect(resultOf(job.jobId)?.result.updatedBy).toBe("pools-gpu");
    expect(resultOf(job.jobId)?.subject).toBe(bus.subjects.resultSubject("pools", { runner: "gpu" }));
  });

  it("serves several pools under one concurrency limit, answering on each job's pool", async () => {
    const runner = await startRunner("pools-multi", { RUNNER_POOLS: "blue,green", RUNNER_CONCURRENCY: "1" });
    expect(runner.consumers).toEqual(["runner-blue", "runner-green"]);
    const ledger = path.join(root.dir, "multi-ledger");
    // Each job records its start and end; with one slot the intervals never overlap.
    const jobs = ["blue", "green", "blue", "green"].map((pool, i) => ({
      pool,
      job: makeJob({ pipelineName: "pools", commands: [`echo start-${i} >> ${ledger}`, "sleep 0.3", `echo end-${i} >> ${ledger}`] }),
    }));
    for (const { pool, job } of jobs) await bus.publish(bus.subjects.jobSubject(pool, "Test", "Commands"), JobSchema, job, { msgId: job.jobId });
    for (const { pool, job } of jobs) {
      await expect.poll(() => resultOf(job.jobId)?.result.status, { timeout: 30_000 }).toBe("Succeeded");
      expect(resultOf(job.jobId)?.subject).toBe(bus.subjects.resultSubject("pools", { runner: pool }));
    }
    const lines = (await readFile(ledger, "utf8")).trim().split("\n");
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]?.replace("start-", "")).toBe(lines[i + 1]?.replace("end-", ""));
    }
    expect(lines).toHaveLength(8);
  });

  it("filters on the providers it serves, and refuses a pool whose consumer serves another set", async () => {
    const runner = await startRunner("pools-builds", { RUNNER_POOLS: "builds", RUNNER_PROVIDERS: "Commands" });
    const info = await bus.jsm.consumers.info(bus.streams.jobs, runnerDurable("builds"));
    expect([...(info.config.filter_subjects ?? [])].sort()).toEqual(
      ["Build", "Compute", "Deploy", "Test"].map((category) => bus.subjects.jobSubject("builds", category, "Commands")).sort(),
    );
    expect(runner.consumers).toEqual(["runner-builds"]);
    await expect(startRunner("pools-builds-git", { RUNNER_POOLS: "builds", RUNNER_PROVIDERS: "Git,Commands" })).rejects.toThrow(
      "RUNNER_PROVIDERS: consumer runner-builds of pool builds is in use by runners serving Commands, this runner serves Git,Commands; the runners of one pool must serve the same providers",
    );
    // The refused runner left the consumer as it was.
    const after = await bus.jsm.consumers.info(bus.streams.jobs, runnerDurable("builds"));
    expect([...(after.config.filter_subjects ?? [])].sort()).toEqual([...(info.config.filter_subjects ?? [])].sort());
  });
});
