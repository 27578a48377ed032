import { describe, expect, it } from "vitest";
import { decide, DETAIL_TYPES, nextDeadline, TIMEOUT_GRACE_MS } from "./decide.js";
import { actionSpec, approvalSpec, failure, jobsOf, pipelineSpec, Sim, sourceSpec, success } from "./testing.js";
import type { Emitted, ExecutionEvent, PipelineSpec } from "./types.js";

const threeStages = (): PipelineSpec =>
  pipelineSpec([
    ["Source", [sourceSpec("Src", "SrcOut", { namespace: "SourceVariables" })]],
    ["Build", [actionSpec("Compile", { inputArtifacts: ["SrcOut"], outputArtifacts: [{ name: "BuildOut", files: ["dist/**"] }] })]],
    ["Deploy", [actionSpec("Ship", { category: "Deploy", provider: "ObjectStore", builtIn: "ObjectStore", inputArtifacts: ["BuildOut"] })]],
  ]);

describe("ExecutionRequested", () => {
  it("starts the execution InProgress, emits pipeline STARTED and enters the first stage", () => {
    const sim = new Sim(threeStages());
    const d = sim.start("e1");
    const exec = sim.exec("e1");
    expect(exec.status).toBe("InProgress");
    expect(exec.currentStage).toBe("Source");
    expect(sim.slot("Source").lock).toBe("e1");
    expect(d.events[0]?.event).toMatchObject({ detailType: DETAIL_TYPES.pipeline, state: "STARTED", executionId: "e1", executionTrigger: { triggerType: "StartPipelineExecution", triggerDetail: "alice" } });
    expect(sim.trail()).toEqual(["pipeline::STARTED", "stage:Source:STARTED", "action:Source/Src:STARTED"]);
    expect(d.commands).toHaveLength(1);
    expect(jobsOf(d)[0]).toMatchObject({ jobId: "id-1:1", actionExecutionId: "id-1", attempt: 1, category: "Source", builtIn: "Git", stageName: "Source", outputNames: ["SrcOut"], artifactBucket: "sluice-artifacts" });
  });

  it("ignores a second request with the same execution id", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    const before = sim.state;
    const d = sim.start("e1");
    expect(d.ignored).toBe("execution e1 already exists");
    expect(d.state).toBe(before);
  });

  it("does not modify the state it is given", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    const snapshot = structuredClone(sim.state);
    const frozen = sim.state;
    decide(frozen, { type: "JobCompleted", result: success(sim.job("Src")) }, sim.ctx);
    expect(frozen).toEqual(snapshot);
  });
});

describe("runner pools", () => {
  it("dispatches a job to its action's RunnerPool, approvals and others to the default pool", () => {
    const sim = new Sim(
      pipelineSpec([
        ["Source", [sourceSpec("Src", "SrcOut")]],
        ["Build", [actionSpec("Gpu", { configuration: { RunnerPool: "gpu" } }), approvalSpec("Review")]],
      ]),
    );
    const started = sim.start("e1");
    expect(jobsOf(started)[0]).toMatchObject({ builtIn: "Git", pool: "default" });
    const next = sim.succeed("Src");
    expect(jobsOf(next).map((j) => [j.actionName, j.pool])).toEqual([
      ["Gpu", "gpu"],
      ["Review", "default"],
    ]);
  });
});

describe("stages run in order", () => {
  it("runs Source, Build, Deploy one after another and ends Succeeded", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.succeed("Src");
    expect(sim.exec("e1").currentStage).toBe("Build");
    expect(sim.slot("Source").lock).toBeUndefined();
    expect(sim.slot("Build").lock).toBe("e1");
    sim.succeed("Compile");
    const d = sim.succeed("Ship");
    expect(sim.exec("e1").status).toBe("Succeeded");
    expect(d.state.finished).toEqual(["e1"]);
    expect(sim.trail()).toEqual([
      "pipeline::STARTED",
      "stage:Source:STARTED",
      "action:Source/Src:STARTED",
      "action:Source/Src:SUCCEEDED",
      "stage:Source:SUCCEEDED",
      "stage:Build:STARTED",
      "action:Build/Compile:STARTED",
      "action:Build/Compile:SUCCEEDED",
      "stage:Build:SUCCEEDED",
      "stage:Deploy:STARTED",
      "action:Deploy/Ship:STARTED",
      "action:Deploy/Ship:SUCCEEDED",
      "stage:Deploy:SUCCEEDED",
      "pipeline::SUCCEEDED",
    ]);
    expect(sim.state.stages.map((s) => s.lock)).toEqual([undefined, undefined, undefined]);
    expect(sim.state.stages.map((s) => s.latest)).toEqual(["Source", "Build", "Deploy"].map(() => ({ pipelineExecutionId: "e1", status: "Succeeded" })));
  });

  it("lists a finished execution in `finished` only in the decision that finished it", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.succeed("Src");
    sim.succeed("Compile");
    expect(sim.succeed("Ship").state.finished).toEqual(["e1"]);
    expect(sim.start("e2").state.finished).toEqual([]);
  });
});

