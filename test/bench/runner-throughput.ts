/**
 * How many jobs per second do action-runners take, and how long does a job wait between its
 * publish and its start? Runners run in this process with a provider that does nothing, so
 * what is measured is the runner's own path: pull, lease heartbeat, workspace, result publish,
 * ack. Jobs are published straight to SLUICE_JOBS (no orchestrator) and every result is
 * awaited on SLUICE_RESULTS.
 *
 *   npm run bench            (servers and build handled by scripts/bench.mjs)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { loadActionRunnerConfig, startActionRunner } from "@sluice/action-runner";
import type { ActionRunnerService, Provider } from "@sluice/action-runner";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { JobResultSchema, JobSchema } from "@sluice/proto";
import { startNats } from "@sluice/testkit";

const JOBS = Number(process.env["BENCH_RUNNER_JOBS"] ?? 400);
const CONCURRENCY = Number(process.env["BENCH_RUNNER_CONCURRENCY"] ?? 4);
const LATENCY_JOBS = Number(process.env["BENCH_RUNNER_LATENCY_JOBS"] ?? 100);

function quantiles(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return `p50=${q(0.5).toFixed(1)} ms  p99=${q(0.99).toFixed(1)} ms`;
}

/** Starts `count` runners of pool `default`, each answering every Build/Commands job at once. */
async function startRunners(natsUrl: string, prefix: string, count: number, workspaceRoot: string, started: Map<string, number>): Promise<ActionRunnerService[]> {
  const noop: Provider = (ctx) => {
    started.set(ctx.job.jobId, Date.now());
    return Promise.resolve({ outputs: [] });
  };
  const runners: ActionRunnerService[] = [];
  for (let i = 0; i < count; i++) {
    const config = loadActionRunnerConfig({
      NATS_URL: natsUrl,
      SLUICE_DEV_MODE: "true",
      SLUICE_BUS_PREFIX: prefix,
      ARTIFACT_ADDR: "127.0.0.1:1",
      SLUICE_SERVICE_TOKEN: "bench-runner-token",
      RUNNER_ID: `bench-runner-${i}`,
      RUNNER_CONCURRENCY: String(CONCURRENCY),
      RUNNER_JOB_ISOLATION: "process-group",
      WORKSPACE_ROOT: workspaceRoot,
      PATH: process.env["PATH"],
    });
    runners.push(
      await startActionRunner(config, {
        logger: noopLogger,
        commitArtifact: () => Promise.resolve(),
        providers: new Map([["Build/Commands", noop]]),
      }),
    );
  }
  return runners;
}

async function measure(bus: Bus, natsUrl: string, prefix: string, runnerCount: number, workspaceRoot: string): Promise<void> {
  const started = new Map<string, number>();
  const published = new Map<string, number>();
  let done = 0;
  let awaitCount = Infinity;
  let finish: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => (finish = resolve));
  const results = await bus.consume({
    stream: bus.streams.results,
    durable: `bench-results-${runnerCount}`,
    filterSubject: bus.subjects.streamFilter("results"),
    schema: JobResultSchema,
    concurrency: 64,
    handler: (result) => {
      if (result.status !== "Succeeded") throw new Error(`job ${result.jobId} ${result.status}: ${result.summary}`);
      if (++done === awaitCount) finish();
      return Promise.resolve();
    },
  });
  const runners = await startRunners(natsUrl, prefix, runnerCount, workspaceRoot, started);
  const deadline = timestampFromMs(Date.now() + 10 * 60_000);
  const publish = async (name: string): Promise<void> => {
    const jobId = `${name}:1`;
    published.set(jobId, Date.now());
    await bus.publish(
      bus.subjects.jobSubject("default", "Build", "Commands"),
      JobSchema,
      {
        jobId,
        actionExecutionId: name,
        attempt: 1,
        pipelineName: "bench",
        pipelineExecutionId: "bench",
        stageName: "Build",
        actionName: "Noop",
        actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
        deadline,
      },
      { msgId: jobId },
    );
  };
  const waitsOf = (prefixOfJobs: string): number[] =>
    [...started].filter(([jobId]) => jobId.startsWith(prefixOfJobs)).map(([jobId, at]) => at - (published.get(jobId) ?? at));
  const label = `${runnerCount} runner${runnerCount === 1 ? " " : "s"} × ${CONCURRENCY} slots`;

  // Idle fleet, one job at a time: the latency of dispatch → start itself.
  for (let i = 0; i < LATENCY_JOBS; i++) {
    const before = done;
    await publish(`lat-${runnerCount}-${i}`);
    while (done === before) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  console.log(`${label}: dispatch → start, one job at a time  ${quantiles(waitsOf("lat-"))}`);

  // A burst of JOBS at once: throughput, and how long jobs queue under it.
  const target = done + JOBS;
  awaitCount = target;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: JOBS }, (_, i) => publish(`burst-${runnerCount}-${i}`)));
  await allDone;
  const seconds = (performance.now() - t0) / 1000;
  console.log(`${label}: ${(JOBS / seconds).toFixed(0)} jobs/s (${JOBS} noop jobs in ${seconds.toFixed(2)} s); dispatch → start under the burst ${quantiles(waitsOf("burst-"))}`);
  await Promise.all(runners.map((r) => r.stop(5_000)));
  await results.stop();
}

async function main(): Promise<void> {
  const nats = await startNats();
  const workspaceRoot = await mkdtemp(path.join(tmpdir(), "sluice-bench-ws-"));
  try {
    for (const runnerCount of [1, 4]) {
      // A fresh prefix each round: its own streams and consumers, nothing left from the last round.
      const prefix = `benchr${runnerCount}${process.pid}`;
      const bus = await connectBus({ servers: nats.url, name: "bench-runners", logger: noopLogger, prefix });
      await bus.ensureStreams();
      try {
        await measure(bus, nats.url, prefix, runnerCount, workspaceRoot);
      } finally {
        await bus.close();
      }
    }
  } finally {
    await rm(workspaceRoot, { recursive: true, force: true });
    await nats.stop();
  }
}

await main();
