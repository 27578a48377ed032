// Stage conditions, OverrideStageCondition and RollbackStage through the API
// against real servers. Jobs (rule jobs included) are answered by hand, as a
// runner would.
import { afterAll, beforeAll, describe, expect, it, inject, vi } from "vitest";
import type {} from "@sluice/testkit";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Bus } from "@sluice/bus";
import { GrpcStatus } from "@sluice/grpc";
import type { CancelJob, Job, PipelineDeclarationSchema } from "@sluice/proto";
import { failure, isJob, isolation, produced, report, startHarness, statusOf, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap, TappedHarness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("cond");

let harness: TappedHarness | undefined;
let clients: Clients;
let bus: Bus;
let tap: JobTap;
const cancels: CancelJob[] = [];

beforeAll(async () => {
  harness = await startHarness(servers, iso, { name: "orchestrator-conditions-test", tapJobs: true, cancels });
  ({ clients, bus, tap } = harness);
});

afterAll(() => harness?.stop());

/** Answers Source and Build of an execution; returns the next job of `then` (an action or a rule). */
async function throughBuild(name: string, executionId: string, then: string): Promise<Job> {
  const source = await tap.next(isJob(name, "Checkout", executionId));
  await report(bus, source, { outputArtifacts: produced(source, "Src"), revision: { revisionId: `c0ffee${executionId.slice(0, 4)}` } });
  const build = await tap.next(isJob(name, "Compile", executionId));
  await report(bus, build, { outputArtifacts: produced(build, "Built") });
  return tap.next(isJob(name, then, executionId));
}

type Declaration = MessageInitShape<typeof PipelineDeclarationSchema>;

/** threeStagePipeline with `deploy` merged into its Deploy stage (V2). */
function pipelineWith(name: string, deploy: Partial<NonNullable<Declaration["stages"]>[number]>): Declaration {
  const decl = threeStagePipeline(name);
  decl.pipelineType = "V2";
  const stage = decl.stages?.find((s) => s.name === "Deploy");
  if (stage !== undefined) Object.assign(stage, deploy);
  return decl;
}

async function create(decl: Declaration): Promise<string> {
  await clients.ops.createPipeline({ pipeline: decl });
  return (await tap.next(isJob(decl.name ?? "", "Checkout"))).pipelineExecutionId;
}

const commandsRule = (name: string) => ({ name, ruleTypeId: { category: "Rule", owner: "AWS", provider: "Commands", version: "1" }, commands: ["./check.sh"] });

describe("stage conditions", () => {
  it("CreatePipeline names an unsupported rule provider and a wrong result", async () => {
    const err = await failure(
      clients.ops.createPipeline({
        pipeline: pipelineWith("bad-conditions", {
          beforeEntry: { conditions: [{ result: "ROLLBACK", rules: [{ name: "Alarm", ruleTypeId: { category: "Rule", owner: "AWS", provider: "CloudWatchAlarm", version: "1" } }] }] },
        }),
      }),
    );
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.violations.map((v) => v.field)).toEqual([
      "pipeline.stages[2].beforeEntry.conditions[0].result",
      "pipeline.stages[2].beforeEntry.conditions[0].rules[0].ruleTypeId.provider",
    ]);
  });

  it("a Commands rule runs as a job on Rule.Commands; GetPipelineState shows the check and its rules", async () => {
    const name = "entry-gate";
    const first = await create(pipelineWith(name, { beforeEntry: { conditions: [{ result: "FAIL", rules: [commandsRule("Window")] }] } }));
    const gate = await throughBuild(name, first, "Window");
    expect(tap.subjects.get(gate.jobId)).toBe(bus.subjects.jobSubject("default", "Rule", "Commands"));
    expect(gate.actionTypeId).toMatchObject({ category: "Rule", provider: "Commands" });
    expect(gate.inputs).toEqual([]);
    const state = await clients.viewer.getPipelineState({ name });
    const deploy = state.stageStates.find((s) => s.stageName === "Deploy");
    expect(deploy?.beforeEntryConditionState?.latestExecution?.status).toBe("InProgress");
    expect(deploy?.beforeEntryConditionState?.conditionStates[0]?.ruleStates.map((r) => [r.ruleName, r.latestExecution?.status])).toEqual([["Window", "InProgress"]]);
    await report(bus, gate, { status: "Failed", summary: "outside the window", errorDetails: { code: "JobFailed", message: "outside the window" } });
    await expect.poll(() => statusOf(clients, name, first), { timeout: 10_000 }).toBe("Failed");
    const failed = (await clients.viewer.getPipelineState({ name })).stageStates.find((s) => s.stageName === "Deploy");
    expect(failed?.latestExecution?.status).toBe("Failed");
    expect(failed?.beforeEntryConditionState?.latestExecution).toMatchObject({ status: "Failed", summary: 'Rule "Window" failed: outside the window' });
  });
});