describe("runOrder groups", () => {
  const grouped = (): PipelineSpec =>
    pipelineSpec([
      ["Source", [sourceSpec("Src", "SrcOut")]],
      [
        "Test",
        [
          actionSpec("Unit", { runOrder: 1, inputArtifacts: ["SrcOut"] }),
          actionSpec("Lint", { runOrder: 1, inputArtifacts: ["SrcOut"] }),
          actionSpec("Package", { runOrder: 2, inputArtifacts: ["SrcOut"] }),
          actionSpec("Smoke", { runOrder: 3 }),
        ],
      ],
    ]);

  it("dispatches the actions of equal runOrder together", () => {
    const sim = new Sim(grouped());
    sim.start("e1");
    const d = sim.succeed("Src");
    expect(jobsOf(d).map((c) => c.actionName)).toEqual(["Unit", "Lint"]);
    expect(new Set(jobsOf(d).map((c) => c.actionExecutionId)).size).toBe(2);
  });

  it("starts the next group only when the whole group succeeded", () => {
    const sim = new Sim(grouped());
    sim.start("e1");
    sim.succeed("Src");
    expect(sim.succeed("Unit").commands).toEqual([]);
    expect(jobsOf(sim.succeed("Lint")).map((c) => c.actionName)).toEqual(["Package"]);
    expect(jobsOf(sim.succeed("Package")).map((c) => c.actionName)).toEqual(["Smoke"]);
    sim.succeed("Smoke");
    expect(sim.exec("e1").status).toBe("Succeeded");
  });

  it("orders groups by runOrder, not by declaration order", () => {
    const sim = new Sim(
      pipelineSpec([
        ["Source", [sourceSpec("Src", "SrcOut")]],
        ["Build", [actionSpec("Late", { runOrder: 5 }), actionSpec("Early", { runOrder: 2 })]],
      ]),
    );
    sim.start("e1");
    expect(jobsOf(sim.succeed("Src")).map((c) => c.actionName)).toEqual(["Early"]);
    expect(jobsOf(sim.succeed("Early")).map((c) => c.actionName)).toEqual(["Late"]);
  });
});

describe("artifact flow", () => {
  it("gives a later action the ids of the execution's artifacts it names as inputs", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.succeed("Src");
    const compile = sim.job("Compile");
    expect(compile.inputArtifactIds).toEqual([`${sim.job("Src").actionExecutionId}/SrcOut`]);
    expect(compile.outputNames).toEqual(["BuildOut"]);
    expect(compile.outputArtifacts).toEqual([{ name: "BuildOut", files: ["dist/**"] }]);
    sim.succeed("Compile");
    expect(sim.job("Ship").inputArtifactIds).toEqual([`${compile.actionExecutionId}/BuildOut`]);
    expect(sim.exec("e1").artifacts.map((a) => [a.name, a.sha256, a.sizeBytes])).toEqual([
      ["SrcOut", "ab".repeat(32), 42],
      ["BuildOut", "ab".repeat(32), 42],
    ]);
  });

  it("records the source revision on the execution, its artifact and the action's current revision", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.succeed("Src", undefined, { revision: { revisionId: "c0ffee", revisionSummary: "first commit", created: 5000, branch: "main" } });
    const exec = sim.exec("e1");
    expect(exec.sourceRevisions).toEqual([{ actionName: "Src", revisionId: "c0ffee", revisionSummary: "first commit", created: 5000, branch: "main" }]);
    expect(exec.artifacts[0]).toMatchObject({ name: "SrcOut", revisionId: "c0ffee", revisionSummary: "first commit", created: 5000 });
    expect(sim.state.lastSourceRevisions).toEqual(exec.sourceRevisions);
    expect(sim.slot("Source").actions[0]?.currentRevision).toEqual({ revisionId: "c0ffee", created: 5000 });
  });

  it("fails an action that reports success without a declared output artifact", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.succeed("Src", undefined, { outputArtifacts: [] });
    const exec = sim.exec("e1");
    expect(exec.status).toBe("Failed");
    expect(exec.statusSummary).toContain("without output artifact SrcOut");
  });
});

