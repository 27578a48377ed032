// Example tests of the execution rules, one `describe` per rule:
// modes, transitions, retry, stop, timeouts, variables,
// start options, state-change events and the read views.

import { describe, expect, it } from "vitest";
import { MAX_PARALLEL_EXECUTIONS, MAX_QUEUED_EXECUTIONS, MAX_REQUEST_TOKENS, TIMEOUT_GRACE_MS } from "./decide.js";
import { actionSpec, approvalSpec, jobsOf, pipelineSpec, Sim, sourceSpec } from "./testing.js";
import type { ExecutionMode, ExecutionEvent, PipelineSpec } from "./types.js";
import { actionExecutionDetails, executionSummaryView, executionView, pipelineStateView } from "./views.js";

/** Source → Build (Compile and Lint in parallel) → Deploy. */
const pipeline = (mode: ExecutionMode = "SUPERSEDED"): PipelineSpec =>
  pipelineSpec(
    [
      ["Source", [sourceSpec("Src", "SrcOut", { namespace: "SourceVariables" })]],
      [
        "Build",
        [
          actionSpec("Compile", { inputArtifacts: ["SrcOut"], outputArtifacts: [{ name: "BuildOut", files: [] }], configuration: { Run: "#{codepipeline.PipelineExecutionId}" } }),
          actionSpec("Lint", { inputArtifacts: ["SrcOut"] }),
        ],
      ],
      ["Deploy", [actionSpec("Ship", { category: "Deploy", provider: "ObjectStore", builtIn: "ObjectStore", inputArtifacts: ["BuildOut"] })]],
    ],
    "demo",
    mode,
  );

/** Runs an execution's Source stage. */
function throughSource(sim: Sim, id: string): void {
  sim.succeed("Src", id);
}

/** Runs an execution's Build stage successfully. */
function throughBuild(sim: Sim, id: string): void {
  sim.succeed("Compile", id);
  sim.succeed("Lint", id);
}

const stop = (executionId: string, abandon: boolean, reason = "bad commit"): ExecutionEvent => ({ type: "StopRequested", executionId, abandon, reason, by: "bob" });
const retryStage = (executionId: string, retryMode: "FAILED_ACTIONS" | "ALL_ACTIONS", stageName = "Build"): ExecutionEvent => ({
  type: "StageRetryRequested",
  executionId,
  stageName,
  retryMode,
  by: "carol",
});
const retryAction = (executionId: string, actionName: string, stageName = "Build"): ExecutionEvent => ({ type: "ActionRetryRequested", executionId, stageName, actionName, by: "carol" });
const transition = (stageName: string, enabled: boolean, reason = "freeze (release)"): ExecutionEvent => ({ type: "TransitionChanged", stageName, enabled, reason, by: "dave" });

