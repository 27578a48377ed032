// Example tests of stage conditions, one `describe` per rule family: stage
// conditions (beforeEntry, onSuccess, onFailure), the VariableCheck and
// Commands rules, automatic retry, OverrideStageCondition and rollback.

import { describe, expect, it } from "vitest";
import { DEFAULT_RULE_TIMEOUT_MINUTES, MAX_ROLLBACK_TARGETS, TIMEOUT_GRACE_MS } from "../limits.js";
import { variableCheck } from "./conditions.js";
import { actionSpec, commandsRule, failure, jobsOf, pipelineSpec, Sim, sourceSpec, success, variableCheckRule } from "./testing.js";
import type { ExecutionEvent, ExecutionMode, PipelineSpec, StageSpec } from "./types.js";
import { executionSummaryView, executionView, pipelineStateView } from "./views.js";

/** Source (namespace SourceVariables) → Build (Compile makes BuildOut) → Deploy (Ship uses BuildOut), with extra stage settings. */
function pipeline(over: Partial<Record<"Build" | "Deploy", Partial<StageSpec>>> = {}, mode: ExecutionMode = "SUPERSEDED"): PipelineSpec {
  const spec = pipelineSpec(
    [
      ["Source", [sourceSpec("Src", "SrcOut", { namespace: "SourceVariables" })]],
      ["Build", [actionSpec("Compile", { inputArtifacts: ["SrcOut"], outputArtifacts: [{ name: "BuildOut", files: [] }], namespace: "BuildVariables", outputVariables: ["Image"] })]],
      ["Deploy", [actionSpec("Ship", { category: "Deploy", inputArtifacts: ["BuildOut"], configuration: { Image: "#{BuildVariables.Image}" } })]],
    ],
    "demo",
    mode,
  );
  spec.stages = spec.stages.map((s) => ({ ...s, ...(over[s.name as "Build" | "Deploy"] ?? {}) }));
  return spec;
}

/** Runs the Source stage of `id` on branch `branch`. */
function source(sim: Sim, id: string, branch = "main"): void {
  sim.succeed("Src", id, { revision: { revisionId: `rev-${id}` }, outputVariables: { BranchName: branch, CommitId: `rev-${id}` } });
}

/** Runs Source and Build of `id`. */
function build(sim: Sim, id: string, image = `img-${id}`): void {
  source(sim, id);
  sim.succeed("Compile", id, { outputVariables: { Image: image } });
}

/** Runs `id` to the end. */
function deployOk(sim: Sim, id: string): void {
  build(sim, id);
  sim.succeed("Ship", id);
}

const onMain = { conditions: [{ result: "FAIL" as const, rules: [variableCheckRule("OnMain", "#{SourceVariables.BranchName}", "EQ", "main")] }] };
const override = (executionId: string, stageName: string, conditionType: "BEFORE_ENTRY" | "ON_SUCCESS"): ExecutionEvent => ({
  type: "ConditionOverridden",
  executionId,
  stageName,
  conditionType,
  by: "erin",
});
const rollback = (executionId: string, targetExecutionId: string, stageName = "Deploy"): ExecutionEvent => ({
  type: "RollbackRequested",
  executionId,
  stageName,
  targetExecutionId,
  trigger: { triggerType: "ManualRollback", triggerDetail: "frank" },
});