describe("failure", () => {
  const parallel = (): PipelineSpec =>
    pipelineSpec([
      ["Source", [sourceSpec("Src", "SrcOut")]],
      ["Build", [actionSpec("A", { runOrder: 1 }), actionSpec("B", { runOrder: 1 }), actionSpec("C", { runOrder: 2 })]],
      ["Deploy", [actionSpec("Ship")]],
    ]);

  it("stops later groups, lets running actions finish, then fails the stage and the execution", () => {
    const sim = new Sim(parallel());
    sim.start("e1");
    sim.succeed("Src");
    const afterFail = sim.fail("A", "tests failed");
    expect(afterFail.commands).toEqual([]);
    expect(sim.exec("e1").status).toBe("InProgress");
    expect(sim.slot("Build").lock).toBe("e1");
    const afterB = sim.succeed("B");
    expect(afterB.commands).toEqual([]);
    const exec = sim.exec("e1");
    expect(exec.status).toBe("Failed");
    expect(exec.statusSummary).toBe('Action "A" in stage "Build" failed: tests failed');
    expect(exec.stages.map((s) => [s.name, s.status])).toEqual([
      ["Source", "Succeeded"],
      ["Build", "Failed"],
    ]);
    expect(exec.stages[1]?.actions.map((a) => a.name)).toEqual(["A", "B"]);
    expect(sim.slot("Build").lock).toBeUndefined();
    expect(sim.slot("Build").latest).toEqual({ pipelineExecutionId: "e1", status: "Failed" });
    expect(sim.jobs.map((j) => j.actionName)).not.toContain("C");
    expect(sim.trail().slice(-4)).toEqual(["action:Build/A:FAILED", "action:Build/B:SUCCEEDED", "stage:Build:FAILED", "pipeline::FAILED"]);
    expect(afterB.state.finished).toEqual(["e1"]);
  });

  it("keeps the failed action's error for GetPipelineState and the FAILED event", () => {
    const sim = new Sim(parallel());
    sim.start("e1");
    sim.succeed("Src");
    sim.apply({ type: "JobCompleted", result: failure(sim.job("A"), "boom", { externalExecutionId: "run-7" }) });
    const latest = sim.slot("Build").actions.find((a) => a.name === "A")?.latest;
    expect(latest).toMatchObject({ status: "Failed", summary: "boom", errorDetails: { code: "JobFailed", message: "boom" }, externalExecutionId: "run-7" });
    const failed = sim.events.find((e) => e.event.action === "A" && e.event.state === "FAILED");
    expect(failed?.event.executionResult).toEqual({ externalExecutionId: "run-7", externalExecutionSummary: "boom", errorCode: "JobFailed" });
  });

  it("uses a default error when a failed result carries none", () => {
    const sim = new Sim(parallel());
    sim.start("e1");
    const job = sim.job("Src");
    sim.apply({ type: "JobCompleted", result: { ...success(job), status: "Failed", outputArtifacts: [] } });
    expect(sim.exec("e1").statusSummary).toBe('Action "Src" in stage "Source" failed: the job failed');
  });
});