describe("1. execution modes", () => {
  it("SUPERSEDED: the superseded waiter records which execution superseded it", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    sim.start("e2");
    sim.start("e3");
    expect(sim.exec("e2")).toMatchObject({ status: "Superseded", supersededBy: "e3", statusSummary: "Superseded by pipeline execution e3" });
    expect(sim.slot("Source")).toMatchObject({ lock: "e1", waiting: "e3" });
  });

  it("QUEUED: waiters queue in arrival order and each enters in turn; nobody is superseded", () => {
    const sim = new Sim(pipeline("QUEUED"));
    for (const id of ["e1", "e2", "e3", "e4"]) sim.start(id);
    expect(sim.slot("Source")).toMatchObject({ lock: "e1", waiting: "e2", queue: ["e2", "e3", "e4"] });
    expect(["e2", "e3", "e4"].map((id) => sim.exec(id).waitingFor)).toEqual(["Source", "Source", "Source"]);
    throughSource(sim, "e1");
    expect(sim.slot("Source")).toMatchObject({ lock: "e2", queue: ["e3", "e4"] });
    throughSource(sim, "e2"); // e2 waits in front of Build, where e1 is
    expect(sim.slot("Build")).toMatchObject({ lock: "e1", waiting: "e2" });
    throughSource(sim, "e3");
    throughSource(sim, "e4");
    expect(sim.slot("Build").queue).toEqual(["e2", "e3", "e4"]);
    for (const id of ["e1", "e2", "e3", "e4"]) {
      throughBuild(sim, id);
      sim.succeed("Ship", id);
    }
    expect(["e1", "e2", "e3", "e4"].map((id) => sim.exec(id).status)).toEqual(["Succeeded", "Succeeded", "Succeeded", "Succeeded"]);
    expect(sim.jobs.filter((j) => j.actionName === "Ship").map((j) => j.pipelineExecutionId)).toEqual(["e1", "e2", "e3", "e4"]);
  });

  it(`QUEUED: a start beyond ${MAX_QUEUED_EXECUTIONS} waiting executions gets ConcurrentPipelineExecutionsLimitExceededException`, () => {
    const sim = new Sim(pipeline("QUEUED"));
    sim.start("e0");
    for (let i = 1; i <= MAX_QUEUED_EXECUTIONS; i++) sim.start(`e${i}`);
    expect(sim.slot("Source").queue).toHaveLength(MAX_QUEUED_EXECUTIONS);
    const err = sim.refuse(
      { type: "ExecutionRequested", executionId: "late", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "x" } },
      "ConcurrentPipelineExecutionsLimitExceededException",
    );
    expect(err.message).toContain(`limit ${MAX_QUEUED_EXECUTIONS}`);
    // A source change beyond the limit is not an error: it starts nothing and stays unseen for the next poll.
    const d = sim.apply({ type: "SourceChanged", executionId: "poll", actionName: "Src", revision: { actionName: "Src", revisionId: "r9" }, trigger: { triggerType: "PollForSourceChanges", triggerDetail: "Src" } });
    expect(d.ignored).toContain(`limit ${MAX_QUEUED_EXECUTIONS}`);
    // PutActionRevision waits for its answer: for it the same limit is the error.
    sim.refuse(
      { type: "SourceChanged", executionId: "put", actionName: "Src", revision: { actionName: "Src", revisionId: "r9" }, trigger: { triggerType: "PutActionRevision", triggerDetail: "x" }, limitIsError: true },
      "ConcurrentPipelineExecutionsLimitExceededException",
    );
  });

  it("PARALLEL: executions run at once without locks and finish independently", () => {
    const sim = new Sim(pipeline("PARALLEL"));
    sim.start("e1");
    sim.start("e2");
    sim.start("e3");
    expect(sim.jobs.map((j) => [j.pipelineExecutionId, j.actionName])).toEqual([
      ["e1", "Src"],
      ["e2", "Src"],
      ["e3", "Src"],
    ]);
    expect(sim.slot("Source").lock).toBeUndefined();
    throughSource(sim, "e3");
    throughBuild(sim, "e3");
    sim.succeed("Ship", "e3");
    expect(sim.exec("e3").status).toBe("Succeeded");
    expect(sim.exec("e1")).toMatchObject({ status: "InProgress", currentStage: "Source", executionMode: "PARALLEL" });
  });

  it(`PARALLEL: more than ${MAX_PARALLEL_EXECUTIONS} executions in flight gets ConcurrentPipelineExecutionsLimitExceededException`, () => {
    const sim = new Sim(pipeline("PARALLEL"));
    for (let i = 0; i < MAX_PARALLEL_EXECUTIONS; i++) sim.start(`e${i}`);
    sim.refuse({ type: "ExecutionRequested", executionId: "late", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "x" } }, "ConcurrentPipelineExecutionsLimitExceededException");
    throughSource(sim, "e0");
    sim.fail("Compile", "boom", "e0");
    sim.succeed("Lint", "e0");
    sim.start("now-there-is-room");
    expect(sim.exec("now-there-is-room").status).toBe("InProgress");
  });

  it("PARALLEL: each execution runs the pipeline version it started with", () => {
    const sim = new Sim(pipeline("PARALLEL"));
    sim.start("e1");
    const v2: PipelineSpec = {
      ...pipelineSpec([["Source", [sourceSpec("Src", "SrcOut")]], ["Test", [actionSpec("Check", { inputArtifacts: ["SrcOut"] })]]], "demo", "PARALLEL"),
      version: 2,
    };
    sim.apply({ type: "PipelineUpdated", spec: v2 });
    expect(sim.state.retainedSpecs?.map((s) => s.version)).toEqual([1]);
    sim.start("e2");
    throughSource(sim, "e1");
    throughSource(sim, "e2");
    expect(sim.job("Compile", "e1").pipelineVersion).toBe(1);
    expect(sim.job("Check", "e2").pipelineVersion).toBe(2);
    throughBuild(sim, "e1");
    sim.succeed("Ship", "e1");
    sim.succeed("Check", "e2");
    expect([sim.exec("e1").status, sim.exec("e2").status]).toEqual(["Succeeded", "Succeeded"]);
    expect(sim.exec("e1").stages.map((s) => s.name)).toEqual(["Source", "Build", "Deploy"]);
    expect(sim.state.retainedSpecs).toBeUndefined();
  });

  it("an update cancels SUPERSEDED executions and records why (cancelledBy, statusSummary)", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    sim.start("e2");
    sim.apply({ type: "PipelineUpdated", spec: { ...pipeline(), version: 2 } });
    expect(sim.exec("e2")).toMatchObject({ status: "Cancelled", cancelledBy: "PipelineUpdated", statusSummary: "Cancelled by the update of the pipeline to version 2" });
    throughSource(sim, "e1");
    expect(sim.exec("e1")).toMatchObject({ status: "Cancelled", cancelledBy: "PipelineUpdated" });
  });
});