describe("beforeEntry conditions", () => {
  it("all rules pass: the stage's actions run; the check is recorded as Succeeded", () => {
    const sim = new Sim(pipeline({ Build: { beforeEntry: onMain } }));
    sim.start("e1");
    const d = sim.apply({ type: "JobCompleted", result: success(sim.job("Src", "e1"), { outputVariables: { BranchName: "main" } }) });
    expect(jobsOf(d).map((j) => j.actionName)).toEqual(["Compile"]);
    const run = sim.exec("e1").stages[1];
    expect(run?.conditions).toMatchObject([{ conditionType: "BEFORE_ENTRY", result: "FAIL", status: "Succeeded", rules: [{ name: "OnMain", status: "Succeeded" }] }]);
    expect(run?.conditions?.[0]?.rules[0]?.summary).toBe('#{SourceVariables.BranchName} is "main": EQ "main" holds');
    expect(sim.slot("Build").conditions?.[0]?.status).toBe("Succeeded");
  });

  it("FAIL: a failing rule fails the stage and the execution before any action runs; the lock goes to the waiter", () => {
    const sim = new Sim(pipeline({ Build: { beforeEntry: onMain } }));
    sim.start("e1");
    sim.start("e2"); // waits in front of Source
    source(sim, "e1", "feature");
    expect(sim.exec("e1")).toMatchObject({ status: "Failed", statusSummary: expect.stringContaining('Stage "Build" failed its BEFORE_ENTRY condition: Rule "OnMain" failed') as string });
    expect(sim.exec("e1").stages[1]).toMatchObject({ status: "Failed", failedBy: "BEFORE_ENTRY", actions: [] });
    expect(sim.jobs.some((j) => j.actionName === "Compile")).toBe(false);
    expect(sim.slot("Build").lock).toBeUndefined();
    expect(sim.slot("Source").lock).toBe("e2");
  });

  it("SKIP: the stage is Skipped (event SKIPPED) and the execution continues with the next stage", () => {
    const skip = { conditions: [{ result: "SKIP" as const, rules: [variableCheckRule("OnMain", "#{SourceVariables.BranchName}", "EQ", "main")] }] };
    const spec = pipelineSpec([
      ["Source", [sourceSpec("Src", "SrcOut", { namespace: "SourceVariables" })]],
      ["Lint", [actionSpec("Lint", { inputArtifacts: ["SrcOut"] })]],
      ["Deploy", [actionSpec("Ship", { inputArtifacts: ["SrcOut"] })]],
    ]);
    spec.stages = spec.stages.map((s) => (s.name === "Lint" ? { ...s, beforeEntry: skip } : s));
    const sim = new Sim(spec);
    sim.start("e1");
    const d = sim.apply({ type: "JobCompleted", result: success(sim.job("Src", "e1"), { outputVariables: { BranchName: "dev" } }) });
    expect(jobsOf(d).map((j) => j.actionName)).toEqual(["Ship"]);
    expect(sim.exec("e1").stages.map((s) => [s.name, s.status])).toEqual([
      ["Source", "Succeeded"],
      ["Lint", "Skipped"],
      ["Deploy", "InProgress"],
    ]);
    expect(sim.slot("Lint")).toMatchObject({ latest: { pipelineExecutionId: "e1", status: "Skipped" } });
    expect(sim.slot("Lint").lock).toBeUndefined();
    expect(sim.trail("e1")).toContain("stage:Lint:SKIPPED");
    sim.succeed("Ship", "e1");
    expect(sim.exec("e1").status).toBe("Succeeded");
  });

  it("a retry of a stage that failed its entry check checks it again", () => {
    const sim = new Sim(pipeline({ Build: { beforeEntry: { conditions: [{ result: "FAIL", rules: [commandsRule("Gate")] }] } } }));
    sim.start("e1");
    source(sim, "e1");
    sim.fail("Gate", "not yet", "e1");
    expect(sim.exec("e1").status).toBe("Failed");
    sim.archive();
    const d = sim.apply({ type: "StageRetryRequested", executionId: "e1", stageName: "Build", retryMode: "FAILED_ACTIONS", by: "carol" });
    expect(jobsOf(d).map((j) => [j.category, j.actionName])).toEqual([["Rule", "Gate"]]);
    sim.succeed("Gate", "e1");
    expect(sim.job("Compile", "e1").attempt).toBe(1);
    expect(sim.exec("e1").stages[1]?.conditions?.map((c) => c.status)).toEqual(["Failed", "Succeeded"]);
  });
});