describe("SUPERSEDED: stage locks and waiters", () => {
  it("makes a second execution wait in front of a locked stage", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    const d = sim.start("e2");
    expect(d.commands).toEqual([]);
    expect(sim.exec("e2")).toMatchObject({ status: "InProgress", waitingFor: "Source" });
    expect(sim.exec("e2").currentStage).toBeUndefined();
    expect(sim.slot("Source")).toMatchObject({ lock: "e1", waiting: "e2" });
  });

  it("supersedes the older waiter when a newer execution arrives", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.start("e2");
    const d = sim.start("e3");
    expect(sim.exec("e2")).toMatchObject({ status: "Superseded", statusSummary: "Superseded by pipeline execution e3" });
    expect(sim.exec("e2").waitingFor).toBeUndefined();
    expect(sim.slot("Source").waiting).toBe("e3");
    expect(d.state.finished).toEqual(["e2"]);
    expect(d.events.map((e) => [e.event.executionId, e.event.state])).toEqual([
      ["e3", "STARTED"],
      ["e2", "SUPERSEDED"],
    ]);
  });

  it("lets the waiter enter when the stage unlocks on success", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.start("e2");
    const d = sim.succeed("Src", "e1");
    expect(sim.slot("Source").lock).toBe("e2");
    expect(sim.slot("Build").lock).toBe("e1");
    expect(sim.exec("e2").currentStage).toBe("Source");
    expect(jobsOf(d).map((c) => [c.pipelineExecutionId, c.actionName])).toEqual([
      ["e1", "Compile"],
      ["e2", "Src"],
    ]);
  });

  it("lets the waiter enter when the stage unlocks on failure", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.start("e2");
    sim.fail("Src", "no such branch", "e1");
    expect(sim.exec("e1").status).toBe("Failed");
    expect(sim.slot("Source").lock).toBe("e2");
    expect(sim.job("Src", "e2").pipelineExecutionId).toBe("e2");
  });

  it("supersedes only between stages: an execution inside a stage is never superseded", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.succeed("Src", "e1"); // e1 in Build
    sim.start("e2");
    sim.succeed("Src", "e2"); // e2 waits in front of Build
    expect(sim.slot("Build")).toMatchObject({ lock: "e1", waiting: "e2" });
    sim.start("e3");
    sim.succeed("Src", "e3"); // e3 replaces e2 in front of Build
    expect(sim.exec("e2").status).toBe("Superseded");
    expect(sim.exec("e1").status).toBe("InProgress");
    expect(sim.slot("Build")).toMatchObject({ lock: "e1", waiting: "e3" });
    sim.succeed("Compile", "e1");
    expect(sim.slot("Build").lock).toBe("e3");
    expect(sim.job("Compile", "e3").inputArtifactIds).toEqual([`${sim.job("Src", "e3").actionExecutionId}/SrcOut`]);
  });
});

describe("result acceptance", () => {
  it("ignores a result for another attempt, leaving the state untouched", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    const before = sim.state;
    const d = sim.apply({ type: "JobCompleted", result: success(sim.job("Src"), { attempt: 2 }) });
    expect(d.ignored).toBe("result for attempt 2 of action execution id-1, which is at attempt 1");
    expect(d.state).toBe(before);
    expect(d.commands).toEqual([]);
    expect(d.events).toEqual([]);
  });

  it("ignores a duplicate of an accepted result", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    const result = success(sim.job("Src"));
    expect(sim.apply({ type: "JobCompleted", result }).ignored).toBeUndefined();
    const before = sim.state;
    const d = sim.apply({ type: "JobCompleted", result: { ...result, status: "Failed" } });
    expect(d.ignored).toBe("action execution id-1 already ended Succeeded");
    expect(d.state).toBe(before);
  });

  it("ignores results for unknown executions and unknown action executions", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    const job = sim.job("Src");
    expect(sim.apply({ type: "JobCompleted", result: success(job, { pipelineExecutionId: "nope" }) }).ignored).toBe("execution nope is not in flight");
    expect(sim.apply({ type: "JobCompleted", result: success(job, { actionExecutionId: "nope" }) }).ignored).toBe("action execution nope is unknown in execution e1");
  });

  it("never changes a terminal execution", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.start("e2");
    sim.start("e3"); // e2 superseded
    const e2 = structuredClone(sim.exec("e2"));
    sim.fail("Src", "x", "e1");
    const e1 = structuredClone(sim.exec("e1"));
    const d = sim.apply({ type: "JobCompleted", result: success(sim.job("Src", "e1")) });
    expect(d.ignored).toBe("execution e1 already ended Failed");
    sim.succeed("Src", "e3");
    expect(sim.exec("e1")).toEqual(e1);
    expect(sim.exec("e2")).toEqual(e2);
  });
});