describe("2. transitions", () => {
  it("a disabled inbound transition holds executions in front of a free stage; enabling lets the newest waiter in (SUPERSEDED)", () => {
    const sim = new Sim(pipeline());
    sim.apply(transition("Build", false));
    expect(sim.slot("Build").transition).toEqual({ enabled: false, lastChangedBy: "dave", lastChangedAt: sim.ctx.now, disabledReason: "freeze (release)" });
    sim.start("e1");
    throughSource(sim, "e1");
    expect(sim.exec("e1")).toMatchObject({ status: "InProgress", waitingFor: "Build" });
    expect(sim.slot("Build").lock).toBeUndefined();
    sim.start("e2");
    throughSource(sim, "e2");
    expect(sim.exec("e1")).toMatchObject({ status: "Superseded", supersededBy: "e2" });
    sim.ctx.advance(5000);
    const d = sim.apply(transition("Build", true, ""));
    expect(sim.slot("Build").transition).toEqual({ enabled: true, lastChangedBy: "dave", lastChangedAt: sim.ctx.now });
    expect(sim.slot("Build").lock).toBe("e2");
    expect(jobsOf(d).map((j) => [j.pipelineExecutionId, j.actionName])).toEqual([
      ["e2", "Compile"],
      ["e2", "Lint"],
    ]);
  });

  it("the execution inside a stage continues when its inbound transition is disabled", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.apply(transition("Build", false));
    throughBuild(sim, "e1");
    sim.succeed("Ship", "e1");
    expect(sim.exec("e1").status).toBe("Succeeded");
  });

  it("QUEUED: enabling lets the oldest waiter in; the others keep their place", () => {
    const sim = new Sim(pipeline("QUEUED"));
    sim.apply(transition("Build", false));
    for (const id of ["e1", "e2"]) {
      sim.start(id);
      throughSource(sim, id);
    }
    expect(sim.slot("Build").queue).toEqual(["e1", "e2"]);
    sim.apply(transition("Build", true));
    expect(sim.slot("Build")).toMatchObject({ lock: "e1", waiting: "e2" });
  });

  it("PARALLEL: enabling lets every waiter in", () => {
    const sim = new Sim(pipeline("PARALLEL"));
    sim.apply(transition("Build", false));
    for (const id of ["e1", "e2"]) {
      sim.start(id);
      throughSource(sim, id);
    }
    sim.apply(transition("Build", true));
    expect([sim.exec("e1").currentStage, sim.exec("e2").currentStage]).toEqual(["Build", "Build"]);
  });

  it("disabling the first stage's transition holds new executions before the pipeline starts", () => {
    const sim = new Sim(pipeline());
    sim.apply(transition("Source", false));
    const d = sim.start("e1");
    expect(jobsOf(d)).toEqual([]);
    expect(sim.exec("e1").waitingFor).toBe("Source");
    expect(jobsOf(sim.apply(transition("Source", true))).map((j) => j.actionName)).toEqual(["Src"]);
  });

  it("the disable reason must be 1-300 characters of [a-zA-Z0-9!@ ()*.?-]: else ValidationException naming reason", () => {
    const sim = new Sim(pipeline());
    for (const reason of ["", "x".repeat(301), "no; semicolons", "tab\there"]) {
      const err = sim.refuse(transition("Build", false, reason), "ValidationException");
      expect(err.violations.map((v) => v.field)).toEqual(["reason"]);
    }
    sim.apply(transition("Build", false, "a".repeat(300)));
    sim.apply(transition("Build", true, "")); // enabling takes no reason
    sim.refuse(transition("Nope", false), "StageNotFoundException");
  });
});

