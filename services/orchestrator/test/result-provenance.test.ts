// Forged results: the orchestrator refuses a result whose subject's publisher may not answer that
// job (NATS permissions bind `…results.<p>.runner.<pool>` and `…results.<p>.approval` to those
// users, see packages/bus/test/permissions.test.ts), and one that claims another action
// execution's artifact. Each is dead-lettered with the reason and the action stays in progress.
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { fromBinary } from "@bufbuild/protobuf";
import type { Bus } from "@sluice/bus";
import { DeadLetterSchema, JobResultSchema } from "@sluice/proto";
import type { Job } from "@sluice/proto";
import { approvalPipeline, isJob, isolation, produced, report, startHarness } from "./helpers.js";
import type { Clients, JobTap, TappedHarness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("prov");

let harness: TappedHarness | undefined;
let clients: Clients;
let bus: Bus;
let tap: JobTap;

beforeAll(async () => {
  harness = await startHarness(servers, iso, { name: "orchestrator-provenance-test", tapJobs: true });
  ({ clients, bus, tap } = harness);
});

afterAll(() => harness?.stop());

/** The reason of the latest dead-lettered result, when it is about `jobId`. */
async function deadLetterReason(jobId: string): Promise<string | undefined> {
  const stored = await bus.jsm.streams.getMessage(bus.streams.dlq, { last_by_subj: bus.subjects.dlqSubject(bus.streams.results) }).catch(() => null);
  if (stored === null) return undefined;
  const letter = fromBinary(DeadLetterSchema, stored.data);
  return letter.reason.includes(jobId) ? letter.reason : undefined;
}

async function actionStatus(pipeline: string, stage: string): Promise<string | undefined> {
  const state = await clients.viewer.getPipelineState({ name: pipeline });
  return state.stageStates.find((s) => s.stageName === stage)?.actionStates[0]?.latestExecution?.status;
}

function resultOf(job: Job) {
  return {
    jobId: job.jobId,
    actionExecutionId: job.actionExecutionId,
    attempt: job.attempt,
    pipelineName: job.pipelineName,
    pipelineExecutionId: job.pipelineExecutionId,
    stageName: job.stageName,
    actionName: job.actionName,
    status: "Succeeded",
    updatedBy: "forger",
  };
}

describe("result provenance", () => {
  const name = "provenance";
  let source: Job;
  let approval: Job;

  it("dead-letters a result claiming another action execution's artifact, and keeps the action running", async () => {
    await clients.ops.createPipeline({ pipeline: approvalPipeline(name) });
    source = await tap.next(isJob(name, "Checkout"));
    const foreign = { ...produced(source, "Src")[0], artifactId: "some-other-execution/Src" };
    await bus.publish(bus.subjects.resultSubject(name, { runner: "default" }), JobResultSchema, { ...resultOf(source), outputArtifacts: [foreign] }, { msgId: `forged-art-${source.jobId}` });
    await expect.poll(() => deadLetterReason(source.jobId)).toMatch(/artifactId: "some-other-execution\/Src" does not belong to action execution/);
    expect(await actionStatus(name, "Source")).toBe("InProgress");
  });

  it("dead-letters a result on a subject that names no publisher", async () => {
    const bare = bus.subjects.resultPartitionSubject(0).slice(0, -2);
    await bus.publish(bare, JobResultSchema, { ...resultOf(source), jobId: `${source.jobId}` }, { msgId: `bare-${source.jobId}` });
    await expect.poll(() => deadLetterReason(source.jobId)).toMatch(/names no publisher/);
    expect(await actionStatus(name, "Source")).toBe("InProgress");
  });

  it("accepts the runner's genuine result", async () => {
    await report(bus, source, { outputArtifacts: produced(source, "Src") });
    await expect.poll(() => actionStatus(name, "Source")).toBe("Succeeded");
    approval = await tap.next(isJob(name, "Approve"));
  });

  it("dead-letters an approval forged by a runner (on its own runner subject), so the approval stays open", async () => {
    await bus.publish(bus.subjects.resultSubject(name, { runner: "default" }), JobResultSchema, resultOf(approval), { msgId: `forged-approval-${approval.jobId}` });
    await expect.poll(() => deadLetterReason(approval.jobId)).toMatch(/must come from the approval service, not a runner of pool default/);
    expect(await actionStatus(name, "Gate")).toBe("InProgress");
  });

  it("dead-letters a runner job's result published on the approval subject", async () => {
    await clients.ops.startPipelineExecution({ name });
    const second = await tap.next((j) => isJob(name, "Checkout")(j) && j.jobId !== source.jobId);
    await bus.publish(bus.subjects.resultSubject(name, "approval"), JobResultSchema, resultOf(second), { msgId: `forged-src-${second.jobId}` });
    await expect.poll(() => deadLetterReason(second.jobId)).toMatch(/must come from a runner of pool default, not the approval service/);
  });
});
