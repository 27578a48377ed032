import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { recordingLogger } from "@sluice/testkit";
import type { RecordedLine } from "@sluice/testkit";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Bus } from "@sluice/bus";
import { SourceChangedSchema } from "@sluice/proto";
import type { Job, StateChangeEvent } from "@sluice/proto";
import type { Orchestrator } from "../src/service.js";
import { approvalPipeline, isJob, isolation, produced, report, startHarness, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap, TappedHarness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("exe");

let harness: TappedHarness | undefined;
let service: Orchestrator;
let clients: Clients;
let bus: Bus;
let tap: JobTap;
const seen: StateChangeEvent[] = [];
// Tests move the orchestrator's clock forward to reach job deadlines.
let clockOffsetMs = 0;
// The orchestrator's log: an ignored event is logged with the reason it was ignored.
const logged: RecordedLine[] = [];

beforeAll(async () => {
  harness = await startHarness(servers, iso, {
    name: "orchestrator-exec-test",
    deps: { clock: () => Date.now() + clockOffsetMs, logger: recordingLogger(logged) },
    tapJobs: true,
    events: seen,
  });
  ({ service, clients, bus, tap } = harness);
});

afterAll(() => harness?.stop());

describe("an execution driven by hand", () => {
  const name = "hand-driven";
  let executionId = "";
  let source: Job;
  let build: Job;

  it("dispatches the source job of the initial execution on create", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline(name) });
    source = await tap.next(isJob(name, "Checkout"));
    executionId = source.pipelineExecutionId;
    expect(source.jobId).toBe(`${source.actionExecutionId}:1`);
    expect(source.attempt).toBe(1);
    expect(source.pipelineVersion).toBe(1);
    expect(source.stageName).toBe("Source");
    expect(source.actionTypeId?.provider).toBe("Git");
    expect(source.configuration["RepositoryUrl"]).toBe("file:///tmp/repo.git");
    expect(source.artifactBucket).toBe("sluice-artifacts");
    expect(source.outputArtifacts.map((o) => o.name)).toEqual(["Src"]);
    // No artifact service in this test: the job goes out without grants.
    expect(source.outputs).toEqual([]);

    const state = await clients.viewer.getPipelineState({ name });
    const stage = state.stageStates[0];
    expect(stage?.latestExecution?.pipelineExecutionId).toBe(executionId);
    expect(stage?.latestExecution?.status).toBe("InProgress");
    expect(stage?.actionStates[0]?.latestExecution?.status).toBe("InProgress");
    expect(stage?.actionStates[0]?.latestExecution?.actionExecutionId).toBe(source.actionExecutionId);
    const exec = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId });
    expect(exec.pipelineExecution?.status).toBe("InProgress");
    expect(exec.pipelineExecution?.trigger?.triggerType).toBe("CreatePipeline");
    expect(exec.pipelineExecution?.trigger?.triggerDetail).toBe("ops");
  });

  it("accepts the source result and dispatches the build", async () => {
    await report(bus, source, {
      outputArtifacts: produced(source, "Src"),
      outputVariables: { CommitId: "c0ffee" },
      revision: { revisionId: "c0ffee", revisionSummary: "first commit", branch: "main" },
    });
    build = await tap.next(isJob(name, "Compile", executionId));
    expect(build.stageName).toBe("Build");
    expect(build.commands).toEqual(["make"]);
    expect(build.outputArtifacts.map((o) => [o.name, o.files])).toEqual([["Built", ["out/**"]]]);

    const state = await clients.viewer.getPipelineState({ name });
    const [sourceStage, buildStage] = state.stageStates;
    expect(sourceStage?.latestExecution?.status).toBe("Succeeded");
    expect(sourceStage?.actionStates[0]?.latestExecution?.status).toBe("Succeeded");
    expect(sourceStage?.actionStates[0]?.latestExecution?.lastUpdatedBy).toBe("runner-1");
    expect(sourceStage?.actionStates[0]?.currentRevision?.revisionId).toBe("c0ffee");
    expect(buildStage?.latestExecution?.status).toBe("InProgress");
    expect(buildStage?.actionStates[0]?.latestExecution?.status).toBe("InProgress");

    const exec = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId });
    expect(exec.pipelineExecution?.artifactRevisions.map((r) => [r.name, r.revisionId, r.revisionSummary])).toEqual([["Src", "c0ffee", "first commit"]]);
  });

  it("ignores a result for an attempt it is not waiting for", async () => {
    await report(bus, build, { attempt: 7, status: "Failed", errorDetails: { code: "JobFailed", message: "stale" } });
    // A later, valid result is applied after the stale one (results of one pipeline share a partition).
    await report(bus, build, { outputArtifacts: produced(build, "Built") });
    const ship = await tap.next(isJob(name, "Ship", executionId));
    expect(ship.stageName).toBe("Deploy");
    const state = await clients.viewer.getPipelineState({ name });
    expect(state.stageStates[1]?.actionStates[0]?.latestExecution?.status).toBe("Succeeded");
  });

  it("fails the execution when an action fails and shows the error", async () => {
    const ship = await tap.next(isJob(name, "Ship", executionId));
    await report(bus, ship, { status: "Failed", summary: "", errorDetails: { code: "JobFailed", message: "exit status 3" }, externalExecutionId: "run-9" });
    await expect
      .poll(async () => (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId })).pipelineExecution?.status, { timeout: 10_000 })
      .toBe("Failed");
    const exec = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId });
    expect(exec.pipelineExecution?.statusSummary).toContain("Ship");
    expect(exec.pipelineExecution?.statusSummary).toContain("exit status 3");
    const state = await clients.viewer.getPipelineState({ name });
    const deploy = state.stageStates[2];
    expect(deploy?.latestExecution?.status).toBe("Failed");
    expect(deploy?.actionStates[0]?.latestExecution?.status).toBe("Failed");
    expect(deploy?.actionStates[0]?.latestExecution?.errorDetails).toMatchObject({ code: "JobFailed", message: "exit status 3" });
    expect(deploy?.actionStates[0]?.latestExecution?.externalExecutionId).toBe("run-9");
    // Finished executions move to the history collection, then out of the runtime
    // (with the compaction that follows once the pipeline is quiet).
    await expect.poll(async () => (await service.runtime.read(name))?.executions[executionId], { timeout: 10_000 }).toBeUndefined();
    const archived = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId });
    expect(archived.pipelineExecution?.status).toBe("Failed");
    expect(archived.pipelineExecution?.statusSummary).toContain("exit status 3");
  });

  it("publishes EventBridge-shaped state changes", async () => {
    await expect
      .poll(() => seen.filter((e) => e.executionId === executionId && e.detailType === "CodePipeline Pipeline Execution State Change").map((e) => e.state), { timeout: 10_000 })
      .toEqual(["STARTED", "FAILED"]);
    const actionEvents = seen.filter((e) => e.executionId === executionId && e.detailType === "CodePipeline Action Execution State Change");
    expect(actionEvents.map((e) => `${e.action}:${e.state}`)).toEqual(
      expect.arrayContaining(["Checkout:STARTED", "Checkout:SUCCEEDED", "Compile:STARTED", "Compile:SUCCEEDED", "Ship:STARTED", "Ship:FAILED"]),
    );
    expect(seen.find((e) => e.pipeline === name && e.state === "CREATED")?.declaration?.name).toBe(name);
  });

  it("starts further executions and lists them newest first, paged", async () => {
    const started = await clients.ops.startPipelineExecution({ name });
    const job = await tap.next(isJob(name, "Checkout", started.pipelineExecutionId));
    expect(job.sourceRevision).toBe("");
    const all = await clients.viewer.listPipelineExecutions({ pipelineName: name });
    expect(all.pipelineExecutionSummaries.map((s) => [s.pipelineExecutionId, s.status])).toEqual([
      [started.pipelineExecutionId, "InProgress"],
      [executionId, "Failed"],
    ]);
    expect(all.pipelineExecutionSummaries[0]?.trigger?.triggerType).toBe("StartPipelineExecution");
    expect(all.pipelineExecutionSummaries[1]?.sourceRevisions.map((r) => [r.actionName, r.revisionId])).toEqual([["Checkout", "c0ffee"]]);
    const first = await clients.viewer.listPipelineExecutions({ pipelineName: name, maxResults: 1 });
    expect(first.pipelineExecutionSummaries.map((s) => s.pipelineExecutionId)).toEqual([started.pipelineExecutionId]);
    const second = await clients.viewer.listPipelineExecutions({ pipelineName: name, maxResults: 1, nextToken: first.nextToken });
    expect(second.pipelineExecutionSummaries.map((s) => s.pipelineExecutionId)).toEqual([executionId]);
    expect(second.nextToken).toBe("");
  });
});