describe("3. retry", () => {
  /** e1 failed in Build: Compile failed, Lint succeeded. */
  function failedInBuild(mode: ExecutionMode = "SUPERSEDED"): Sim {
    const sim = new Sim(pipeline(mode));
    sim.start("e1");
    throughSource(sim, "e1");
    sim.fail("Compile", "compiler crashed", "e1");
    sim.succeed("Lint", "e1");
    expect(sim.exec("e1").status).toBe("Failed");
    sim.archive(); // the shell drops ended executions; the retryable copy stays
    return sim;
  }

  it("FAILED_ACTIONS reruns only the failed actions; the same execution resumes and continues to later stages", () => {
    const sim = failedInBuild();
    expect(sim.state.retryable?.map((e) => e.id)).toEqual(["e1"]);
    const first = sim.job("Compile", "e1");
    const d = sim.apply(retryStage("e1", "FAILED_ACTIONS"));
    expect(jobsOf(d).map((j) => [j.actionName, j.attempt])).toEqual([["Compile", 2]]);
    expect(jobsOf(d)[0]?.actionExecutionId).not.toBe(first.actionExecutionId);
    expect(sim.state.executions["e1"]).toMatchObject({ status: "InProgress", currentStage: "Build", executionAttempt: 2 });
    expect(sim.state.retryable).toBeUndefined();
    expect(sim.slot("Build")).toMatchObject({ lock: "e1", latest: { pipelineExecutionId: "e1", status: "InProgress" } });
    expect(sim.slot("Build").retryStageMetadata).toEqual({ autoStageRetryAttempt: 0, manualStageRetryAttempt: 1, latestRetryTrigger: "ManualStageRetry" });
    expect(d.events.map((e) => `${e.kind}:${e.event.state}`)).toEqual(["pipeline:RESUMED", "stage:RESUMED", "action:STARTED"]);
    sim.succeed("Compile", "e1");
    sim.succeed("Ship", "e1");
    expect(sim.exec("e1").status).toBe("Succeeded");
    const compile = sim.exec("e1").stages[1]?.actions.find((a) => a.name === "Compile");
    expect(compile).toMatchObject({ attempt: 2, status: "Succeeded" });
    expect(compile?.attempts).toMatchObject([{ attempt: 1, actionExecutionId: first.actionExecutionId, status: "Failed", errorDetails: { message: "compiler crashed" } }]);
  });

  it("ALL_ACTIONS reruns the whole stage from its first group", () => {
    const sim = failedInBuild();
    const d = sim.apply(retryStage("e1", "ALL_ACTIONS"));
    expect(jobsOf(d).map((j) => [j.actionName, j.attempt])).toEqual([
      ["Compile", 2],
      ["Lint", 2],
    ]);
  });

  it("FAILED_ACTIONS is allowed as soon as one action failed (running ones continue); ALL_ACTIONS needs nothing running (ConflictException)", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.fail("Compile", "boom", "e1"); // Lint still runs
    expect(sim.exec("e1").status).toBe("InProgress");
    sim.refuse(retryStage("e1", "ALL_ACTIONS"), "ConflictException");
    const d = sim.apply(retryStage("e1", "FAILED_ACTIONS"));
    expect(jobsOf(d).map((j) => [j.actionName, j.attempt])).toEqual([["Compile", 2]]);
    expect(d.events.some((e) => e.event.state === "RESUMED")).toBe(false);
    sim.succeed("Lint", "e1");
    sim.succeed("Compile", "e1");
    sim.succeed("Ship", "e1");
    expect(sim.exec("e1").status).toBe("Succeeded");
  });

  it("NotLatestPipelineExecutionException once a newer execution entered the stage", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.start("e2");
    throughSource(sim, "e2"); // waits in front of Build
    sim.fail("Compile", "boom", "e1");
    sim.succeed("Lint", "e1"); // e1 fails, e2 enters Build
    expect(sim.slot("Build").lock).toBe("e2");
    const err = sim.refuse(retryStage("e1", "FAILED_ACTIONS"), "NotLatestPipelineExecutionException");
    expect(err.message).toContain("the latest is e2");
    expect(sim.state.retryable).toBeUndefined();
    sim.refuse(retryStage("e9", "FAILED_ACTIONS"), "NotLatestPipelineExecutionException");
  });

  it("StageNotRetryableException when nothing failed, the execution succeeded, or the pipeline structure changed", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    // e1 is the latest in Source, but Source succeeded and e1 moved on.
    sim.refuse(retryStage("e1", "FAILED_ACTIONS", "Source"), "StageNotRetryableException");
    // Build is running with nothing failed.
    expect(sim.refuse(retryStage("e1", "FAILED_ACTIONS"), "StageNotRetryableException").message).toContain("no failed actions");
    throughBuild(sim, "e1");
    sim.succeed("Ship", "e1");
    sim.refuse(retryStage("e1", "FAILED_ACTIONS", "Deploy"), "StageNotRetryableException");
    sim.archive();
    sim.refuse(retryStage("e1", "FAILED_ACTIONS", "Deploy"), "StageNotRetryableException");

    const changed = failedInBuild();
    changed.apply({ type: "PipelineUpdated", spec: { ...pipeline(), version: 2 } });
    expect(changed.refuse(retryStage("e1", "FAILED_ACTIONS"), "StageNotRetryableException").message).toContain("changed to version 2");
    changed.refuse(retryStage("e1", "FAILED_ACTIONS", "Nope"), "StageNotFoundException");
  });

  it("a Stopped execution is retryable: abandoned actions rerun", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.apply(stop("e1", true));
    expect(sim.exec("e1").status).toBe("Stopped");
    sim.archive();
    const d = sim.apply(retryStage("e1", "FAILED_ACTIONS"));
    expect(jobsOf(d).map((j) => j.actionName)).toEqual(["Compile", "Lint"]);
    expect(sim.exec("e1")).toMatchObject({ status: "InProgress" });
    expect(sim.exec("e1").stopTrigger).toBeUndefined();
    throughBuild(sim, "e1");
    sim.succeed("Ship", "e1");
    expect(sim.exec("e1").status).toBe("Succeeded");
  });

  it("a stop-and-wait that let every running action finish continues with the groups never started", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    sim.apply(stop("e1", false));
    throughSource(sim, "e1");
    expect(sim.exec("e1").status).toBe("Stopped");
    const d = sim.apply(retryStage("e1", "FAILED_ACTIONS", "Source"));
    expect(d.events.map((e) => `${e.kind}:${e.event.stage ?? ""}:${e.event.state}`)).toEqual([
      "pipeline::RESUMED",
      "stage:Source:RESUMED",
      "stage:Source:SUCCEEDED",
      "stage:Build:STARTED",
      "action:Build:STARTED",
      "action:Build:STARTED",
    ]);
  });

  it("a retry takes the stage lock again: later arrivals wait", () => {
    const sim = failedInBuild();
    sim.apply(retryStage("e1", "FAILED_ACTIONS"));
    sim.start("e2");
    throughSource(sim, "e2");
    expect(sim.exec("e2").waitingFor).toBe("Build");
    expect(sim.slot("Build").lock).toBe("e1");
  });

  it("no retry while a stop-and-wait is in progress (ConflictException)", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.fail("Compile", "boom", "e1");
    sim.apply(stop("e1", false));
    sim.refuse(retryStage("e1", "FAILED_ACTIONS"), "ConflictException");
  });

  it("ActionRetryRequested reruns one action, succeeded or failed; the stage fails again while another action stays failed", () => {
    const sim = failedInBuild();
    const d = sim.apply(retryAction("e1", "Lint"));
    expect(jobsOf(d).map((j) => [j.actionName, j.attempt])).toEqual([["Lint", 2]]);
    sim.succeed("Lint", "e1");
    expect(sim.exec("e1").status).toBe("Failed");
    expect(sim.exec("e1").executionAttempt).toBe(2);
    expect(jobsOf(sim.apply(retryAction("e1", "Compile"))).map((j) => [j.actionName, j.attempt])).toEqual([["Compile", 2]]);
    sim.succeed("Compile", "e1");
    sim.succeed("Ship", "e1");
    expect(sim.exec("e1")).toMatchObject({ status: "Succeeded", executionAttempt: 3 });
    expect(sim.slot("Build").retryStageMetadata?.manualStageRetryAttempt).toBe(2);
  });

  it("ActionRetryRequested: ConflictException for a running action, ActionNotFound / ActionExecutionNotFound for the wrong action", () => {
    const sim = new Sim(
      pipelineSpec([
        ["Source", [sourceSpec("Src", "SrcOut")]],
        ["Build", [actionSpec("A"), actionSpec("B"), actionSpec("Later", { runOrder: 2 })]],
      ]),
    );
    sim.start("e1");
    throughSource(sim, "e1");
    sim.fail("A", "boom", "e1");
    sim.refuse(retryAction("e1", "B"), "ConflictException");
    sim.refuse(retryAction("e1", "Nope"), "ActionNotFoundException");
    sim.refuse(retryAction("e1", "Later"), "ActionExecutionNotFoundException");
    sim.apply(retryAction("e1", "A"));
  });

  it("a result for an earlier attempt is ignored", () => {
    const sim = failedInBuild();
    const old = sim.job("Compile", "e1");
    sim.apply(retryStage("e1", "FAILED_ACTIONS"));
    sim.ctx.advance(1);
    const d = sim.apply({ type: "JobCompleted", result: { ...sim.job("Compile", "e1"), ...{ actionExecutionId: old.actionExecutionId, attempt: 1 }, status: "Succeeded", outputArtifacts: [], outputVariables: {}, jobId: old.jobId } });
    expect(d.ignored).toBe("action execution id-2 is an earlier attempt of Compile, now at attempt 2");
  });
});