describe("Commands rules", () => {
  const gate = (over = {}) => ({ conditions: [{ result: "FAIL" as const, rules: [commandsRule("Smoke", { inputArtifacts: ["SrcOut"], ...over })] }] });

  it("run on a runner as a Rule/Commands job with the rule's commands and inputs; the stage waits for the result", () => {
    const sim = new Sim(pipeline({ Build: { beforeEntry: gate() } }));
    sim.start("e1");
    const d = sim.succeed("Src", "e1");
    const [job] = jobsOf(d);
    expect(job).toMatchObject({
      pool: "default",
      category: "Rule",
      builtIn: "Commands",
      actionName: "Smoke",
      stageName: "Build",
      actionTypeId: { category: "Rule", owner: "AWS", provider: "Commands", version: "1" },
      commands: ["./check.sh"],
      attempt: 1,
      outputNames: [],
    });
    expect(job?.inputArtifactIds).toEqual([sim.exec("e1").artifacts[0]?.artifactId]);
    expect(job?.deadline).toBe(sim.ctx.now + DEFAULT_RULE_TIMEOUT_MINUTES * 60_000);
    expect(sim.exec("e1").stages[1]?.actions).toEqual([]);
    const next = sim.succeed("Smoke", "e1", { updatedBy: "runner-1", externalExecutionId: "x-1" });
    expect(jobsOf(next).map((j) => j.actionName)).toEqual(["Compile"]);
    expect(sim.exec("e1").stages[1]?.conditions?.[0]?.rules[0]).toMatchObject({ status: "Succeeded", updatedBy: "runner-1", externalExecutionId: "x-1" });
  });

  it("a failed job fails the rule (condition Failed); a second result for it is ignored", () => {
    const sim = new Sim(pipeline({ Build: { beforeEntry: gate() } }));
    sim.start("e1");
    sim.succeed("Src", "e1");
    sim.fail("Smoke", "exit code 3", "e1");
    expect(sim.exec("e1").stages[1]?.conditions?.[0]).toMatchObject({ status: "Failed", rules: [{ status: "Failed", errorDetails: { code: "JobFailed", message: "exit code 3" } }] });
    expect(sim.fail("Smoke", "again", "e1").ignored).toBe("execution e1 already ended Failed");
  });

  it("a rule past its deadline times out (condition Errored) and its job is cancelled", () => {
    const sim = new Sim(pipeline({ Build: { beforeEntry: gate({ timeoutInMinutes: 5 }) } }));
    sim.start("e1");
    sim.succeed("Src", "e1");
    const smoke = sim.job("Smoke", "e1");
    sim.ctx.now = smoke.deadline + TIMEOUT_GRACE_MS;
    const d = sim.apply({ type: "TimerFired" });
    expect(d.commands).toContainEqual({ type: "CancelJob", jobId: smoke.jobId, actionExecutionId: smoke.actionExecutionId, pipelineName: "demo", reason: 'rule "Smoke" timed out after 5 minutes' });
    expect(sim.exec("e1").stages[1]?.conditions?.[0]?.status).toBe("Errored");
    expect(sim.exec("e1").status).toBe("Failed");
  });

  it("the first failing rule fails the condition at once; the others are abandoned and their jobs cancelled", () => {
    const sim = new Sim(
      pipeline({ Build: { beforeEntry: { conditions: [{ result: "FAIL", rules: [commandsRule("Slow"), variableCheckRule("OnMain", "#{SourceVariables.BranchName}", "EQ", "main")] }] } } }),
    );
    sim.start("e1");
    const d = sim.apply({ type: "JobCompleted", result: success(sim.job("Src", "e1"), { outputVariables: { BranchName: "dev" } }) });
    const slow = sim.job("Slow", "e1");
    expect(d.commands).toContainEqual(expect.objectContaining({ type: "CancelJob", jobId: slow.jobId }));
    expect(sim.exec("e1").stages[1]?.conditions?.[0]?.rules.map((r) => r.status)).toEqual(["Abandoned", "Failed"]);
    expect(sim.exec("e1").status).toBe("Failed");
  });

  it("a stop abandons a running check: its jobs are cancelled and the condition is Cancelled (stop and wait) or Abandoned", () => {
    for (const abandon of [false, true]) {
      const sim = new Sim(pipeline({ Build: { beforeEntry: gate() } }));
      sim.start("e1");
      sim.succeed("Src", "e1");
      const d = sim.apply({ type: "StopRequested", executionId: "e1", abandon, reason: "enough", by: "bob" });
      expect(d.commands.map((c) => c.type)).toEqual(["CancelJob"]);
      expect(sim.exec("e1")).toMatchObject({ status: "Stopped" });
      expect(sim.exec("e1").stages[1]?.conditions?.[0]?.status).toBe(abandon ? "Abandoned" : "Cancelled");
      expect(sim.slot("Build").lock).toBeUndefined();
    }
  });
});

describe("VariableCheck rules", () => {
  const check = (operator: string, actual: string, expected: string) =>
    variableCheck("#{A.b}", { Variable: actual, Operator: operator, Value: expected });

  it("EQ, NE, CONTAINS compare strings", () => {
    expect([check("EQ", "main", "main").passed, check("EQ", "main", "Main").passed]).toEqual([true, false]);
    expect([check("NE", "main", "dev").passed, check("NE", "main", "main").passed]).toEqual([true, false]);
    expect([check("CONTAINS", "fix: update deps", "update").passed, check("CONTAINS", "fix", "update").passed]).toEqual([true, false]);
  });

  it("MATCHES needs the whole value to match the pattern (Java's String.matches) and runs in linear time", () => {
    expect(check("MATCHES", "release/1.2", "release/[0-9]+\\.[0-9]+").passed).toBe(true);
    expect(check("MATCHES", "hotfix/release/1.2", "release/.*").passed).toBe(false);
    expect(check("MATCHES", "a".repeat(50_000) + "!", "(a+)+$").passed).toBe(false);
  });

  it("an unusable pattern or operator is an evaluation error, not a plain failure", () => {
    expect(check("MATCHES", "x", "(?=x)x")).toMatchObject({ passed: false, error: { code: "ConfigurationError" } });
    expect(check("GT", "2", "1")).toMatchObject({ passed: false, error: { code: "ConfigurationError" } });
  });

  it("an unresolvable variable fails the rule as Errored, naming the reference", () => {
    const sim = new Sim(pipeline({ Build: { beforeEntry: { conditions: [{ result: "FAIL", rules: [variableCheckRule("Tag", "#{SourceVariables.Tag}", "EQ", "v1")] }] } } }));
    sim.start("e1");
    source(sim, "e1");
    const cond = sim.exec("e1").stages[1]?.conditions?.[0];
    expect(cond?.status).toBe("Errored");
    expect(cond?.rules[0]?.errorDetails?.message).toBe(
      "configuration Variable: variable #{SourceVariables.Tag} cannot be resolved (no earlier action of this execution produced it)",
    );
  });

  it("Value may reference variables too (pipeline variables here)", () => {
    const spec = pipeline({ Build: { beforeEntry: { conditions: [{ result: "FAIL", rules: [variableCheckRule("Branch", "#{SourceVariables.BranchName}", "EQ", "#{variables.Branch}")] }] } } });
    const sim = new Sim({ ...spec, variables: [{ name: "Branch", defaultValue: "main" }] });
    sim.start("e1", { variables: [{ name: "Branch", value: "dev" }] });
    source(sim, "e1", "dev");
    expect(sim.exec("e1").stages[1]?.conditions?.[0]?.rules[0]?.resolvedConfiguration).toEqual({ Variable: "dev", Operator: "EQ", Value: "dev" });
    expect(sim.job("Compile", "e1")).toBeDefined();
  });
});

