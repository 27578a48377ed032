// Job ids and leases on a real nats-server: a job id delivered twice runs once, and a runner that
// cannot heartbeat (its NATS connection cut through a TCP proxy) aborts the job and reports
// nothing, while the runner the job is redelivered to reports it.
import { appendFile, readFile } from "node:fs/promises";
import path from "node:path";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import { noopLogger } from "@sluice/domain";
import { JobResultSchema, JobSchema } from "@sluice/proto";
import type { JobResult } from "@sluice/proto";
import { recordingLogger, startTcpRelay } from "@sluice/testkit";
import type { RecordedLine } from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadActionRunnerConfig } from "../src/config.js";
import { runnerDurable, startActionRunner } from "../src/service.js";
import type { ActionRunnerService } from "../src/service.js";
import { makeJob, tempDir } from "./helpers.js";

describe("runner job ids and leases", () => {
  const { natsUrl } = inject("servers");
  const prefix = `arl${Date.now().toString(36)}`;
  let root: { dir: string; remove: () => Promise<void> };
  let bus: Bus;
  let resultsConsumer: Consumer;
  const results: JobResult[] = [];
  /** Runners' started reports, in arrival order. */
  const starts: JobResult[] = [];
  const started: ActionRunnerService[] = [];

  const startRunner = async (id: string, pool: string, opts: { natsUrl?: string; logger?: Logger } = {}) => {
    const runner = await startActionRunner(
      loadActionRunnerConfig({
        NATS_URL: opts.natsUrl ?? natsUrl,
        SLUICE_BUS_PREFIX: prefix,
        ARTIFACT_ADDR: "127.0.0.1:1",
        SLUICE_SERVICE_TOKEN: "runner-token",
        SLUICE_DEV_MODE: "true",
        RUNNER_ID: id,
        RUNNER_POOLS: pool,
        RUNNER_ACK_WAIT_MS: "3000",
        WORKSPACE_ROOT: path.join(root.dir, "ws"),
        PATH: process.env["PATH"],
      }),
      { logger: opts.logger ?? noopLogger, commitArtifact: () => Promise.resolve() },
    );
    started.push(runner);
    return runner;
  };

  /** Resolves once nothing of `pool`'s queue is waiting or unacked. */
  const queueSettled = (pool: string) =>
    expect
      .poll(async () => {
        const info = await bus.jsm.consumers.info(bus.streams.jobs, runnerDurable(pool));
        return { pending: info.num_pending, ackPending: info.num_ack_pending };
      }, { timeout: 30_000 })
      .toEqual({ pending: 0, ackPending: 0 });

  beforeAll(async () => {
    root = await tempDir("sluice-runner-leases-");
    bus = await connectBus({ servers: natsUrl, name: "runner-leases-test", logger: noopLogger, prefix });
    await bus.ensureStreams();
    resultsConsumer = await bus.consume({
      stream: bus.streams.results,
      durable: "runner-leases-test-results",
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

  it("runs a job id delivered twice only once, while it runs and after it finished", async () => {
    await startRunner("dedupe-1", "dedupe");
    const runs = path.join(root.dir, "dedupe-runs");
    const gate = path.join(root.dir, "dedupe-gate");
    // Holds until the test opens the gate, so the second copy surely arrives while it runs.
    const job = makeJob({ commands: [`echo run >> ${runs}`, `until [ -e ${gate} ]; do sleep 0.1; done`] });
    const subject = bus.subjects.jobSubject("dedupe", "Build", "Commands");
    // Two messages with the same job id (an outbox republishing after the dedupe window).
    await bus.publish(subject, JobSchema, job, { msgId: `${job.jobId}#1` });
    await expect.poll(() => readFile(runs, "utf8").catch(() => ""), { timeout: 20_000 }).toBe("run\n");
    await bus.publish(subject, JobSchema, job, { msgId: `${job.jobId}#2` });
    // Both copies are held by the runner (the second joined the first) before the gate opens.
    await expect
      .poll(async () => (await bus.jsm.consumers.info(bus.streams.jobs, runnerDurable("dedupe"))).num_ack_pending, { timeout: 20_000 })
      .toBe(2);
    await appendFile(gate, "open");
    await expect.poll(() => results.find((r) => r.jobId === job.jobId)?.status, { timeout: 20_000 }).toBe("Succeeded");
    await queueSettled("dedupe");
    expect(await readFile(runs, "utf8")).toBe("run\n");
    // The delivery was reported started; the copy that joined it is the first delivery of its own
    // message, so its report repeats the message id and JetStream drops it.
    expect(starts.filter((r) => r.jobId === job.jobId).map((r) => [r.delivery, r.updatedBy])).toEqual([[1, "dedupe-1"]]);
    expect(results.find((r) => r.jobId === job.jobId)?.delivery).toBe(1);

    // A third copy after the job finished: acked with the stored result, not run.
    await bus.publish(subject, JobSchema, job, { msgId: `${job.jobId}#3` });
    await queueSettled("dedupe");
    expect(await readFile(runs, "utf8")).toBe("run\n");
  });

  it("aborts a job whose lease it lost and publishes no result; the runner it went to reports it", async () => {
    const proxy = await startTcpRelay({ host: new URL(natsUrl).hostname, port: Number(new URL(natsUrl).port) });
    const logs: RecordedLine[] = [];
    const first = await startRunner("lease-1", "lease", { natsUrl: `nats://127.0.0.1:${proxy.port}`, logger: recordingLogger(logs) });
    const runs = path.join(root.dir, "lease-runs");
    const job = makeJob({ commands: [`echo "start $SLUICE_RUNNER_ID" >> ${runs}`, "sleep 8", `echo "end $SLUICE_RUNNER_ID" >> ${runs}`] });
    await bus.publish(bus.subjects.jobSubject("lease", "Build", "Commands"), JobSchema, job, { msgId: job.jobId });
    await expect.poll(() => readFile(runs, "utf8").catch(() => ""), { timeout: 20_000 }).toBe("start lease-1\n");

    // The first runner's heartbeats stop reaching the server.
    proxy.down();
    await expect.poll(() => logs.some((l) => l.msg === "job lease lost: aborting the job" && l.fields["jobId"] === job.jobId), { timeout: 20_000 }).toBe(true);

    // The server redelivers the job when the lease runs out: a second runner takes it.
    await startRunner("lease-2", "lease");
    await expect.poll(() => results.find((r) => r.jobId === job.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    await queueSettled("lease");
    proxy.up();
    await first.stop(5_000);
    await proxy.close();

    // The first run was cut short and reported nothing; the only result is the second runner's.
    expect(await readFile(runs, "utf8")).toBe("start lease-1\nstart lease-2\nend lease-2\n");
    expect(results.filter((r) => r.jobId === job.jobId).map((r) => [r.updatedBy, r.delivery])).toEqual([["lease-2", 2]]);
    // Both runners reported the delivery they started: the orchestrator fences off delivery 1.
    expect(starts.filter((r) => r.jobId === job.jobId).map((r) => [r.updatedBy, r.delivery])).toEqual([
      ["lease-1", 1],
      ["lease-2", 2],
    ]);
  });
});