describe("4. stop", () => {
  it("stop-and-wait: Stopping, running actions finish, nothing new starts, then Stopped; the lock goes to the waiter", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.start("e2");
    throughSource(sim, "e2"); // waits for Build
    const d = sim.apply(stop("e1", false));
    expect(d.commands).toEqual([]);
    expect(sim.exec("e1")).toMatchObject({ status: "Stopping", stopTrigger: { reason: "bad commit", by: "bob", abandon: false } });
    expect(sim.slot("Build").latest).toEqual({ pipelineExecutionId: "e1", status: "Stopping" });
    sim.refuse(stop("e1", false), "DuplicatedStopRequestException");
    sim.succeed("Compile", "e1");
    expect(sim.exec("e1").status).toBe("Stopping");
    const end = sim.succeed("Lint", "e1");
    expect(sim.exec("e1")).toMatchObject({ status: "Stopped", statusSummary: "Stopped by bob: bad commit" });
    expect(sim.exec("e1").stages.map((s) => s.status)).toEqual(["Succeeded", "Stopped"]);
    expect(jobsOf(end).map((j) => [j.pipelineExecutionId, j.actionName])).toEqual([
      ["e2", "Compile"],
      ["e2", "Lint"],
    ]);
    expect(sim.jobs.some((j) => j.actionName === "Ship")).toBe(false);
  });

  it("abandon: running actions Abandoned at once, their jobs cancelled, the execution Stopped; results for them are ignored", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    const compile = sim.job("Compile", "e1");
    const lint = sim.job("Lint", "e1");
    const d = sim.apply(stop("e1", true, "wrong branch"));
    expect(d.commands).toEqual([
      { type: "CancelJob", jobId: compile.jobId, actionExecutionId: compile.actionExecutionId, pipelineName: "demo", reason: "Abandoned: Stopped by bob: wrong branch" },
      { type: "CancelJob", jobId: lint.jobId, actionExecutionId: lint.actionExecutionId, pipelineName: "demo", reason: "Abandoned: Stopped by bob: wrong branch" },
    ]);
    expect(sim.exec("e1").stages[1]?.actions.map((a) => a.status)).toEqual(["Abandoned", "Abandoned"]);
    expect(sim.exec("e1")).toMatchObject({ status: "Stopped", stopTrigger: { reason: "wrong branch", abandon: true } });
    expect(sim.slot("Build").lock).toBeUndefined();
    expect(sim.succeed("Compile", "e1").ignored).toBe("execution e1 already ended Stopped");
    sim.refuse(stop("e1", true), "DuplicatedStopRequestException");
    sim.refuse(stop("e1", false), "PipelineExecutionNotStoppableException");
  });

  it("abandon is allowed after a stop-and-wait", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.apply(stop("e1", false, "first"));
    sim.succeed("Compile", "e1");
    const d = sim.apply(stop("e1", true, ""));
    expect(d.commands.map((c) => c.type)).toEqual(["CancelJob"]);
    expect(sim.exec("e1")).toMatchObject({ status: "Stopped", stopTrigger: { reason: "first", abandon: true } });
  });

  it("a waiting execution can be stopped: it leaves the line and ends Stopped", () => {
    const sim = new Sim(pipeline("QUEUED"));
    sim.start("e1");
    sim.start("e2");
    sim.start("e3");
    sim.apply(stop("e2", false));
    expect(sim.exec("e2").status).toBe("Stopped");
    expect(sim.slot("Source")).toMatchObject({ waiting: "e3" });
    expect(sim.slot("Source").queue).toBeUndefined();
  });

  it("only InProgress executions can be stopped (PipelineExecutionNotStoppableException); the reason is at most 200 characters", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.fail("Compile", "boom", "e1");
    sim.succeed("Lint", "e1");
    sim.refuse(stop("e1", false), "PipelineExecutionNotStoppableException");
    sim.refuse(stop("nope", false), "PipelineExecutionNotFoundException");
    sim.start("e2");
    expect(sim.refuse(stop("e2", false, "r".repeat(201)), "ValidationException").violations[0]?.field).toBe("reason");
  });
});

