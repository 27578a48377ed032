// Graceful shutdown: a job that finishes within the grace period reports its result; one that
// does not is handed back to the queue and run by the next runner.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { JobResultSchema, JobSchema } from "@sluice/proto";
import type { JobResult } from "@sluice/proto";
import type {} from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadActionRunnerConfig } from "../src/config.js";
import { startActionRunner } from "../src/service.js";
import type { ActionRunnerService } from "../src/service.js";
import { makeJob, tempDir } from "./helpers.js";

describe("action-runner shutdown", () => {
  const { natsUrl } = inject("servers");
  const prefix = `ars${Date.now().toString(36)}`;
  let root: { dir: string; remove: () => Promise<void> };
  let bus: Bus;
  let resultsConsumer: Consumer;
  const results: JobResult[] = [];
  /** Runners' started reports, in arrival order. */
  const starts: JobResult[] = [];
  const started: ActionRunnerService[] = [];

  const startRunner = async (id: string): Promise<ActionRunnerService> => {
    const runner = await startActionRunner(
      loadActionRunnerConfig({
        NATS_URL: natsUrl,
        SLUICE_DEV_MODE: "true",
        SLUICE_BUS_PREFIX: prefix,
        ARTIFACT_ADDR: "127.0.0.1:1",
        SLUICE_SERVICE_TOKEN: "runner-token",
        RUNNER_ID: id,
        RUNNER_ACK_WAIT_MS: "3000",
        WORKSPACE_ROOT: path.join(root.dir, "ws"),
        PATH: process.env["PATH"],
      }),
      { logger: noopLogger, commitArtifact: () => Promise.resolve() },
    );
    started.push(runner);
    return runner;
  };

  beforeAll(async () => {
    root = await tempDir("sluice-runner-shutdown-");
    bus = await connectBus({ servers: natsUrl, name: "runner-shutdown-test", logger: noopLogger, prefix });
    await bus.ensureStreams();
    resultsConsumer = await bus.consume({
      stream: bus.streams.results,
      durable: "runner-shutdown-test-results",
      filterSubject: bus.subjects.streamFilter("results"),
      schema: JobResultSchema,
      handler: (result) => {
        // Started reports (status InProgress) say a runner took a delivery; these tests count outcomes.
        if (result.status === "InProgress") {
          starts.push(result);
          return Promise.resolve();
        }
        results.push(result);
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

  const publish = (job: ReturnType<typeof makeJob>) =>
    bus.publish(bus.subjects.jobSubject("default", "Build", "Commands"), JobSchema, job, { msgId: job.jobId });

  it("lets a running job finish within the grace period and publishes its result before stopping", async () => {
    const runner = await startRunner("grace-1");
    const marker = path.join(root.dir, "grace-started");
    const job = makeJob({ commands: [`touch ${marker}`, "sleep 1", "echo done"] });
    await publish(job);
    await expect.poll(() => readFile(marker).then(() => true, () => false), { timeout: 15_000 }).toBe(true);
    await runner.stop(10_000);
    expect(results.find((r) => r.jobId === job.jobId)?.status).toBe("Succeeded");
  });

  it("hands a job that outlasts the deadline back to the queue, where the next runner runs it", async () => {
    const first = await startRunner("handback-1");
    const runs = path.join(root.dir, "handback-runs");
    // First run: record and hang; second run: record and succeed.
    const job = makeJob({
      commands: [`echo run >> ${runs}`, `if [ "$(wc -l < ${runs})" -lt 2 ]; then sleep 60; fi`],
    });
    await publish(job);
    await expect.poll(() => readFile(runs, "utf8").catch(() => ""), { timeout: 15_000 }).toBe("run\n");
    const stopStarted = Date.now();
    await first.stop(2_000);
    expect(Date.now() - stopStarted).toBeLessThan(5_000);
    // Interrupted by the shutdown: no result, the job is not lost.
    expect(results.find((r) => r.jobId === job.jobId)).toBeUndefined();

    await startRunner("handback-2");
    await expect.poll(() => results.find((r) => r.jobId === job.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    expect(results.find((r) => r.jobId === job.jobId)?.updatedBy).toBe("handback-2");
    expect(await readFile(runs, "utf8")).toBe("run\nrun\n");
    // Each runner reported the delivery it started; the result names the second one.
    expect(starts.filter((r) => r.jobId === job.jobId).map((r) => [r.updatedBy, r.delivery])).toEqual([
      ["handback-1", 1],
      ["handback-2", 2],
    ]);
    expect(results.find((r) => r.jobId === job.jobId)?.delivery).toBe(2);
  });
});