describe("onSuccess conditions", () => {
  const alarmFree = (result: "FAIL" | "ROLLBACK") => ({ conditions: [{ result, rules: [commandsRule("NoAlarm")] }] });

  it("checked after every action succeeded; passing lets the execution move on", () => {
    const sim = new Sim(pipeline({ Deploy: { onSuccess: alarmFree("FAIL") } }));
    sim.start("e1");
    build(sim, "e1");
    const d = sim.succeed("Ship", "e1");
    expect(jobsOf(d).map((j) => j.actionName)).toEqual(["NoAlarm"]);
    expect(sim.exec("e1")).toMatchObject({ status: "InProgress", currentStage: "Deploy" });
    expect(sim.slot("Deploy").lock).toBe("e1");
    sim.succeed("NoAlarm", "e1");
    expect(sim.exec("e1").status).toBe("Succeeded");
  });

  it("FAIL: the stage and the execution fail; a retry checks the condition again without rerunning the actions", () => {
    const sim = new Sim(pipeline({ Deploy: { onSuccess: alarmFree("FAIL") } }));
    sim.start("e1");
    build(sim, "e1");
    sim.succeed("Ship", "e1");
    sim.fail("NoAlarm", "alarm", "e1");
    expect(sim.exec("e1").stages[2]).toMatchObject({ status: "Failed", failedBy: "ON_SUCCESS" });
    sim.archive();
    const d = sim.apply({ type: "StageRetryRequested", executionId: "e1", stageName: "Deploy", retryMode: "FAILED_ACTIONS", by: "carol" });
    expect(jobsOf(d).map((j) => j.actionName)).toEqual(["NoAlarm"]);
    sim.succeed("NoAlarm", "e1");
    expect(sim.exec("e1").status).toBe("Succeeded");
  });

  it("ROLLBACK: the stage fails and a ROLLBACK execution reruns it with the latest successful execution's inputs", () => {
    const sim = new Sim(pipeline({ Deploy: { onSuccess: alarmFree("ROLLBACK") } }));
    sim.start("e1");
    deployOk(sim, "e1");
    sim.succeed("NoAlarm", "e1");
    sim.archive();
    sim.start("e2");
    build(sim, "e2");
    sim.succeed("Ship", "e2");
    const d = sim.fail("NoAlarm", "alarm", "e2");
    const rb = Object.values(sim.state.executions).find((e) => e.executionType === "ROLLBACK");
    expect(rb).toMatchObject({
      trigger: { triggerType: "AutomatedRollback", triggerDetail: "e2" },
      rollbackMetadata: { rollbackTargetPipelineExecutionId: "e1" },
      currentStage: "Deploy",
      sourceRevisions: [{ actionName: "Src", revisionId: "rev-e1" }],
    });
    expect(sim.exec("e2").statusSummary).toContain(`rolled back to pipeline execution e1 by pipeline execution ${rb?.id ?? ""}`);
    const ship = jobsOf(d).find((j) => j.actionName === "Ship");
    expect(ship).toMatchObject({ pipelineExecutionId: rb?.id, configuration: { Image: "img-e1" } });
    expect(ship?.inputArtifactIds).toEqual([sim.jobs.find((j) => j.actionName === "Compile" && j.pipelineExecutionId === "e1")?.actionExecutionId + "/BuildOut"]);
    expect(sim.slot("Deploy")).toMatchObject({ lock: rb?.id, latest: { pipelineExecutionId: rb?.id, status: "InProgress" } });
  });

  it("ROLLBACK without an earlier successful execution only fails, and says there is nothing to roll back to", () => {
    const sim = new Sim(pipeline({ Deploy: { onSuccess: alarmFree("ROLLBACK") } }));
    sim.start("e1");
    build(sim, "e1");
    sim.succeed("Ship", "e1");
    sim.fail("NoAlarm", "alarm", "e1");
    expect(sim.exec("e1").statusSummary).toContain("nothing to roll back to");
    expect(Object.values(sim.state.executions).some((e) => e.executionType === "ROLLBACK")).toBe(false);
  });
});