describe("5. timeouts and approvals", () => {
  it("an action past its deadline fails with an error naming the timeout, and its job is cancelled", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    const compile = sim.job("Compile", "e1");
    sim.ctx.now = compile.deadline + TIMEOUT_GRACE_MS;
    const d = sim.apply({ type: "TimerFired" });
    const run = sim.exec("e1").stages[1]?.actions.find((a) => a.name === "Compile");
    expect(run?.errorDetails).toEqual({ code: "JobTimedOut", message: 'action "Compile" timed out after 60 minutes' });
    expect(d.commands.filter((c) => c.type === "CancelJob").map((c) => c.jobId)).toEqual([compile.jobId, sim.job("Lint", "e1").jobId]);
    expect(sim.exec("e1").status).toBe("Failed");
    expect(sim.succeed("Compile", "e1").ignored).toBe("execution e1 already ended Failed");
  });

  it("an unanswered approval expires after its timeout (7 days by default) and fails the action", () => {
    const sim = new Sim(pipelineSpec([["Source", [sourceSpec("Src", "SrcOut")]], ["Approve", [approvalSpec("Gate")]]]));
    sim.start("e1");
    throughSource(sim, "e1");
    const gate = sim.job("Gate", "e1");
    expect(gate.deadline - sim.ctx.now).toBe(7 * 24 * 60 * 60_000);
    sim.ctx.now = gate.deadline + TIMEOUT_GRACE_MS;
    sim.apply({ type: "TimerFired" });
    expect(sim.exec("e1")).toMatchObject({ status: "Failed" });
    expect(sim.exec("e1").stages[1]?.actions[0]?.errorDetails).toEqual({
      code: "JobTimedOut",
      message: 'approval "Gate" expired: no answer within 7 days (the approval timeout)',
    });
  });

  it("a timeout during a stop-and-wait ends the execution Stopped", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    sim.apply(stop("e1", false));
    sim.ctx.now = sim.job("Src", "e1").deadline + TIMEOUT_GRACE_MS;
    sim.apply({ type: "TimerFired" });
    expect(sim.exec("e1").status).toBe("Stopped");
  });
});

