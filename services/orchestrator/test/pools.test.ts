// Runner pools: an action's RunnerPool picks the subject its job is dispatched to, and only a
// runner of that pool may answer it (a result on another pool's subject is dead-lettered and the
// action keeps running). Commands rules and the other actions stay on the default pool. A job no
// runner has started shows as queued (GetPipelineState, `sluice.jobs.queued`), and a result from
// a stale delivery is refused (`sluice.results.stale`).
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { fromBinary } from "@bufbuild/protobuf";
import { metrics } from "@opentelemetry/api";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { METRIC_NAMES } from "@sluice/service-kit";
import type { Bus } from "@sluice/bus";
import { DeadLetterSchema, JobResultSchema } from "@sluice/proto";
import { isJob, isolation, produced, report, startHarness, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap, TappedHarness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("pools");

let harness: TappedHarness | undefined;
let clients: Clients;
let bus: Bus;
let tap: JobTap;
/** Added to the orchestrator's clock: moves queued jobs' ages forward. */
let clockOffsetMs = 0;

/** A pull reader: `collect()` on demand. */
class TestMetricReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}
const reader = new TestMetricReader();
const meterProvider = new MeterProvider({ readers: [reader] });

/** The data points of metric `name` as [attributes, value] pairs. */
async function points(name: string): Promise<[Record<string, unknown>, unknown][]> {
  const { resourceMetrics } = await reader.collect();
  const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  return (metric?.dataPoints ?? []).map((p) => [p.attributes, p.value]);
}

beforeAll(async () => {
  // Before the orchestrator starts: its queued-jobs gauges bind to the provider registered then.
  metrics.setGlobalMeterProvider(meterProvider);
  harness = await startHarness(servers, iso, { name: "orchestrator-pools-test", tapJobs: true, deps: { clock: () => Date.now() + clockOffsetMs } });
  ({ clients, bus, tap } = harness);
});

afterAll(async () => {
  await harness?.stop();
  await meterProvider.shutdown();
  metrics.disable();
});

async function actionStatus(pipeline: string, stage: string): Promise<string | undefined> {
  const state = await clients.viewer.getPipelineState({ name: pipeline });
  return state.stageStates.find((s) => s.stageName === stage)?.actionStates[0]?.latestExecution?.status;
}

async function deadLetterReason(jobId: string): Promise<string | undefined> {
  const stored = await bus.jsm.streams.getMessage(bus.streams.dlq, { last_by_subj: bus.subjects.dlqSubject(bus.streams.results) }).catch(() => null);
  if (stored === null) return undefined;
  const letter = fromBinary(DeadLetterSchema, stored.data);
  return letter.reason.includes(jobId) ? letter.reason : undefined;
}

