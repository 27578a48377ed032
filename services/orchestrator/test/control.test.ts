// Execution control through the API against real servers: start options,
// stop (both ways), retry (stage and action), transitions, history listings.
// Jobs are answered by hand, as a runner would.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Bus } from "@sluice/bus";
import type { CancelJob, Job, PipelineDeclarationSchema } from "@sluice/proto";
import { failure, isJob, isolation, produced, report, startHarness, statusOf, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap, TappedHarness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("ctl");

let harness: TappedHarness | undefined;
let clients: Clients;
let bus: Bus;
let tap: JobTap;
const cancels: CancelJob[] = [];

beforeAll(async () => {
  harness = await startHarness(servers, iso, { name: "orchestrator-control-test", tapJobs: true, cancels });
  ({ clients, bus, tap } = harness);
});

afterAll(() => harness?.stop());

/** Answers the source job of an execution and returns the build job it leads to. */
async function throughSource(name: string, executionId: string): Promise<Job> {
  const source = await tap.next(isJob(name, "Checkout", executionId));
  await report(bus, source, { outputArtifacts: produced(source, "Src"), revision: { revisionId: "c0ffee", revisionSummary: "a commit" } });
  return tap.next(isJob(name, "Compile", executionId));
}

/** Runs an execution to Succeeded. */
async function runToSuccess(name: string, executionId: string): Promise<void> {
  const build = await throughSource(name, executionId);
  await report(bus, build, { outputArtifacts: produced(build, "Built") });
  await report(bus, await tap.next(isJob(name, "Ship", executionId)));
  await expect.poll(() => statusOf(clients, name, executionId), { timeout: 10_000 }).toBe("Succeeded");
}

/** The execution CreatePipeline started. */
async function create(pipeline: MessageInitShape<typeof PipelineDeclarationSchema>): Promise<string> {
  await clients.ops.createPipeline({ pipeline });
  const name = pipeline.name ?? "";
  return (await tap.next(isJob(name, "Checkout"))).pipelineExecutionId;
}

describe("StartPipelineExecution options", () => {
  const name = "start-options";
  let first = "";
  let pinned = "";

  it("starts with pipeline variables, a pinned commit and an idempotency token", async () => {
    const decl = threeStagePipeline(name);
    decl.pipelineType = "V2";
    decl.variables = [
      { name: "Env", defaultValue: "dev", description: "where to deploy" },
      { name: "Region", defaultValue: "eu" },
    ];
    first = await create(decl);
    await runToSuccess(name, first);

    const request = {
      name,
      variables: [{ name: "Env", value: "prod" }],
      clientRequestToken: "release-42",
      sourceRevisions: [{ actionName: "Checkout", revisionType: "COMMIT_ID", revisionValue: "abc1234" }],
    };
    pinned = (await clients.ops.startPipelineExecution(request)).pipelineExecutionId;
    expect(pinned).not.toBe(first);
    // The same token again: the same execution, and no second one.
    expect((await clients.ops.startPipelineExecution(request)).pipelineExecutionId).toBe(pinned);
    const list = await clients.viewer.listPipelineExecutions({ pipelineName: name });
    expect(list.pipelineExecutionSummaries.map((s) => s.pipelineExecutionId)).toEqual([pinned, first]);

    const source = await tap.next(isJob(name, "Checkout", pinned));
    expect(source.sourceRevision).toBe("abc1234");
    await report(bus, source, { outputArtifacts: produced(source, "Src"), revision: { revisionId: "abc1234" } });
    await tap.next(isJob(name, "Compile", pinned));
    const exec = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: pinned });
    expect(exec.pipelineExecution?.variables.map((v) => [v.name, v.resolvedValue])).toEqual([
      ["Env", "prod"],
      ["Region", "eu"],
    ]);
  });

  it("names every bad start option", async () => {
    const err = await failure(
      clients.ops.startPipelineExecution({
        name,
        clientRequestToken: "not a token!",
        variables: [{ name: "bad name", value: "" }],
        sourceRevisions: [
          { actionName: "Checkout", revisionType: "IMAGE_DIGEST", revisionValue: "sha256:00" },
          { actionName: "Checkout", revisionType: "COMMIT_ID", revisionValue: "--upload-pack=evil" },
          { actionName: "Checkout", revisionType: "TAG", revisionValue: "v1" },
        ],
      }),
    );
    expect(err.errorCode).toBe("ValidationException");
    expect(err.violations.map((v) => v.field).sort()).toEqual(
      [
        "clientRequestToken",
        "variables[0].name",
        "variables[0].value",
        "sourceRevisions[0].revisionType",
        "sourceRevisions[1].revisionValue",
        "sourceRevisions[2].revisionType",
      ].sort(),
    );
    expect(err.violations.find((v) => v.field === "sourceRevisions[0].revisionType")?.message).toContain("COMMIT_ID");
  });

  it("refuses variables the pipeline does not declare, and pins of non-source actions", async () => {
    const undeclared = await failure(clients.ops.startPipelineExecution({ name, variables: [{ name: "Nope", value: "x" }] }));
    expect(undeclared.errorCode).toBe("ValidationException");
    expect(undeclared.violations.map((v) => v.field)).toEqual(["variables[0].name"]);
    const notSource = await failure(
      clients.ops.startPipelineExecution({ name, sourceRevisions: [{ actionName: "Compile", revisionType: "COMMIT_ID", revisionValue: "abc1234" }] }),
    );
    expect(notSource.violations.map((v) => v.field)).toEqual(["sourceRevisions[0].actionName"]);
  });
});