describe("6. pipeline variables", () => {
  const withVariables = (): PipelineSpec => ({
    ...pipelineSpec([
      ["Source", [sourceSpec("Src", "SrcOut")]],
      ["Deploy", [actionSpec("Ship", { inputArtifacts: ["SrcOut"], configuration: { Target: "#{variables.Env}/#{variables.Ticket}", Run: "#{codepipeline.PipelineExecutionId}" } })]],
    ]),
    variables: [{ name: "Env", defaultValue: "prod", description: "where" }, { name: "Ticket" }],
  });

  it("#{variables.name} is the start's override, else the default; resolvedConfiguration records it", () => {
    const sim = new Sim(withVariables());
    sim.start("e1", { variables: [{ name: "Ticket", value: "T-1" }] });
    expect(sim.exec("e1").pipelineVariables).toEqual([
      { name: "Env", resolvedValue: "prod" },
      { name: "Ticket", resolvedValue: "T-1" },
    ]);
    throughSource(sim, "e1");
    expect(sim.job("Ship", "e1").configuration).toEqual({ Target: "prod/T-1", Run: "e1" });
    expect(sim.exec("e1").stages[1]?.actions[0]?.resolvedConfiguration).toEqual({ Target: "prod/T-1", Run: "e1" });
    sim.start("e2", { variables: [{ name: "Env", value: "staging" }, { name: "Ticket", value: "T-2" }] });
    expect(sim.exec("e2").pipelineVariables?.[0]).toEqual({ name: "Env", resolvedValue: "staging" });
  });

  it("an override of an undeclared variable is a ValidationException naming variables[i].name", () => {
    const sim = new Sim(withVariables());
    const err = sim.refuse(
      { type: "ExecutionRequested", executionId: "e1", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "x" }, variables: [{ name: "Ticket", value: "T" }, { name: "Nope", value: "x" }] },
      "ValidationException",
    );
    expect(err.violations.map((v) => v.field)).toEqual(["variables[1].name"]);
  });

  it("a declared variable with neither default nor override is a ValidationException at start naming it", () => {
    const sim = new Sim(withVariables());
    const err = sim.refuse({ type: "ExecutionRequested", executionId: "e1", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "x" } }, "ValidationException");
    expect(err.violations).toEqual([{ field: "variables", message: 'pipeline variable "Ticket" has no default value: give it a value' }]);
  });

  it("a source-triggered execution starts without it; the action referencing it fails naming the reference", () => {
    const sim = new Sim(withVariables());
    sim.apply({ type: "SourceChanged", executionId: "e1", actionName: "Src", revision: { actionName: "Src", revisionId: "r1" }, trigger: { triggerType: "PollForSourceChanges", triggerDetail: "Src" } });
    throughSource(sim, "e1");
    expect(sim.exec("e1").status).toBe("Failed");
    expect(sim.exec("e1").stages[1]?.actions[0]?.errorDetails?.message).toBe(
      "configuration Target: variable #{variables.Ticket} cannot be resolved (the pipeline variable has no value in this execution)",
    );
  });
});

describe("7. start options", () => {
  it("the same clientRequestToken returns the same execution id and starts nothing", () => {
    const sim = new Sim(pipeline("PARALLEL"));
    expect(sim.start("e1", { clientRequestToken: "tok-1" }).executionId).toBe("e1");
    const again = sim.start("e2", { clientRequestToken: "tok-1" });
    expect(again.executionId).toBe("e1");
    expect(again.ignored).toBe("clientRequestToken tok-1 already started execution e1");
    expect(Object.keys(sim.state.executions)).toEqual(["e1"]);
    expect(sim.start("e3", { clientRequestToken: "tok-2" }).executionId).toBe("e3");
    expect(sim.exec("e1").clientRequestToken).toBe("tok-1");
    expect(sim.refuse({ type: "ExecutionRequested", executionId: "e4", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "x" }, clientRequestToken: "bad token!" }, "ValidationException").violations[0]?.field).toBe("clientRequestToken");
  });

  it(`remembers at most ${MAX_REQUEST_TOKENS} tokens`, () => {
    const sim = new Sim(pipeline());
    for (let i = 0; i <= MAX_REQUEST_TOKENS; i++) {
      sim.start(`e${i}`, { clientRequestToken: `t${i}` });
      sim.archive();
    }
    expect(sim.state.requestTokens).toHaveLength(MAX_REQUEST_TOKENS);
    expect(sim.state.requestTokens?.[0]?.token).toBe("t1");
  });

  it("pinned source revisions reach the source action's job; an unknown action is a ValidationException naming sourceRevisions[i].actionName", () => {
    const sim = new Sim(pipeline());
    sim.start("e1", { pinnedRevisions: [{ actionName: "Src", revisionId: "abc123" }] });
    expect(sim.job("Src", "e1").sourceRevision).toBe("abc123");
    const err = sim.refuse(
      { type: "ExecutionRequested", executionId: "e2", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "x" }, pinnedRevisions: [{ actionName: "Compile", revisionId: "abc" }] },
      "ValidationException",
    );
    expect(err.violations.map((v) => v.field)).toEqual(["sourceRevisions[0].actionName"]);
  });
});