describe("runner pools", () => {
  it("dispatches to the action's pool and accepts its result only from that pool", async () => {
    const name = "pooled";
    const pipeline = threeStagePipeline(name);
    const build = pipeline.stages?.[1]?.actions?.[0];
    if (build === undefined) throw new Error("fixture has no build action");
    build.configuration = { RunnerPool: "gpu" };
    await clients.ops.createPipeline({ pipeline });

    const source = await tap.next(isJob(name, "Checkout"));
    expect(tap.subjects.get(source.jobId)).toBe(bus.subjects.jobSubject("default", "Source", "Git"));
    await report(bus, source, { outputArtifacts: produced(source, "Src") });

    const compile = await tap.next(isJob(name, "Compile"));
    expect(tap.subjects.get(compile.jobId)).toBe(bus.subjects.jobSubject("gpu", "Build", "Commands"));
    const forged = { jobId: compile.jobId, actionExecutionId: compile.actionExecutionId, attempt: compile.attempt, pipelineName: name, pipelineExecutionId: compile.pipelineExecutionId, stageName: "Build", actionName: "Compile", status: "Succeeded" };
    await bus.publish(bus.subjects.resultSubject(name, { runner: "default" }), JobResultSchema, forged, { msgId: `wrong-pool-${compile.jobId}` });
    await expect.poll(() => deadLetterReason(compile.jobId)).toMatch(/must come from a runner of pool gpu, not a runner of pool default/);
    expect(await actionStatus(name, "Build")).toBe("InProgress");

    await report(bus, compile, { outputArtifacts: produced(compile, "Built") });
    await expect.poll(() => actionStatus(name, "Build")).toBe("Succeeded");
    const ship = await tap.next(isJob(name, "Ship"));
    expect(tap.subjects.get(ship.jobId)).toBe(bus.subjects.jobSubject("default", "Deploy", "Commands"));
  });

  it("shows a job queued in its pool with its age until a runner starts it, and refuses a stale delivery's result", async () => {
    const name = "queued-gpu";
    const pipeline = threeStagePipeline(name);
    const build = pipeline.stages?.[1]?.actions?.[0];
    if (build === undefined) throw new Error("fixture has no build action");
    build.configuration = { RunnerPool: "gpu" };
    await clients.ops.createPipeline({ pipeline });
    const source = await tap.next(isJob(name, "Checkout"));
    await report(bus, source, { outputArtifacts: produced(source, "Src") });
    const compile = await tap.next(isJob(name, "Compile"));
    const compileState = async () => (await clients.viewer.getPipelineState({ name })).stageStates.find((s) => s.stageName === "Build")?.actionStates[0]?.latestExecution;

    // No gpu runner took it: queued, and two minutes later two minutes old.
    await expect.poll(async () => (await compileState())?.queued?.pool).toBe("gpu");
    clockOffsetMs += 120_000;
    const queued = await compileState();
    expect(queued?.status).toBe("InProgress");
    expect(Number(queued?.queued?.ageSeconds)).toBeGreaterThanOrEqual(120);
    expect(queued?.summary).toMatch(/^Queued since \S+ in runner pool gpu: no runner of the pool has started the job yet$/);
    expect(queued?.startedAt).toBeUndefined();
    expect(await points(METRIC_NAMES.jobsQueued)).toContainEqual([{ pool: "gpu" }, 1]);
    const [, oldest] = (await points(METRIC_NAMES.jobsQueuedOldestAge)).find(([attrs]) => attrs["pool"] === "gpu") ?? [];
    expect(Number(oldest)).toBeGreaterThanOrEqual(120);

    // A gpu runner reports it started delivery 1: no longer queued.
    await report(bus, compile, { status: "InProgress", summary: "", delivery: 1, updatedBy: "gpu-a" });
    await expect.poll(async () => (await compileState())?.lastUpdatedBy).toBe("gpu-a");
    const running = await compileState();
    expect(running?.queued).toBeUndefined();
    expect(running?.startedAt).toBeDefined();
    expect(running?.status).toBe("InProgress");
    expect(await points(METRIC_NAMES.jobsQueued)).toContainEqual([{ pool: "gpu" }, 0]);

    // gpu-a is paused past its lease; the job is redelivered to gpu-b, which starts delivery 2.
    await report(bus, compile, { status: "InProgress", summary: "", delivery: 2, updatedBy: "gpu-b" });
    await expect.poll(async () => (await compileState())?.lastUpdatedBy).toBe("gpu-b");
    // gpu-a resumes and reports delivery 1: stale, refused, counted, and the action goes on.
    await report(bus, compile, { delivery: 1, updatedBy: "gpu-a", outputArtifacts: produced(compile, "Built") });
    await expect.poll(() => deadLetterReason(compile.jobId)).toMatch(/result from delivery 1, but delivery 2 was started since by gpu-b \(a stale attempt/);
    expect(await points(METRIC_NAMES.staleResults)).toEqual([[{ pool: "gpu" }, 1]]);
    expect((await compileState())?.status).toBe("InProgress");

    // gpu-b's result completes it.
    await report(bus, compile, { delivery: 2, updatedBy: "gpu-b", outputArtifacts: produced(compile, "Built") });
    await expect.poll(async () => (await compileState())?.status).toBe("Succeeded");
    expect((await compileState())?.lastUpdatedBy).toBe("gpu-b");
  });

  it("refuses a pipeline whose RunnerPool is not a pool name, naming the field", async () => {
    const pipeline = threeStagePipeline("bad-pool");
    const build = pipeline.stages?.[1]?.actions?.[0];
    if (build === undefined) throw new Error("fixture has no build action");
    build.configuration = { RunnerPool: "custom" };
    await expect(clients.ops.createPipeline({ pipeline })).rejects.toThrow(/pipeline\.stages\[1\]\.actions\[0\]\.configuration\.RunnerPool: "custom" is reserved/);
  });
});