describe("OverrideStageCondition", () => {
  const name = "override";
  let executionId = "";
  let gate: Job;

  beforeAll(async () => {
    executionId = await create(pipelineWith(name, { beforeEntry: { conditions: [{ result: "FAIL", rules: [commandsRule("Window")] }] } }));
    gate = await throughBuild(name, executionId, "Window");
  });

  it("checks the request, naming the field; viewers may not override", async () => {
    const bad = await failure(clients.ops.overrideStageCondition({ pipelineName: name, stageName: "Deploy", pipelineExecutionId: executionId, conditionType: "ON_FAILURE" }));
    expect(bad.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(bad.violations.map((v) => v.field)).toEqual(["conditionType"]);
    const stage = await failure(clients.ops.overrideStageCondition({ pipelineName: name, stageName: "Nope", pipelineExecutionId: executionId, conditionType: "BEFORE_ENTRY" }));
    expect(stage.errorCode).toBe("StageNotFoundException");
    const denied = await failure(clients.viewer.overrideStageCondition({ pipelineName: name, stageName: "Deploy", pipelineExecutionId: executionId, conditionType: "BEFORE_ENTRY" }));
    expect(denied.code).toBe(GrpcStatus.PERMISSION_DENIED);
    const none = await failure(clients.ops.overrideStageCondition({ pipelineName: name, stageName: "Deploy", pipelineExecutionId: executionId, conditionType: "ON_SUCCESS" }));
    expect(none.errorCode).toBe("ConditionNotOverridableException");
  });

  it("ends the running check: the rule's job is cancelled and the stage's actions run", async () => {
    await clients.ops.overrideStageCondition({ pipelineName: name, stageName: "Deploy", pipelineExecutionId: executionId, conditionType: "BEFORE_ENTRY" });
    const ship = await tap.next(isJob(name, "Ship", executionId));
    await expect.poll(() => cancels.some((c) => c.jobId === gate.jobId), { timeout: 10_000 }).toBe(true);
    const deploy = (await clients.viewer.getPipelineState({ name })).stageStates.find((s) => s.stageName === "Deploy");
    expect(deploy?.beforeEntryConditionState?.latestExecution).toMatchObject({ status: "Overridden", summary: "Overridden by ops" });
    expect(deploy?.beforeEntryConditionState?.conditionStates[0]?.ruleStates[0]?.latestExecution?.status).toBe("Abandoned");
    await report(bus, ship);
    await expect.poll(() => statusOf(clients, name, executionId), { timeout: 10_000 }).toBe("Succeeded");
    const late = await failure(clients.ops.overrideStageCondition({ pipelineName: name, stageName: "Deploy", pipelineExecutionId: executionId, conditionType: "BEFORE_ENTRY" }));
    expect(late.errorCode).toBe("ConditionNotOverridableException");
  });
});

describe("RollbackStage", () => {
  const name = "rollback";
  let good = "";
  let bad = "";

  /** Runs an execution through Deploy with the given outcome of Ship. */
  async function deploy(executionId: string, ok: boolean): Promise<void> {
    const ship = await throughBuild(name, executionId, "Ship");
    if (ok) await report(bus, ship);
    else await report(bus, ship, { status: "Failed", summary: "deploy broke", errorDetails: { code: "JobFailed", message: "deploy broke" } });
  }

  beforeAll(async () => {
    good = await create(pipelineWith(name, { onFailure: { result: "ROLLBACK" } }));
    await deploy(good, true);
    await vi.waitFor(
      async () => {
        if ((await statusOf(clients, name, good)) !== "Succeeded") throw new Error(`${good} has not succeeded yet`);
      },
      { timeout: 10_000, interval: 50 },
    );
  });

  it("onFailure ROLLBACK: a failed deploy starts a ROLLBACK execution (AutomatedRollback) with the last good execution's inputs", async () => {
    bad = (await clients.ops.startPipelineExecution({ name })).pipelineExecutionId;
    await deploy(bad, false);
    await expect.poll(() => statusOf(clients, name, bad), { timeout: 10_000 }).toBe("Failed");
    const list = await clients.viewer.listPipelineExecutions({ pipelineName: name });
    const rollback = list.pipelineExecutionSummaries.find((s) => s.executionType === "ROLLBACK");
    expect(rollback).toMatchObject({ trigger: { triggerType: "AutomatedRollback", triggerDetail: bad }, rollbackMetadata: { rollbackTargetPipelineExecutionId: good } });
    const ship = await tap.next(isJob(name, "Ship", rollback?.pipelineExecutionId));
    const goodBuild = tap.jobs.find((j) => j.actionName === "Compile" && j.pipelineExecutionId === good);
    expect(ship.pipelineExecutionId).not.toBe(good);
    expect(ship.stageName).toBe("Deploy");
    // The rollback's job takes the good execution's build output, not the failed one's.
    const details = await clients.viewer.listActionExecutions({ pipelineName: name, filter: { pipelineExecutionId: ship.pipelineExecutionId } });
    expect(details.actionExecutionDetails[0]?.input?.inputArtifacts.map((a) => a.s3location?.key)).toEqual([`${name}/${goodBuild?.actionExecutionId ?? "?"}/Built.zip`]);
    await report(bus, ship);
    await expect.poll(() => statusOf(clients, name, rollback?.pipelineExecutionId ?? ""), { timeout: 10_000 }).toBe("Succeeded");
    const exec = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: rollback?.pipelineExecutionId ?? "" });
    expect(exec.pipelineExecution).toMatchObject({ executionType: "ROLLBACK", statusSummary: `Rolled back stage "Deploy" to pipeline execution ${good}` });
  });

  it("RollbackStage starts a ManualRollback execution of the stage and returns its id", async () => {
    const { pipelineExecutionId } = await clients.ops.rollbackStage({ pipelineName: name, stageName: "Deploy", targetPipelineExecutionId: good });
    expect(pipelineExecutionId).not.toBe(good);
    const ship = await tap.next(isJob(name, "Ship", pipelineExecutionId));
    const exec = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId });
    expect(exec.pipelineExecution).toMatchObject({
      executionType: "ROLLBACK",
      rollbackMetadata: { rollbackTargetPipelineExecutionId: good },
      trigger: { triggerType: "ManualRollback", triggerDetail: "ops" },
      status: "InProgress",
    });
    const state = await clients.viewer.getPipelineState({ name });
    expect(state.stageStates.find((s) => s.stageName === "Deploy")?.latestExecution).toEqual(expect.objectContaining({ pipelineExecutionId, type: "ROLLBACK" }));
    // The stage runs: a second rollback conflicts.
    const busy = await failure(clients.ops.rollbackStage({ pipelineName: name, stageName: "Deploy", targetPipelineExecutionId: good }));
    expect(busy.errorCode).toBe("ConflictException");
    await report(bus, ship);
    await expect.poll(() => statusOf(clients, name, pipelineExecutionId), { timeout: 10_000 }).toBe("Succeeded");
  });

  it("names what is wrong: the field, an unknown target, the source stage, a failed target, a rollback as target", async () => {
    const missing = await failure(clients.ops.rollbackStage({ pipelineName: name, stageName: "", targetPipelineExecutionId: good }));
    expect(missing.violations.map((v) => v.field)).toEqual(["stageName"]);
    const unknown = await failure(clients.ops.rollbackStage({ pipelineName: name, stageName: "Deploy", targetPipelineExecutionId: "00000000-0000-4000-8000-000000000000" }));
    expect(unknown.errorCode).toBe("PipelineExecutionNotFoundException");
    expect(unknown.violations.map((v) => v.field)).toEqual(["targetPipelineExecutionId"]);
    const source = await failure(clients.ops.rollbackStage({ pipelineName: name, stageName: "Source", targetPipelineExecutionId: good }));
    expect(source.errorCode).toBe("UnableToRollbackStageException");
    const failed = await failure(clients.ops.rollbackStage({ pipelineName: name, stageName: "Deploy", targetPipelineExecutionId: bad }));
    expect(failed.errorCode).toBe("UnableToRollbackStageException");
    const list = await clients.viewer.listPipelineExecutions({ pipelineName: name });
    const earlier = list.pipelineExecutionSummaries.find((s) => s.executionType === "ROLLBACK")?.pipelineExecutionId ?? "";
    const nested = await failure(clients.ops.rollbackStage({ pipelineName: name, stageName: "Deploy", targetPipelineExecutionId: earlier }));
    expect(nested.errorCode).toBe("UnableToRollbackStageException");
  });

  it("PipelineExecutionOutdatedException once the pipeline changed", async () => {
    const current = await clients.viewer.getPipeline({ name });
    await clients.ops.updatePipeline({ pipeline: current.pipeline });
    const outdated = await failure(clients.ops.rollbackStage({ pipelineName: name, stageName: "Deploy", targetPipelineExecutionId: good }));
    expect(outdated.errorCode).toBe("PipelineExecutionOutdatedException");
  });
});