describe("8. state-change events", () => {
  it("pipeline and stage events carry RESUMED, STOPPING, STOPPED with the stop comments and the execution attempt; ids stay unique", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.fail("Compile", "boom", "e1");
    sim.succeed("Lint", "e1");
    sim.apply(retryStage("e1", "FAILED_ACTIONS"));
    sim.apply(stop("e1", false, "enough"));
    sim.succeed("Compile", "e1");
    const pipelineEvents = sim.events.filter((e) => e.kind === "pipeline").map((e) => [e.event.state, e.event.pipelineExecutionAttempt, e.event.stopExecutionComments]);
    expect(pipelineEvents).toEqual([
      ["STARTED", 1, undefined],
      ["FAILED", 1, undefined],
      ["RESUMED", 2, undefined],
      ["STOPPING", 2, "enough"],
      ["STOPPED", 2, "enough"],
    ]);
    expect(sim.trail("e1").filter((t) => t.startsWith("stage:Build"))).toEqual(["stage:Build:STARTED", "stage:Build:FAILED", "stage:Build:RESUMED", "stage:Build:STOPPING", "stage:Build:STOPPED"]);
    const ids = sim.events.map((e) => e.event.eventId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("action events: ABANDONED, and the input and output artifacts with their locations", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.succeed("Compile", "e1");
    const succeeded = sim.events.find((e) => e.event.action === "Compile" && e.event.state === "SUCCEEDED");
    expect(succeeded?.event.inputArtifacts).toEqual([{ name: "SrcOut", s3location: { bucket: "sluice-artifacts", key: expect.stringContaining("SrcOut.zip") as string } }]);
    expect(succeeded?.event.outputArtifacts?.map((a) => a.name)).toEqual(["BuildOut"]);
    sim.apply(stop("e1", true));
    expect(sim.trail("e1").at(-3)).toBe("action:Build/Lint:ABANDONED");
  });
});

describe("9. views", () => {
  const meta = { created: 1, updated: 2 };

  it("GetPipelineState: inboundExecutions in order, the transition state and retryStageMetadata", () => {
    const sim = new Sim(pipeline("QUEUED"));
    sim.apply(transition("Deploy", false, "weekend"));
    for (const id of ["e1", "e2", "e3"]) sim.start(id);
    const view = pipelineStateView(sim.state, meta);
    const source = view.stageStates?.[0];
    expect(source?.inboundExecution).toEqual({ pipelineExecutionId: "e2", status: "InProgress", type: "STANDARD" });
    expect(source?.inboundExecutions?.map((e) => e.pipelineExecutionId)).toEqual(["e2", "e3"]);
    expect(view.stageStates?.[2]?.inboundTransitionState).toMatchObject({ enabled: false, lastChangedBy: "dave", disabledReason: "weekend" });
    throughSource(sim, "e1");
    sim.fail("Compile", "boom", "e1");
    sim.succeed("Lint", "e1");
    sim.apply(retryStage("e1", "FAILED_ACTIONS"));
    expect(pipelineStateView(sim.state, meta).stageStates?.[1]?.retryStageMetadata).toEqual({ autoStageRetryAttempt: 0, manualStageRetryAttempt: 1, latestRetryTrigger: "ManualStageRetry" });
  });

  it("GetPipelineExecution and ListPipelineExecutions: mode, type, trigger, variables and the stop trigger", () => {
    const sim = new Sim({ ...pipeline("PARALLEL"), variables: [{ name: "Env", defaultValue: "prod" }] });
    sim.start("e1");
    sim.apply(stop("e1", true, "not now"));
    const view = executionView(sim.exec("e1"), "demo");
    expect(view).toMatchObject({
      executionMode: "PARALLEL",
      executionType: "STANDARD",
      trigger: { triggerType: "StartPipelineExecution", triggerDetail: "alice" },
      variables: [{ name: "Env", resolvedValue: "prod" }],
      stopTrigger: { reason: "not now" },
      status: "Stopped",
    });
    expect(executionSummaryView(sim.exec("e1"))).toMatchObject({ executionMode: "PARALLEL", stopTrigger: { reason: "not now" } });
  });

  it("ListActionExecutions: every attempt, newest first, with inputs, outputs, configuration and errors", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    throughSource(sim, "e1");
    sim.ctx.advance(1000);
    sim.fail("Compile", "boom", "e1");
    sim.succeed("Lint", "e1");
    sim.ctx.advance(1000);
    sim.apply(retryStage("e1", "FAILED_ACTIONS"));
    sim.succeed("Compile", "e1");
    const spec = pipeline();
    const details = actionExecutionDetails([sim.exec("e1")], (v) => (v === 1 ? spec : undefined));
    const compile = details.filter((d) => d.actionName === "Compile");
    expect(compile.map((d) => [d.attempt, d.status])).toEqual([
      [2, "Succeeded"],
      [1, "Failed"],
    ]);
    expect(details[0]?.actionName).toBe("Ship");
    expect(compile[1]?.output.executionResult.errorDetails).toEqual({ code: "JobFailed", message: "boom" });
    expect(compile[0]).toMatchObject({
      pipelineExecutionId: "e1",
      pipelineVersion: 1,
      stageName: "Build",
      input: {
        actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
        configuration: { Run: "#{codepipeline.PipelineExecutionId}" },
        resolvedConfiguration: { Run: "e1" },
        inputArtifacts: [{ name: "SrcOut" }],
      },
      output: { outputArtifacts: [{ name: "BuildOut" }] },
    });
    expect(details.map((d) => d.actionName).sort()).toEqual(["Compile", "Compile", "Lint", "Ship", "Src"]);
  });
});