describe("variables", () => {
  const withVariables = (config: Record<string, string>, env: { name: string; value: string; type: string }[] = []): PipelineSpec =>
    pipelineSpec([
      ["Source", [sourceSpec("Src", "SrcOut", { namespace: "SourceVariables" })]],
      ["Build", [actionSpec("Compile", { configuration: config, environmentVariables: env })]],
    ]);

  it("resolves #{ns.key} and #{codepipeline.PipelineExecutionId} just before dispatch", () => {
    const sim = new Sim(
      withVariables(
        { Ref: "#{SourceVariables.CommitId}@#{SourceVariables.BranchName}", Run: "#{codepipeline.PipelineExecutionId}", Plain: "#{not a ref}" },
        [{ name: "COMMIT", value: "#{SourceVariables.CommitId}", type: "PLAINTEXT" }],
      ),
    );
    sim.start("e1");
    sim.succeed("Src", undefined, { outputVariables: { CommitId: "c0ffee", BranchName: "main" } });
    expect(sim.exec("e1").variables).toEqual({ SourceVariables: { CommitId: "c0ffee", BranchName: "main" } });
    const job = sim.job("Compile");
    expect(job.configuration).toEqual({ Ref: "c0ffee@main", Run: "e1", Plain: "#{not a ref}" });
    expect(job.environmentVariables).toEqual([{ name: "COMMIT", value: "c0ffee", type: "PLAINTEXT" }]);
    const run = sim.exec("e1").stages[1]?.actions[0];
    expect(run?.resolvedConfiguration).toEqual(job.configuration);
    expect(sim.exec("e1").stages[0]?.actions[0]?.outputVariables).toEqual({ CommitId: "c0ffee", BranchName: "main" });
  });

  it("fails the action without dispatching it when a reference cannot be resolved", () => {
    const sim = new Sim(withVariables({ Ref: "#{SourceVariables.Missing}" }));
    sim.start("e1");
    const d = sim.succeed("Src", undefined, { outputVariables: { CommitId: "c0ffee" } });
    expect(d.commands).toEqual([]);
    const exec = sim.exec("e1");
    expect(exec.status).toBe("Failed");
    const compile = exec.stages[1]?.actions[0];
    expect(compile?.status).toBe("Failed");
    expect(compile?.errorDetails?.code).toBe("ConfigurationError");
    expect(compile?.errorDetails?.message).toContain("configuration Ref: variable #{SourceVariables.Missing} cannot be resolved");
    expect(exec.statusSummary).toContain("#{SourceVariables.Missing}");
    expect(sim.slot("Build").lock).toBeUndefined();
  });

  it("fails on an unresolvable reference in a plaintext environment variable", () => {
    const sim = new Sim(withVariables({}, [{ name: "X", value: "#{Other.Key}", type: "PLAINTEXT" }]));
    sim.start("e1");
    expect(sim.succeed("Src").commands).toEqual([]);
    expect(sim.exec("e1").statusSummary).toContain("environment variable X: variable #{Other.Key}");
  });

  it("fails an action whose result carries an invalid output variable name", () => {
    const sim = new Sim(withVariables({}));
    sim.start("e1");
    sim.succeed("Src", undefined, { outputVariables: { "bad.key": "v" } });
    expect(sim.exec("e1").statusSummary).toContain('output variable name "bad.key" is invalid');
  });
});

describe("source changes", () => {
  const sourceChanged = (executionId: string, revisionId: string): ExecutionEvent => ({
    type: "SourceChanged",
    executionId,
    actionName: "Src",
    revision: { actionName: "Src", revisionId, revisionSummary: `commit ${revisionId}` },
    trigger: { triggerType: "PollForSourceChanges", triggerDetail: "Src" },
  });

  it("starts an execution whose source action fetches the pinned revision", () => {
    const sim = new Sim(threeStages());
    const d = sim.apply(sourceChanged("e1", "r1"));
    expect(jobsOf(d)[0]?.sourceRevision).toBe("r1");
    expect(sim.exec("e1")).toMatchObject({ trigger: { triggerType: "PollForSourceChanges" }, pinnedRevisions: [{ actionName: "Src", revisionId: "r1" }] });
  });

  it("ignores a revision that an in-flight execution runs", () => {
    const sim = new Sim(threeStages());
    sim.apply(sourceChanged("e1", "r1"));
    sim.state = { ...sim.state, lastSourceRevisions: [] }; // only the in-flight pin can dedupe now
    const dup = sim.apply(sourceChanged("e2", "r1"));
    expect(dup.ignored).toBe("revision r1 of Src is being run by execution e1");
    expect(dup.executionId).toBe("e1");
  });

  it("ignores the revision last started or fetched, and starts on a new one", () => {
    const sim = new Sim(threeStages());
    sim.apply(sourceChanged("e1", "r1"));
    sim.succeed("Src", "e1", { revision: { revisionId: "r1" } });
    sim.succeed("Compile", "e1");
    sim.succeed("Ship", "e1");
    delete sim.state.executions["e1"]; // archived by the shell
    const dup = sim.apply(sourceChanged("e2", "r1"));
    expect(dup.ignored).toBe("revision r1 of Src was already started");
    expect(dup.executionId).toBeUndefined(); // the execution that ran it is archived
    expect(jobsOf(sim.apply(sourceChanged("e3", "r2")))[0]?.sourceRevision).toBe("r2");
  });

  it("counts a revision fetched by a manual start as seen", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.succeed("Src", "e1", { revision: { revisionId: "r5" } });
    const dup = sim.apply(sourceChanged("e2", "r5"));
    expect(dup.ignored).toBe("revision r5 of Src was already started");
    expect(dup.executionId).toBe("e1");
  });

  it("ignores a change of an action that is not a source action", () => {
    const sim = new Sim(threeStages());
    const d = sim.apply({ ...sourceChanged("e1", "r1"), actionName: "Compile" } as ExecutionEvent);
    expect(d.ignored).toBe('"Compile" is not a source action of pipeline demo');
  });

  it("dispatches source actions of a manual start without a pinned revision", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    expect(sim.job("Src").sourceRevision).toBeUndefined();
  });
});