describe("onFailure: automatic retry", () => {
  const retry = (retryMode: "FAILED_ACTIONS" | "ALL_ACTIONS") => ({ onFailure: { result: "RETRY" as const, retryConfiguration: { retryMode }, conditions: [] } });
  const twoActions = (mode: "FAILED_ACTIONS" | "ALL_ACTIONS"): PipelineSpec => {
    const spec = pipeline({ Build: retry(mode) });
    const build = spec.stages[1];
    if (build !== undefined) build.actions = [...build.actions, actionSpec("Lint", { inputArtifacts: ["SrcOut"] })];
    return spec;
  };

  it("FAILED_ACTIONS: the failed action reruns once at once; retryStageMetadata counts it as AutomatedStageRetry", () => {
    const sim = new Sim(twoActions("FAILED_ACTIONS"));
    sim.start("e1");
    source(sim, "e1");
    sim.succeed("Lint", "e1");
    const d = sim.fail("Compile", "flaky", "e1");
    expect(jobsOf(d).map((j) => [j.actionName, j.attempt])).toEqual([["Compile", 2]]);
    expect(sim.exec("e1")).toMatchObject({ status: "InProgress", currentStage: "Build" });
    expect(sim.slot("Build").retryStageMetadata).toEqual({ autoStageRetryAttempt: 1, manualStageRetryAttempt: 0, latestRetryTrigger: "AutomatedStageRetry" });
    sim.succeed("Compile", "e1", { outputVariables: { Image: "i" } });
    expect(sim.exec("e1").currentStage).toBe("Deploy");
  });

  it("ALL_ACTIONS reruns every action of the stage", () => {
    const sim = new Sim(twoActions("ALL_ACTIONS"));
    sim.start("e1");
    source(sim, "e1");
    sim.succeed("Lint", "e1");
    const d = sim.fail("Compile", "flaky", "e1");
    expect(jobsOf(d).map((j) => [j.actionName, j.attempt])).toEqual([
      ["Compile", 2],
      ["Lint", 2],
    ]);
  });

  it("one automatic attempt per failure: the retry's own failure fails the stage; a manual retry re-arms it", () => {
    const sim = new Sim(twoActions("FAILED_ACTIONS"));
    sim.start("e1");
    source(sim, "e1");
    sim.succeed("Lint", "e1");
    sim.fail("Compile", "flaky", "e1");
    sim.fail("Compile", "still", "e1");
    expect(sim.exec("e1").status).toBe("Failed");
    sim.apply({ type: "StageRetryRequested", executionId: "e1", stageName: "Build", retryMode: "FAILED_ACTIONS", by: "carol" });
    expect(sim.slot("Build").retryStageMetadata).toEqual({ autoStageRetryAttempt: 1, manualStageRetryAttempt: 1, latestRetryTrigger: "ManualStageRetry" });
    const d = sim.fail("Compile", "again", "e1");
    expect(jobsOf(d).map((j) => [j.actionName, j.attempt])).toEqual([["Compile", 4]]);
    expect(sim.slot("Build").retryStageMetadata).toEqual({ autoStageRetryAttempt: 2, manualStageRetryAttempt: 1, latestRetryTrigger: "AutomatedStageRetry" });
  });
});

describe("onFailure: rollback", () => {
  it("result ROLLBACK: a failed stage is rolled back to the latest execution that succeeded in it", () => {
    const sim = new Sim(pipeline({ Deploy: { onFailure: { result: "ROLLBACK", conditions: [] } } }));
    sim.start("e1");
    deployOk(sim, "e1");
    sim.start("e2");
    deployOk(sim, "e2");
    sim.archive();
    sim.start("e3");
    build(sim, "e3");
    sim.fail("Ship", "deploy broke", "e3");
    const rb = Object.values(sim.state.executions).find((e) => e.executionType === "ROLLBACK");
    expect(rb?.rollbackMetadata).toEqual({ rollbackTargetPipelineExecutionId: "e2" });
    expect(sim.exec("e3").statusSummary).toBe(`Action "Ship" in stage "Deploy" failed: deploy broke; rolled back to pipeline execution e2 by pipeline execution ${rb?.id ?? ""}`);
    // Only the rolled-back stage runs; then the rollback execution is done.
    sim.succeed("Ship", rb?.id);
    expect(sim.exec(rb?.id ?? "")).toMatchObject({ status: "Succeeded", statusSummary: 'Rolled back stage "Deploy" to pipeline execution e2' });
    expect(sim.exec(rb?.id ?? "").stages.map((s) => s.name)).toEqual(["Deploy"]);
    expect(sim.state.rollbackTargets?.filter((t) => t.stageName === "Deploy").map((t) => t.executionId)).toEqual(["e1", "e2"]);
  });

  it("a condition decides: rules met roll back, rules not met leave the stage Failed", () => {
    const onFailure = { conditions: [{ result: "ROLLBACK" as const, rules: [variableCheckRule("Prod", "#{variables.Env}", "EQ", "prod")] }] };
    for (const [env, rolledBack] of [
      ["prod", true],
      ["test", false],
    ] as const) {
      const sim = new Sim({ ...pipeline({ Deploy: { onFailure } }), variables: [{ name: "Env", defaultValue: env }] });
      sim.start("e1");
      deployOk(sim, "e1");
      sim.start("e2");
      build(sim, "e2");
      sim.fail("Ship", "boom", "e2");
      expect(sim.exec("e2").status).toBe("Failed");
      expect(sim.exec("e2").stages[2]?.conditions?.[0]).toMatchObject({ conditionType: "ON_FAILURE", status: rolledBack ? "Succeeded" : "Failed" });
      expect(Object.values(sim.state.executions).some((e) => e.executionType === "ROLLBACK")).toBe(rolledBack);
    }
  });

  it("ROLLBACK executions check no conditions, so a failed rollback is not rolled back again", () => {
    const sim = new Sim(pipeline({ Deploy: { onFailure: { result: "ROLLBACK", conditions: [] }, beforeEntry: onMain } }));
    sim.start("e1");
    deployOk(sim, "e1");
    sim.start("e2");
    build(sim, "e2");
    sim.fail("Ship", "boom", "e2");
    const rb = Object.values(sim.state.executions).find((e) => e.executionType === "ROLLBACK");
    expect(rb?.stages[0]?.conditions).toBeUndefined();
    sim.fail("Ship", "boom again", rb?.id);
    expect(sim.exec(rb?.id ?? "").status).toBe("Failed");
    expect(Object.values(sim.state.executions).filter((e) => e.executionType === "ROLLBACK")).toHaveLength(1);
  });
});