describe("source changes", () => {
  it("starts an execution pinned to the changed revision, once per revision", async () => {
    const name = "polled";
    const change = (revisionId: string): MessageInitShape<typeof SourceChangedSchema> => ({
      eventId: `${name}:Checkout:${revisionId}`,
      pipelineName: name,
      sourceActionName: "Checkout",
      revision: { revisionId, revisionSummary: `commit ${revisionId}`, branch: "main" },
      triggerType: "PollForSourceChanges",
      triggerDetail: "poller",
    });
    const announce = (revisionId: string, msgId: string) => bus.publish(bus.subjects.sourceSubject(name), SourceChangedSchema, change(revisionId), { msgId });
    await clients.ops.createPipeline({ pipeline: threeStagePipeline(name) });
    // Let the initial execution leave the (locked) Source stage, so the next one can enter it.
    const initial = await tap.next(isJob(name, "Checkout"));
    await report(bus, initial, { outputArtifacts: produced(initial, "Src"), revision: { revisionId: "aaaa" } });
    await tap.next(isJob(name, "Compile", initial.pipelineExecutionId));

    await announce("beef", "beef-1");
    const pinned = await tap.next((j) => isJob(name, "Checkout")(j) && j.sourceRevision === "beef");
    const exec = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: pinned.pipelineExecutionId });
    expect(exec.pipelineExecution?.trigger).toMatchObject({ triggerType: "PollForSourceChanges", triggerDetail: "poller" });
    await report(bus, pinned, { outputArtifacts: produced(pinned, "Src"), revision: { revisionId: "beef" } });

    // The same revision again (another poller, a webhook) starts nothing; the next one does.
    // Changes of one pipeline share a partition, so "cafe" is applied after the repeat.
    await announce("beef", "beef-2");
    await announce("cafe", "cafe-1");
    await tap.next((j) => isJob(name, "Checkout")(j) && j.sourceRevision === "cafe");
    const list = await clients.viewer.listPipelineExecutions({ pipelineName: name });
    const polled = list.pipelineExecutionSummaries.filter((s) => s.trigger?.triggerType === "PollForSourceChanges");
    expect(polled).toHaveLength(2);
  });
});