describe("manual approval", () => {
  const withApproval = (): PipelineSpec =>
    pipelineSpec([
      ["Source", [sourceSpec("Src", "SrcOut")]],
      ["Approve", [approvalSpec("Gate")]],
    ]);

  it("gives the approval job a token, shown as the action's latest execution", () => {
    const sim = new Sim(withApproval());
    sim.start("e1");
    sim.succeed("Src");
    const job = sim.job("Gate");
    expect(job.approvalToken).toBe("id-3");
    expect(job.category).toBe("Approval");
    expect(job.builtIn).toBe("Manual");
    expect(job.deadline).toBe(sim.ctx.now + 10080 * 60_000);
    expect(sim.slot("Approve").actions[0]?.latest).toMatchObject({ status: "InProgress", token: "id-3", actionExecutionId: "id-2" });
    sim.apply({ type: "JobCompleted", result: failure(job, "Rejected by bob", { updatedBy: "bob", errorDetails: { code: "Rejected", message: "Rejected by bob" } }) });
    expect(sim.exec("e1").status).toBe("Failed");
    expect(sim.slot("Approve").actions[0]?.latest).toMatchObject({ status: "Failed", updatedBy: "bob", token: "id-3" });
  });
});

describe("timeouts", () => {
  it("fails an action still running after its deadline plus grace", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    const job = sim.job("Src");
    expect(nextDeadline(sim.state)).toBe(job.deadline + TIMEOUT_GRACE_MS);
    sim.ctx.now = job.deadline + TIMEOUT_GRACE_MS - 1;
    expect(sim.apply({ type: "TimerFired" }).ignored).toBe("no deadline is due");
    sim.ctx.now += 1;
    const d = sim.apply({ type: "TimerFired" });
    expect(sim.exec("e1").status).toBe("Failed");
    expect(sim.exec("e1").stages[0]?.actions[0]?.errorDetails).toEqual({ code: "JobTimedOut", message: 'action "Src" timed out after 20 minutes' });
    expect(d.commands).toContainEqual({ type: "CancelJob", jobId: job.jobId, actionExecutionId: job.actionExecutionId, pipelineName: "demo", reason: 'action "Src" timed out after 20 minutes' });
    expect(nextDeadline(sim.state)).toBeUndefined();
    expect(sim.apply({ type: "JobCompleted", result: success(job) }).ignored).toBe("execution e1 already ended Failed");
  });
});

describe("PipelineDeleted", () => {
  it("cancels every in-flight execution, abandons running actions and frees the stages", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.start("e2");
    const d = sim.apply({ type: "PipelineDeleted" });
    expect(sim.exec("e1")).toMatchObject({ status: "Cancelled", statusSummary: "The pipeline was deleted" });
    expect(sim.exec("e2").status).toBe("Cancelled");
    expect(sim.exec("e1").stages[0]?.actions[0]?.status).toBe("Abandoned");
    expect(d.state.finished.sort()).toEqual(["e1", "e2"]);
    expect(sim.state.stages.every((s) => s.lock === undefined && s.waiting === undefined)).toBe(true);
    expect(sim.trail("e1").slice(-3)).toEqual(["action:Source/Src:ABANDONED", "stage:Source:CANCELED", "pipeline::CANCELED"]);
    expect(sim.apply({ type: "PipelineDeleted" }).ignored).toBe("no execution in flight");
  });
});