describe("StopPipelineExecution", () => {
  const name = "stopper";
  let executionId = "";
  let build: Job;

  it("stop-and-wait: Stopping while the running action finishes, then Stopped; nothing new starts", async () => {
    executionId = await create(threeStagePipeline(name));
    build = await throughSource(name, executionId);
    const res = await clients.ops.stopPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId, reason: "maintenance window" });
    expect(res.pipelineExecutionId).toBe(executionId);
    expect(await statusOf(clients, name, executionId)).toBe("Stopping");

    const again = await failure(clients.ops.stopPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId }));
    expect(again.errorCode).toBe("DuplicatedStopRequestException");

    await report(bus, build, { outputArtifacts: produced(build, "Built") });
    await expect.poll(() => statusOf(clients, name, executionId), { timeout: 10_000 }).toBe("Stopped");
    const summary = (await clients.viewer.listPipelineExecutions({ pipelineName: name })).pipelineExecutionSummaries.find((s) => s.pipelineExecutionId === executionId);
    expect(summary?.stopTrigger?.reason).toBe("maintenance window");
    expect(tap.jobs.some(isJob(name, "Ship", executionId))).toBe(false);
    const state = await clients.viewer.getPipelineState({ name });
    expect(state.stageStates[1]?.latestExecution?.status).toBe("Stopped");
  });

  it("refuses to stop an execution that is not in progress", async () => {
    const err = await failure(clients.ops.stopPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId, abandon: true }));
    expect(err.errorCode).toBe("PipelineExecutionNotStoppableException");
  });

  it("abandon: the running action is Abandoned at once and its job cancelled on the runners", async () => {
    const second = (await clients.ops.startPipelineExecution({ name })).pipelineExecutionId;
    const running = await throughSource(name, second);
    await clients.ops.stopPipelineExecution({ pipelineName: name, pipelineExecutionId: second, abandon: true, reason: "bad commit" });
    expect(await statusOf(clients, name, second)).toBe("Stopped");
    const state = await clients.viewer.getPipelineState({ name });
    expect(state.stageStates[1]?.actionStates[0]?.latestExecution?.status).toBe("Abandoned");
    await expect.poll(() => cancels.find((c) => c.jobId === running.jobId), { timeout: 10_000 }).toMatchObject({
      actionExecutionId: running.actionExecutionId,
      pipelineName: name,
    });
    // The runner's late answer for the abandoned run changes nothing.
    await report(bus, running, { outputArtifacts: produced(running, "Built") });
    await expect.poll(() => statusOf(clients, name, second)).toBe("Stopped");
  });

  it("validates the request, naming the fields", async () => {
    const err = await failure(clients.ops.stopPipelineExecution({ pipelineName: "bad name!", pipelineExecutionId: "nope", reason: "x".repeat(201) }));
    expect(err.errorCode).toBe("ValidationException");
    expect(err.violations.map((v) => v.field)).toEqual(["pipelineName", "pipelineExecutionId", "reason"]);
    const missing = await failure(clients.ops.stopPipelineExecution({ pipelineName: "no-such-pipeline", pipelineExecutionId: randomUUID() }));
    expect(missing.errorCode).toBe("PipelineNotFoundException");
    const denied = await failure(clients.viewer.stopPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId }));
    expect(denied.errorCode).toBe("AccessDeniedException");
  });
});