describe("pipeline updates", () => {
  it("cancel waiting executions at once and running ones once their actions finish; new ones run the new version", async () => {
    const name = "updated-under-way";
    const status = async (executionId: string) =>
      (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId })).pipelineExecution;
    await clients.ops.createPipeline({ pipeline: threeStagePipeline(name) });
    // E1 inside Build (its Compile job running) …
    const source1 = await tap.next(isJob(name, "Checkout"));
    const e1 = source1.pipelineExecutionId;
    await report(bus, source1, { outputArtifacts: produced(source1, "Src"), revision: { revisionId: "1111" } });
    const compile1 = await tap.next(isJob(name, "Compile", e1));
    // … and E2 waiting in front of it.
    const e2 = (await clients.ops.startPipelineExecution({ name })).pipelineExecutionId;
    const source2 = await tap.next(isJob(name, "Checkout", e2));
    await report(bus, source2, { outputArtifacts: produced(source2, "Src"), revision: { revisionId: "2222" } });
    await expect.poll(async () => (await clients.viewer.getPipelineState({ name })).stageStates[0]?.latestExecution?.status, { timeout: 10_000 }).toBe("Succeeded");

    // Version 2 renames the build action.
    const v2 = threeStagePipeline(name);
    const build = v2.stages?.[1]?.actions?.[0];
    if (build === undefined) throw new Error("threeStagePipeline has no build action");
    build.name = "CompileV2";
    expect((await clients.ops.updatePipeline({ pipeline: v2 })).pipeline?.version).toBe(2);

    // The waiter is cancelled at once; E1 keeps its running action and its stage lock.
    const waiter = await status(e2);
    expect(waiter?.status).toBe("Cancelled");
    expect(waiter?.statusSummary).toContain("version 2");
    expect((await status(e1))?.status).toBe("InProgress");

    // A new execution runs version 2, and waits in front of Build while E1 is still inside.
    const e3 = (await clients.ops.startPipelineExecution({ name })).pipelineExecutionId;
    const source3 = await tap.next(isJob(name, "Checkout", e3));
    expect(source3.pipelineVersion).toBe(2);
    await report(bus, source3, { outputArtifacts: produced(source3, "Src"), revision: { revisionId: "3333" } });
    await expect
      .poll(async () => (await clients.viewer.getPipelineState({ name })).stageStates[0]?.latestExecution?.pipelineExecutionId, { timeout: 10_000 })
      .toBe(e3);
    expect(tap.jobs.some((j) => j.pipelineExecutionId === e3 && j.stageName === "Build")).toBe(false);

    // E1's running action finishes: E1 ends Cancelled and starts nothing more; E3 enters Build.
    await report(bus, compile1, { outputArtifacts: produced(compile1, "Built") });
    const compile3 = await tap.next(isJob(name, "CompileV2", e3));
    expect(compile3.pipelineVersion).toBe(2);
    const cancelled = await status(e1);
    expect(cancelled?.status).toBe("Cancelled");
    expect(cancelled?.statusSummary).toContain("version 2");
    expect(tap.jobs.filter((j) => j.pipelineExecutionId === e1).map((j) => j.actionName)).toEqual(["Checkout", "Compile"]);
    const state = await clients.viewer.getPipelineState({ name });
    expect(state.pipelineVersion).toBe(2);
    expect(state.stageStates[1]?.actionStates.map((a) => a.actionName)).toEqual(["CompileV2"]);
    expect(state.stageStates[1]?.latestExecution).toMatchObject({ pipelineExecutionId: e3, status: "InProgress" });
    await expect
      .poll(() => seen.filter((e) => e.detailType === "CodePipeline Pipeline Execution State Change" && e.executionId === e1).map((e) => e.state), { timeout: 10_000 })
      .toEqual(["STARTED", "CANCELED"]);
  });
});

