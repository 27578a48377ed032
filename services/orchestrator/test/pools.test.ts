// Runner pools: an action's RunnerPool picks the subject its job is dispatched to, and only a
// runner of that pool may answer it (a result on another pool's subject is dead-lettered and the
// action keeps running). Commands rules and the other actions stay on the default pool.
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { fromBinary } from "@bufbuild/protobuf";
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

beforeAll(async () => {
  harness = await startHarness(servers, iso, { name: "orchestrator-pools-test", tapJobs: true });
  ({ clients, bus, tap } = harness);
});

afterAll(() => harness?.stop());

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

  it("refuses a pipeline whose RunnerPool is not a pool name, naming the field", async () => {
    const pipeline = threeStagePipeline("bad-pool");
    const build = pipeline.stages?.[1]?.actions?.[0];
    if (build === undefined) throw new Error("fixture has no build action");
    build.configuration = { RunnerPool: "custom" };
    await expect(clients.ops.createPipeline({ pipeline })).rejects.toThrow(/pipeline\.stages\[1\]\.actions\[0\]\.configuration\.RunnerPool: "custom" is reserved/);
  });
});