describe("OverrideStageCondition", () => {
  const gated = () => new Sim(pipeline({ Build: { beforeEntry: { conditions: [{ result: "FAIL", rules: [commandsRule("Window")] }] } } }));

  it("ends a running check: its rules are abandoned (jobs cancelled), the condition is Overridden and the actions run", () => {
    const sim = gated();
    sim.start("e1");
    source(sim, "e1");
    const window = sim.job("Window", "e1");
    const d = sim.apply(override("e1", "Build", "BEFORE_ENTRY"));
    expect(d.commands[0]).toMatchObject({ type: "CancelJob", jobId: window.jobId });
    expect(jobsOf(d).map((j) => j.actionName)).toEqual(["Compile"]);
    expect(sim.exec("e1").stages[1]?.conditions?.[0]).toMatchObject({ status: "Overridden", overriddenBy: "erin", rules: [{ status: "Abandoned" }] });
    expect(sim.slot("Build").conditions?.[0]?.status).toBe("Overridden");
  });

  it("lifts a check that failed: the execution resumes and proceeds", () => {
    const sim = new Sim(pipeline({ Deploy: { onSuccess: { conditions: [{ result: "FAIL", rules: [commandsRule("NoAlarm")] }] } } }));
    sim.start("e1");
    build(sim, "e1");
    sim.succeed("Ship", "e1");
    sim.fail("NoAlarm", "alarm", "e1");
    sim.archive();
    const d = sim.apply(override("e1", "Deploy", "ON_SUCCESS"));
    expect(d.events.map((e) => `${e.kind}:${e.event.state}`)).toEqual(["pipeline:RESUMED", "stage:RESUMED", "stage:SUCCEEDED", "pipeline:SUCCEEDED"]);
    expect(sim.exec("e1").status).toBe("Succeeded");
  });

  it("ConditionNotOverridableException for SKIP conditions, a stage without that condition, or nothing to override", () => {
    const skip = new Sim(pipeline({ Build: { beforeEntry: { conditions: [{ result: "SKIP", rules: [variableCheckRule("OnMain", "#{SourceVariables.BranchName}", "EQ", "main")] }] } } }));
    skip.start("e1");
    source(skip, "e1", "dev");
    expect(skip.refuse(override("e1", "Build", "BEFORE_ENTRY"), "ConditionNotOverridableException").message).toContain("SKIP");
    const sim = gated();
    sim.start("e1");
    source(sim, "e1");
    sim.refuse(override("e1", "Build", "ON_SUCCESS"), "ConditionNotOverridableException");
    sim.succeed("Window", "e1");
    expect(sim.refuse(override("e1", "Build", "BEFORE_ENTRY"), "ConditionNotOverridableException").message).toContain("Succeeded");
  });

  it("NotLatestPipelineExecutionException for an execution that is not the stage's latest; StageNotFoundException for an unknown stage", () => {
    const sim = gated();
    sim.start("e1");
    source(sim, "e1");
    sim.refuse(override("e0", "Build", "BEFORE_ENTRY"), "NotLatestPipelineExecutionException");
    sim.refuse(override("e1", "Nope", "BEFORE_ENTRY"), "StageNotFoundException");
  });
});