describe("RetryStageExecution and RetryActionExecution", () => {
  const name = "retrier";
  let executionId = "";
  let failedBuild: Job;

  it("retries the failed actions of a failed stage; the same execution resumes and continues", async () => {
    executionId = await create(threeStagePipeline(name));
    failedBuild = await throughSource(name, executionId);
    await report(bus, failedBuild, { status: "Failed", summary: "", errorDetails: { code: "JobFailed", message: "exit status 2" } });
    await expect.poll(() => statusOf(clients, name, executionId), { timeout: 10_000 }).toBe("Failed");

    const res = await clients.ops.retryStageExecution({ pipelineName: name, stageName: "Build", pipelineExecutionId: executionId, retryMode: "FAILED_ACTIONS" });
    expect(res.pipelineExecutionId).toBe(executionId);
    const rerun = await tap.next((j) => isJob(name, "Compile", executionId)(j) && j.jobId !== failedBuild.jobId);
    expect(await statusOf(clients, name, executionId)).toBe("InProgress");
    const state = await clients.viewer.getPipelineState({ name });
    expect(state.stageStates[1]?.retryStageMetadata?.manualStageRetryAttempt).toBe(1);
    await report(bus, rerun, { outputArtifacts: produced(rerun, "Built") });
    const ship = await tap.next(isJob(name, "Ship", executionId));
    await report(bus, ship, { status: "Failed", summary: "", errorDetails: { code: "JobFailed", message: "deploy refused" } });
    await expect.poll(() => statusOf(clients, name, executionId), { timeout: 10_000 }).toBe("Failed");
  });

  it("retries one action (Sluice extension) and the execution succeeds", async () => {
    const firstShip = tap.jobs.find(isJob(name, "Ship", executionId));
    const res = await clients.ops.retryActionExecution({ pipelineName: name, stageName: "Deploy", actionName: "Ship", pipelineExecutionId: executionId });
    expect(res.pipelineExecutionId).toBe(executionId);
    const ship = await tap.next((j) => isJob(name, "Ship", executionId)(j) && j.jobId !== firstShip?.jobId);
    await report(bus, ship);
    await expect.poll(() => statusOf(clients, name, executionId), { timeout: 10_000 }).toBe("Succeeded");
  });

  it("answers AWS's errors", async () => {
    const stage = { pipelineName: name, pipelineExecutionId: executionId, retryMode: "FAILED_ACTIONS" };
    expect((await failure(clients.ops.retryStageExecution({ ...stage, stageName: "Nope" }))).errorCode).toBe("StageNotFoundException");
    expect((await failure(clients.ops.retryStageExecution({ ...stage, stageName: "Build" }))).errorCode).toBe("StageNotRetryableException");
    expect((await failure(clients.ops.retryStageExecution({ ...stage, stageName: "Build", pipelineExecutionId: randomUUID() }))).errorCode).toBe(
      "NotLatestPipelineExecutionException",
    );
    const action = { pipelineName: name, pipelineExecutionId: executionId, stageName: "Deploy" };
    expect((await failure(clients.ops.retryActionExecution({ ...action, actionName: "Nope" }))).errorCode).toBe("ActionNotFoundException");
    const bad = await failure(clients.ops.retryStageExecution({ ...stage, stageName: "Build", retryMode: "SOMETIMES" }));
    expect(bad.errorCode).toBe("ValidationException");
    expect(bad.violations).toEqual([{ field: "retryMode", message: "must be one of FAILED_ACTIONS, ALL_ACTIONS" }]);
    const denied = await failure(clients.viewer.retryStageExecution({ ...stage, stageName: "Build" }));
    expect(denied.errorCode).toBe("AccessDeniedException");
  });

  it("lists every attempt of every action with inputs, outputs and errors", async () => {
    const all = await clients.viewer.listActionExecutions({ pipelineName: name, filter: { pipelineExecutionId: executionId } });
    const rows = all.actionExecutionDetails.map((d) => [d.stageName, d.actionName, d.status]);
    // Newest first; both attempts of Compile and of Ship are there.
    expect(rows).toEqual([
      ["Deploy", "Ship", "Succeeded"],
      ["Deploy", "Ship", "Failed"],
      ["Build", "Compile", "Succeeded"],
      ["Build", "Compile", "Failed"],
      ["Source", "Checkout", "Succeeded"],
    ]);
    const failed = all.actionExecutionDetails[3];
    expect(failed?.actionExecutionId).toBe(failedBuild.actionExecutionId);
    expect(failed?.output?.executionResult?.errorDetails).toMatchObject({ code: "JobFailed", message: "exit status 2" });
    const built = all.actionExecutionDetails[2];
    expect(built?.input?.actionTypeId?.provider).toBe("Commands");
    expect(built?.input?.inputArtifacts.map((a) => [a.name, a.s3location?.bucket])).toEqual([["Src", "sluice-artifacts"]]);
    expect(built?.output?.outputArtifacts.map((a) => a.name)).toEqual(["Built"]);
    expect(built?.pipelineVersion).toBe(1);
    const checkout = all.actionExecutionDetails[4];
    expect(checkout?.input?.configuration["RepositoryUrl"]).toBe("file:///tmp/repo.git");
    expect(checkout?.input?.resolvedConfiguration["RepositoryUrl"]).toBe("file:///tmp/repo.git");

    const latest = await clients.viewer.listActionExecutions({
      pipelineName: name,
      filter: { latestInPipelineExecution: { pipelineExecutionId: executionId, startTimeRange: "Latest" } },
    });
    expect(latest.actionExecutionDetails.map((d) => d.actionName)).toEqual(["Ship", "Compile", "Checkout"]);

    // Paging one at a time walks the same list without repeats.
    const paged: string[] = [];
    let nextToken = "";
    do {
      const page = await clients.viewer.listActionExecutions({ pipelineName: name, maxResults: 1, nextToken });
      paged.push(...page.actionExecutionDetails.map((d) => d.actionExecutionId));
      nextToken = page.nextToken;
    } while (nextToken !== "");
    expect(paged).toEqual(all.actionExecutionDetails.map((d) => d.actionExecutionId));
  });

  it("validates ListActionExecutions", async () => {
    const bad = await failure(
      clients.viewer.listActionExecutions({
        pipelineName: name,
        maxResults: 0,
        filter: { pipelineExecutionId: "x", latestInPipelineExecution: { pipelineExecutionId: executionId, startTimeRange: "Sometimes" } },
      }),
    );
    expect(bad.violations.map((v) => v.field)).toEqual(["maxResults", "filter.pipelineExecutionId", "filter.latestInPipelineExecution.startTimeRange", "filter"]);
    expect((await failure(clients.viewer.listActionExecutions({ pipelineName: name, filter: { pipelineExecutionId: randomUUID() } }))).errorCode).toBe(
      "PipelineExecutionNotFoundException",
    );
    expect((await failure(clients.viewer.listActionExecutions({ pipelineName: name, nextToken: "garbage" }))).errorCode).toBe("InvalidNextTokenException");
  });

  it("filters ListPipelineExecutions by a stage the execution succeeded in, paged", async () => {
    const second = (await clients.ops.startPipelineExecution({ name })).pipelineExecutionId;
    const build = await throughSource(name, second);
    await report(bus, build, { status: "Failed", errorDetails: { code: "JobFailed", message: "broken" } });
    await expect.poll(() => statusOf(clients, name, second), { timeout: 10_000 }).toBe("Failed");

    const inSource = await clients.viewer.listPipelineExecutions({ pipelineName: name, filter: { succeededInStage: { stageName: "Source" } } });
    expect(inSource.pipelineExecutionSummaries.map((s) => s.pipelineExecutionId)).toEqual([second, executionId]);
    const inDeploy = await clients.viewer.listPipelineExecutions({ pipelineName: name, filter: { succeededInStage: { stageName: "Deploy" } } });
    expect(inDeploy.pipelineExecutionSummaries.map((s) => s.pipelineExecutionId)).toEqual([executionId]);
    const page1 = await clients.viewer.listPipelineExecutions({ pipelineName: name, maxResults: 1, filter: { succeededInStage: { stageName: "Source" } } });
    expect(page1.pipelineExecutionSummaries.map((s) => s.pipelineExecutionId)).toEqual([second]);
    const page2 = await clients.viewer.listPipelineExecutions({ pipelineName: name, maxResults: 1, nextToken: page1.nextToken, filter: { succeededInStage: { stageName: "Source" } } });
    expect(page2.pipelineExecutionSummaries.map((s) => s.pipelineExecutionId)).toEqual([executionId]);
    expect(page2.nextToken).toBe("");
    const unknown = await failure(clients.viewer.listPipelineExecutions({ pipelineName: name, filter: { succeededInStage: { stageName: "Nope" } } }));
    expect(unknown.errorCode).toBe("StageNotFoundException");
    expect(unknown.violations.map((v) => v.field)).toEqual(["filter.succeededInStage.stageName"]);
  });

  it("retries only on the current pipeline version; GetPipeline(version) still reads the old one", async () => {
    const failed = (await clients.viewer.listPipelineExecutions({ pipelineName: name, maxResults: 1 })).pipelineExecutionSummaries[0];
    expect(failed?.status).toBe("Failed");
    const updated = await clients.ops.updatePipeline({ pipeline: threeStagePipeline(name) });
    expect(updated.pipeline?.version).toBe(2);
    const err = await failure(
      clients.ops.retryStageExecution({ pipelineName: name, stageName: "Build", pipelineExecutionId: failed?.pipelineExecutionId ?? "", retryMode: "FAILED_ACTIONS" }),
    );
    expect(err.errorCode).toBe("StageNotRetryableException");
    expect((await clients.viewer.getPipeline({ name, version: 1 })).pipeline?.version).toBe(1);
    expect((await clients.viewer.getPipeline({ name })).pipeline?.version).toBe(2);
  });
});

