/**
 * How much time does Sluice add between two actions? A responder stands in for
 * the action-runner: it answers every job with an instant success, so what is
 * left is the orchestrator's own path (consume result → decide → one conditional
 * MongoDB write → publish the next job). The floors printed first are the costs
 * underneath: a JetStream publish→consume→ack and a conditional MongoDB write.
 *
 *   npm run bench            (servers and build handled by scripts/bench.mjs)
 */
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { createSluiceClient } from "@sluice/client";
import { noopLogger } from "@sluice/domain";
import { JobResultSchema, JobSchema } from "@sluice/proto";
import type { Job } from "@sluice/proto";
import { startServers } from "@sluice/testkit";
import { runnerJobsFilter } from "@sluice/orchestrator";
import { startBenchOrchestrator } from "./bench-orchestrator.js";
import { MongoClient } from "mongodb";

const STAGES = Number(process.env["BENCH_STAGES"] ?? 20);
const EXECUTIONS = Number(process.env["BENCH_EXECUTIONS"] ?? 10);
const FLOOR_SAMPLES = 500;

function stats(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return `n=${s.length} p50=${q(0.5).toFixed(2)} ms  p90=${q(0.9).toFixed(2)} ms  p99=${q(0.99).toFixed(2)} ms  mean=${mean.toFixed(2)} ms`;
}

async function natsFloor(bus: Bus): Promise<number[]> {
  const samples: number[] = [];
  let resolveNext: (() => void) | undefined;
  const consumer = await bus.consume({
    stream: bus.streams.results,
    durable: "bench-floor",
    filterSubject: bus.subjects.resultPartitionSubject(0),
    schema: JobResultSchema,
    handler: () => {
      resolveNext?.();
      return Promise.resolve();
    },
  });
  for (let i = 0; i < FLOOR_SAMPLES; i++) {
    const got = new Promise<void>((r) => (resolveNext = r));
    const t0 = performance.now();
    await bus.publish(`${bus.subjects.resultPartitionSubject(0).slice(0, -2)}.runner.default`, JobResultSchema, { jobId: `floor-${i}` }, { msgId: randomUUID() });
    await got;
    samples.push(performance.now() - t0);
  }
  await consumer.stop();
  return samples;
}

async function mongoFloor(url: string): Promise<number[]> {
  const client = await MongoClient.connect(url);
  const coll = client.db(`bench_${process.pid}`).collection<{ _id: string; rev: number; state: unknown }>("runtime");
  const state = { stages: Array.from({ length: STAGES }, (_, i) => ({ name: `Stage${i}`, actions: [{ name: "A", status: "Succeeded" }] })) };
  await coll.insertOne({ _id: "p", rev: 0, state });
  const samples: number[] = [];
  for (let rev = 0; rev < FLOOR_SAMPLES; rev++) {
    const t0 = performance.now();
    await coll.findOneAndUpdate({ _id: "p", rev }, { $set: { rev: rev + 1, state } });
    samples.push(performance.now() - t0);
  }
  await client.db(`bench_${process.pid}`).dropDatabase();
  await client.close();
  return samples;
}

function declaration(name: string): unknown {
  const stages = [
    {
      name: "Source",
      actions: [
        {
          name: "Checkout",
          actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
          configuration: { RepositoryUrl: "file:///bench/unused", BranchName: "main" },
          outputArtifacts: [{ name: "Src" }],
        },
      ],
    },
    ...Array.from({ length: STAGES - 1 }, (_, i) => ({
      name: `Step${i}`,
      actions: [{ name: "Run", actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" }, commands: ["true"] }],
    })),
  ];
  return { pipeline: { name, stages } };
}

async function main(): Promise<void> {
  const servers = await startServers();
  const prefix = `bench${process.pid}`;
  const bus = await connectBus({ servers: servers.natsUrl, name: "bench", logger: noopLogger, prefix });
  await bus.ensureStreams();
  try {
    // The floor runs on a bus of its own: work-queue streams allow one consumer per subject.
    const floorBus = await connectBus({ servers: servers.natsUrl, name: "bench-floor", logger: noopLogger, prefix: `${prefix}f` });
    await floorBus.ensureStreams();
    console.log(`JetStream publish→consume→ack      ${stats(await natsFloor(floorBus))}`);
    await floorBus.close();
    console.log(`MongoDB conditional write          ${stats(await mongoFloor(servers.mongoUrl))}`);

    const token = "bench-token";
    const orchestrator = await startBenchOrchestrator({ natsUrl: servers.natsUrl, mongoUrl: servers.mongoUrl, prefix, token });

    // The responder: answers each job at once and records when jobs arrive and results leave.
    const jobArrivals = new Map<string, number>();
    const resultSent = new Map<string, number>();
    const gaps: number[] = [];
    const lastResultOf = new Map<string, number>();
    const responder = await bus.consume({
      stream: bus.streams.jobs,
      durable: "bench-responder",
      filterSubject: runnerJobsFilter(bus),
      schema: JobSchema,
      concurrency: 8,
      handler: async (job: Job) => {
        const now = performance.now();
        jobArrivals.set(job.jobId, now);
        const previous = lastResultOf.get(job.pipelineExecutionId);
        if (previous !== undefined) gaps.push(now - previous);
        const outputs = job.outputArtifacts.map((o) => ({ name: o.name, artifactId: `${job.actionExecutionId}/${o.name}`, bucket: "b", key: "k", sha256: "0".repeat(64), sizeBytes: 0n }));
        const result = create(JobResultSchema, {
          jobId: job.jobId,
          actionExecutionId: job.actionExecutionId,
          attempt: job.attempt,
          pipelineName: job.pipelineName,
          pipelineExecutionId: job.pipelineExecutionId,
          stageName: job.stageName,
          actionName: job.actionName,
          status: "Succeeded",
          outputArtifacts: outputs,
          revision: job.actionTypeId?.category === "Source" ? { revisionId: "f".repeat(40), revisionSummary: "bench" } : undefined,
          updatedBy: "bench",
        });
        const sent = performance.now();
        lastResultOf.set(job.pipelineExecutionId, sent);
        resultSent.set(job.jobId, sent);
        await bus.publish(bus.subjects.resultSubject(job.pipelineName, { runner: "default" }), JobResultSchema, result, { msgId: `result:${job.jobId}` });
      },
    });

    const client = createSluiceClient({ address: `127.0.0.1:${orchestrator.port}`, token });
    const { readPipelineJson } = await import("@sluice/client");
    const walls: number[] = [];
    for (let i = 0; i < EXECUTIONS; i++) {
      const name = `bench-${i}`;
      const t0 = performance.now();
      await client.pipelines.createPipeline(readPipelineJson(JSON.stringify(declaration(name))));
      for (;;) {
        const state = await client.pipelines.getPipelineState({ name });
        const last = state.stageStates.at(-1)?.latestExecution;
        if (last && last.status !== "InProgress") {
          if (last.status !== "Succeeded") throw new Error(`execution ended ${last.status}`);
          break;
        }
        // Polling lightly: every read is a database query competing with the orchestrator.
        await new Promise((r) => setTimeout(r, 25));
      }
      walls.push(performance.now() - t0);
    }
    console.log(`action → next action (overhead)    ${stats(gaps)}`);
    console.log(`whole execution, ${STAGES} actions       ${stats(walls)}  (includes CreatePipeline and state polling)`);
    client.close();
    await responder.stop();
    await orchestrator.stop(5000);
  } finally {
    await bus.close();
    await servers.stop();
  }
}

await main();