describe("deadlines", () => {
  it("fails an action whose job outlives its deadline", async () => {
    const name = "timed";
    await clients.ops.createPipeline({ pipeline: threeStagePipeline(name) });
    const source = await tap.next(isJob(name, "Checkout"));
    clockOffsetMs += 2 * 60 * 60 * 1000;
    await expect
      .poll(async () => (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: source.pipelineExecutionId })).pipelineExecution?.status, {
        timeout: 10_000,
      })
      .toBe("Failed");
    const state = await clients.viewer.getPipelineState({ name });
    expect(state.stageStates[0]?.actionStates[0]?.latestExecution?.errorDetails?.code).toBe("JobTimedOut");
    expect(state.stageStates[0]?.actionStates[0]?.latestExecution?.errorDetails?.message).toContain("timed out");
    // The runner's late result is for an action that already ended: ignored.
    await report(bus, source, { outputArtifacts: produced(source, "Src") });
    const ignoredBecause = (): unknown =>
      logged.find((l) => l.msg === "event ignored" && l.fields["pipeline"] === name && l.fields["event"] === "JobCompleted")?.fields["reason"];
    await expect.poll(ignoredBecause, { timeout: 10_000 }).toBe(`execution ${source.pipelineExecutionId} is not in flight`);
    const after = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: source.pipelineExecutionId });
    expect(after.pipelineExecution?.status).toBe("Failed");
  });
});

describe("approvals", () => {
  it("sends manual approvals to the approval queue with a token shown in the pipeline state", async () => {
    const name = "approve-me";
    await clients.ops.createPipeline({ pipeline: approvalPipeline(name) });
    const source = await tap.next(isJob(name, "Checkout"));
    await report(bus, source, { outputArtifacts: produced(source, "Src"), revision: { revisionId: "1234" } });
    const approval = await tap.next(isJob(name, "Approve"));
    expect(approval.actionTypeId?.category).toBe("Approval");
    expect(tap.subjects.get(approval.jobId)).toBe(`${iso.prefix}.sluice.jobs.default.Approval.Manual`);
    expect(tap.subjects.get(source.jobId)).toBe(`${iso.prefix}.sluice.jobs.default.Source.Git`);
    expect(approval.approvalToken).toMatch(/^[0-9a-f-]{36}$/);
    const state = await clients.viewer.getPipelineState({ name });
    expect(state.stageStates[1]?.actionStates[0]?.latestExecution?.token).toBe(approval.approvalToken);
    await report(bus, approval, { summary: "looks good", updatedBy: "alice" });
    await expect
      .poll(async () => (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: approval.pipelineExecutionId })).pipelineExecution?.status, {
        timeout: 10_000,
      })
      .toBe("Succeeded");
  });
});