describe("Disable/EnableStageTransition", () => {
  const name = "gated";
  let executionId = "";

  it("holds executions in front of a disabled stage and lets the waiter in when enabled", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline(name) });
    await clients.ops.disableStageTransition({ pipelineName: name, stageName: "Build", transitionType: "Inbound", reason: "Release freeze (until Monday)" });
    const source = await tap.next(isJob(name, "Checkout"));
    executionId = source.pipelineExecutionId;
    await report(bus, source, { outputArtifacts: produced(source, "Src"), revision: { revisionId: "c0ffee" } });
    await expect.poll(async () => (await clients.viewer.getPipelineState({ name })).stageStates[1]?.inboundExecution?.pipelineExecutionId, { timeout: 10_000 }).toBe(executionId);
    const state = await clients.viewer.getPipelineState({ name });
    expect(state.stageStates[1]?.inboundTransitionState).toMatchObject({ enabled: false, lastChangedBy: "ops", disabledReason: "Release freeze (until Monday)" });
    // The decision that made it wait is the one that would have dispatched the build.
    expect(tap.jobs.some(isJob(name, "Compile", executionId))).toBe(false);

    await clients.ops.enableStageTransition({ pipelineName: name, stageName: "Build", transitionType: "Inbound" });
    const build = await tap.next(isJob(name, "Compile", executionId));
    expect(build.pipelineExecutionId).toBe(executionId);
    expect((await clients.viewer.getPipelineState({ name })).stageStates[1]?.inboundTransitionState?.enabled).toBe(true);
  });

  it("answers errors naming the field", async () => {
    const outbound = await failure(clients.ops.disableStageTransition({ pipelineName: name, stageName: "Build", transitionType: "Outbound", reason: "x" }));
    expect(outbound.errorCode).toBe("ValidationException");
    expect(outbound.violations.map((v) => v.field)).toEqual(["transitionType"]);
    expect(outbound.violations[0]?.message).toContain("only Inbound");
    const reason = await failure(clients.ops.disableStageTransition({ pipelineName: name, stageName: "Build", transitionType: "Inbound", reason: "no #hashtags" }));
    expect(reason.violations.map((v) => v.field)).toEqual(["reason"]);
    const noType = await failure(clients.ops.enableStageTransition({ pipelineName: name, stageName: "Build", transitionType: "" }));
    expect(noType.violations).toEqual([{ field: "transitionType", message: "is required" }]);
    const stage = await failure(clients.ops.enableStageTransition({ pipelineName: name, stageName: "Nope", transitionType: "Inbound" }));
    expect(stage.errorCode).toBe("StageNotFoundException");
    expect(stage.violations.map((v) => v.field)).toEqual(["stageName"]);
    const denied = await failure(clients.viewer.enableStageTransition({ pipelineName: name, stageName: "Build", transitionType: "Inbound" }));
    expect(denied.errorCode).toBe("AccessDeniedException");
  });
});