describe("RollbackStage", () => {
  /** e1 and e2 deployed; e3 is in Deploy. */
  function history(mode: ExecutionMode = "SUPERSEDED"): Sim {
    const sim = new Sim(pipeline({}, mode));
    for (const id of ["e1", "e2"]) {
      sim.start(id);
      deployOk(sim, id);
      sim.archive();
    }
    return sim;
  }

  it("starts a ROLLBACK execution (trigger ManualRollback) that reruns only the stage with the target's artifacts, variables and revisions", () => {
    const sim = history();
    const d = sim.apply(rollback("r1", "e1"));
    expect(d.executionId).toBe("r1");
    expect(sim.exec("r1")).toMatchObject({
      executionType: "ROLLBACK",
      rollbackMetadata: { rollbackTargetPipelineExecutionId: "e1" },
      trigger: { triggerType: "ManualRollback", triggerDetail: "frank" },
      currentStage: "Deploy",
      sourceRevisions: [{ actionName: "Src", revisionId: "rev-e1" }],
    });
    const ship = jobsOf(d)[0];
    expect(ship).toMatchObject({ actionName: "Ship", configuration: { Image: "img-e1" } });
    expect(sim.trail("r1")).toEqual(["pipeline::STARTED", "stage:Deploy:STARTED", "action:Deploy/Ship:STARTED"]);
    sim.succeed("Ship", "r1");
    expect(sim.exec("r1").status).toBe("Succeeded");
    // The same execution id again changes nothing.
    expect(sim.apply(rollback("r1", "e1")).ignored).toBe("execution r1 already exists");
  });

  it("UnableToRollbackStageException: the source stage, a target that did not succeed in the stage, a rollback as target, PARALLEL pipelines", () => {
    const sim = history();
    sim.refuse(rollback("r1", "e1", "Source"), "UnableToRollbackStageException");
    sim.start("e3");
    build(sim, "e3");
    sim.fail("Ship", "boom", "e3");
    expect(sim.refuse(rollback("r1", "e3"), "UnableToRollbackStageException").message).toContain("did not succeed in stage Deploy");
    sim.refuse(rollback("r1", "nope"), "UnableToRollbackStageException");
    sim.apply(rollback("r1", "e1"));
    sim.succeed("Ship", "r1");
    expect(sim.refuse(rollback("r2", "r1"), "UnableToRollbackStageException").message).toContain("itself a rollback");
    history("PARALLEL").refuse(rollback("r1", "e1"), "UnableToRollbackStageException");
    sim.refuse(rollback("r3", "e1", "Nope"), "StageNotFoundException");
  });

  it("ConflictException while the stage runs; PipelineExecutionOutdatedException once the pipeline changed", () => {
    const sim = history();
    sim.start("e3");
    build(sim, "e3"); // e3 is in Deploy
    sim.refuse(rollback("r1", "e1"), "ConflictException");
    sim.succeed("Ship", "e3");
    sim.apply({ type: "PipelineUpdated", spec: { ...pipeline(), version: 2 } });
    expect(sim.state.rollbackTargets).toBeUndefined();
    sim.refuse(rollback("r1", "e3"), "PipelineExecutionOutdatedException");
  });

  it(`keeps the inputs of the last ${MAX_ROLLBACK_TARGETS} executions that succeeded in each stage, without what the stage produced`, () => {
    const sim = new Sim(pipeline());
    for (let i = 1; i <= MAX_ROLLBACK_TARGETS + 2; i++) {
      sim.start(`e${i}`);
      deployOk(sim, `e${i}`);
      sim.archive();
    }
    const deploy = sim.state.rollbackTargets?.filter((t) => t.stageName === "Deploy") ?? [];
    expect(deploy.map((t) => t.executionId)).toEqual(["e3", "e4", "e5", "e6", "e7"]);
    const build = sim.state.rollbackTargets?.find((t) => t.stageName === "Build" && t.executionId === "e7");
    expect(build?.artifacts.map((a) => a.name)).toEqual(["SrcOut"]);
    expect(Object.keys(build?.variables ?? {})).toEqual(["SourceVariables"]);
    expect(sim.state.rollbackTargets?.some((t) => t.stageName === "Source")).toBe(false);
    sim.refuse(rollback("r1", "e1"), "UnableToRollbackStageException");
  });

  it("a rollback enters ahead of an execution waiting in front of the stage, which enters after it", () => {
    const sim = history();
    sim.apply({ type: "TransitionChanged", stageName: "Deploy", enabled: false, reason: "freeze", by: "dave" });
    sim.start("e3");
    build(sim, "e3");
    expect(sim.exec("e3").waitingFor).toBe("Deploy");
    sim.apply(rollback("r1", "e1"));
    expect(sim.slot("Deploy").lock).toBe("r1");
    sim.apply({ type: "TransitionChanged", stageName: "Deploy", enabled: true, reason: "", by: "dave" });
    expect(sim.exec("e3").waitingFor).toBe("Deploy");
    sim.succeed("Ship", "r1");
    expect(sim.exec("e3").currentStage).toBe("Deploy");
  });

  it("rejects a trigger type other than ManualRollback or AutomatedRollback, naming trigger.triggerType", () => {
    const sim = history();
    const err = sim.refuse({ ...(rollback("r1", "e1") as Extract<ExecutionEvent, { type: "RollbackRequested" }>), trigger: { triggerType: "Webhook", triggerDetail: "" } }, "ValidationException");
    expect(err.violations.map((v) => v.field)).toEqual(["trigger.triggerType"]);
  });

  it("a failed rollback execution can be retried and still ends after its one stage", () => {
    const sim = history();
    sim.apply(rollback("r1", "e1"));
    sim.apply({ type: "JobCompleted", result: failure(sim.job("Ship", "r1")) });
    expect(sim.exec("r1").status).toBe("Failed");
    sim.archive();
    sim.apply({ type: "StageRetryRequested", executionId: "r1", stageName: "Deploy", retryMode: "FAILED_ACTIONS", by: "carol" });
    sim.succeed("Ship", "r1");
    expect(sim.exec("r1")).toMatchObject({ status: "Succeeded", executionType: "ROLLBACK" });
  });
});