describe("emitted events", () => {
  it("carry EventBridge detail-types, unique ids and the action type", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.succeed("Src", undefined, { externalExecutionId: "abc", summary: "fetched" });
    const byKind = (k: Emitted["kind"]) => sim.events.filter((e) => e.kind === k).map((e) => e.event.detailType);
    expect(new Set(byKind("pipeline"))).toEqual(new Set([DETAIL_TYPES.pipeline]));
    expect(new Set(byKind("stage"))).toEqual(new Set([DETAIL_TYPES.stage]));
    expect(new Set(byKind("action"))).toEqual(new Set([DETAIL_TYPES.action]));
    expect(new Set(sim.events.map((e) => e.event.eventId)).size).toBe(sim.events.length);
    const succeeded = sim.events.find((e) => e.kind === "action" && e.event.state === "SUCCEEDED");
    expect(succeeded?.event).toMatchObject({
      pipeline: "demo",
      version: 1,
      stage: "Source",
      action: "Src",
      time: sim.ctx.now,
      type: { owner: "AWS", category: "Source", provider: "Git", version: "1" },
      executionResult: { externalExecutionId: "abc", externalExecutionSummary: "fetched" },
    });
  });
});

describe("PipelineUpdated", () => {
  const v2 = (): PipelineSpec => ({
    ...pipelineSpec([
      ["Source", [sourceSpec("Src", "SrcOut")]],
      ["Build", [actionSpec("Compile", { inputArtifacts: ["SrcOut"] })]],
    ]),
    version: 2,
  });

  it("cancels waiters at once and running executions when their running actions finish", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.start("e2"); // waits in front of Source
    const d = sim.apply({ type: "PipelineUpdated", spec: v2() });
    expect(sim.exec("e2")).toMatchObject({ status: "Cancelled", statusSummary: "Cancelled by the update of the pipeline to version 2" });
    expect(d.state.finished).toEqual(["e2"]);
    expect(sim.exec("e1").status).toBe("InProgress");
    expect(sim.slot("Source")).toMatchObject({ lock: "e1" });
    expect(sim.slot("Source").waiting).toBeUndefined();
    // A new execution on version 2 waits for the stage e1 still occupies.
    sim.start("e3");
    expect(sim.exec("e3")).toMatchObject({ pipelineVersion: 2, waitingFor: "Source" });
    const end = sim.succeed("Src", "e1");
    expect(sim.exec("e1")).toMatchObject({ status: "Cancelled", statusSummary: "Cancelled by the update of the pipeline to version 2" });
    expect(sim.exec("e1").stages.map((s) => [s.name, s.status])).toEqual([["Source", "Cancelled"]]);
    expect(jobsOf(end).map((c) => [c.pipelineExecutionId, c.actionName, c.pipelineVersion])).toEqual([["e3", "Src", 2]]);
    expect(sim.trail("e1").slice(-3)).toEqual(["action:Source/Src:SUCCEEDED", "stage:Source:CANCELED", "pipeline::CANCELED"]);
    sim.succeed("Src", "e3");
    sim.succeed("Compile", "e3");
    expect(sim.exec("e3").status).toBe("Succeeded");
  });

  it("finishes the cancellation when the running action was removed by the update", () => {
    const sim = new Sim(threeStages());
    sim.start("e1");
    sim.succeed("Src");
    sim.succeed("Compile"); // e1 runs Ship in Deploy, a stage v2 does not have
    sim.apply({ type: "PipelineUpdated", spec: v2() });
    expect(sim.state.stages.map((s) => s.name)).toEqual(["Source", "Build"]);
    sim.fail("Ship", "late failure", "e1");
    expect(sim.exec("e1").status).toBe("Cancelled");
    const failed = sim.events.find((e) => e.event.action === "Ship" && e.event.state === "FAILED");
    expect(failed?.event.type).toBeUndefined();
  });

  it("ignores an update to a version that is not newer", () => {
    const sim = new Sim(threeStages());
    expect(sim.apply({ type: "PipelineUpdated", spec: { ...v2(), version: 1 } }).ignored).toBe("pipeline demo already runs version 1");
  });
});