describe("views of conditions and rollbacks", () => {
  it("GetPipelineState: before-entry, on-success and on-failure condition states with their rule states", () => {
    const sim = new Sim(
      pipeline({
        Deploy: {
          beforeEntry: onMain,
          onSuccess: { conditions: [{ result: "FAIL", rules: [commandsRule("NoAlarm")] }] },
          onFailure: { conditions: [{ result: "ROLLBACK", rules: [variableCheckRule("Prod", "#{codepipeline.PipelineExecutionId}", "EQ", "prod")] }] },
        },
      }),
    );
    sim.start("e1");
    build(sim, "e1");
    const running = pipelineStateView(sim.state, { created: 1, updated: 2 }).stageStates?.[2];
    expect(running?.beforeEntryConditionState).toMatchObject({
      latestExecution: { status: "Succeeded", summary: "The rule succeeded" },
      conditionStates: [{ latestExecution: { status: "Succeeded" }, ruleStates: [{ ruleName: "OnMain", latestExecution: { status: "Succeeded", lastUpdatedBy: "" } }] }],
    });
    expect(running?.onSuccessConditionState).toBeUndefined();
    sim.succeed("Ship", "e1");
    const checking = pipelineStateView(sim.state, { created: 1, updated: 2 }).stageStates?.[2];
    expect(checking?.onSuccessConditionState?.latestExecution?.status).toBe("InProgress");
    expect(checking?.onSuccessConditionState?.conditionStates?.[0]?.ruleStates?.[0]?.latestExecution).toMatchObject({
      ruleExecutionId: sim.job("NoAlarm", "e1").actionExecutionId,
      status: "InProgress",
    });
    sim.succeed("NoAlarm", "e1", { updatedBy: "runner-7" });
    const after = pipelineStateView(sim.state, { created: 1, updated: 2 }).stageStates?.[2];
    expect(after?.onSuccessConditionState?.conditionStates?.[0]?.ruleStates?.[0]?.latestExecution).toMatchObject({ status: "Succeeded", lastUpdatedBy: "runner-7" });
    // The next execution in the stage starts with fresh condition states.
    sim.start("e2");
    build(sim, "e2");
    sim.fail("Ship", "boom", "e2");
    const failed = pipelineStateView(sim.state, { created: 1, updated: 2 }).stageStates?.[2];
    expect(failed?.onSuccessConditionState).toBeUndefined();
    // Its onFailure condition was not met (no rollback), so the stage shows the check as Failed.
    expect(failed?.onFailureConditionState?.latestExecution?.status).toBe("Failed");
    expect(failed?.latestExecution).toEqual({ pipelineExecutionId: "e2", status: "Failed", type: "STANDARD" });
  });

  it("GetPipelineExecution and ListPipelineExecutions: executionType ROLLBACK with rollbackMetadata", () => {
    const sim = new Sim(pipeline());
    sim.start("e1");
    deployOk(sim, "e1");
    sim.apply(rollback("r1", "e1"));
    expect(executionView(sim.exec("r1"), "demo")).toMatchObject({
      executionType: "ROLLBACK",
      rollbackMetadata: { rollbackTargetPipelineExecutionId: "e1" },
      trigger: { triggerType: "ManualRollback" },
    });
    expect(executionSummaryView(sim.exec("r1"))).toMatchObject({ executionType: "ROLLBACK", rollbackMetadata: { rollbackTargetPipelineExecutionId: "e1" } });
    expect(executionView(sim.exec("e1"), "demo").rollbackMetadata).toBeUndefined();
    expect(pipelineStateView(sim.state, { created: 1, updated: 2 }).stageStates?.[2]?.latestExecution).toEqual({ pipelineExecutionId: "r1", status: "InProgress", type: "ROLLBACK" });
  });
});
