import { describe, expect, it } from "vitest";
import { queuedJobsOf, staleAttempt } from "./fencing.js";
import { actionSpec, approvalSpec, commandsRule, pipelineSpec, Sim, sourceSpec, success } from "./testing.js";
import { pipelineStateView } from "./views.js";
import type { JobOutcome, JobSpec } from "./types.js";

const gpuPipeline = () =>
  pipelineSpec([
    ["Source", [sourceSpec("Src", "SrcOut")]],
    ["Build", [actionSpec("Train", { configuration: { RunnerPool: "gpu" } }), approvalSpec("Review")]],
  ]);

function started(job: JobSpec, delivery: number, by: string): JobOutcome {
  return { ...success(job), status: "InProgress", outputArtifacts: [], delivery, updatedBy: by };
}

/** A simulation with the Train job dispatched. */
function atTrain(): Sim {
  const sim = new Sim(gpuPipeline());
  sim.start("e1");
  sim.succeed("Src");
  return sim;
}

function trainRun(sim: Sim) {
  const run = sim.exec("e1").stages.find((s) => s.name === "Build")?.actions.find((a) => a.name === "Train");
  if (run === undefined) throw new Error("Train did not start");
  return run;
}

describe("JobStarted and stale attempts", () => {
  it("records the highest started delivery and when the job first started", () => {
    const sim = atTrain();
    sim.ctx.advance(5_000);
    sim.apply({ type: "JobStarted", report: started(sim.job("Train"), 1, "runner-a") });
    expect(trainRun(sim)).toMatchObject({ startedDelivery: 1, startedAt: sim.ctx.now, updatedBy: "runner-a", status: "InProgress" });
    const firstStart = sim.ctx.now;
    sim.ctx.advance(5_000);
    sim.apply({ type: "JobStarted", report: started(sim.job("Train"), 2, "runner-b") });
    expect(trainRun(sim)).toMatchObject({ startedDelivery: 2, startedAt: firstStart, updatedBy: "runner-b" });
  });

  it("ignores a started report of a delivery not higher than one reported, and one without a delivery", () => {
    const sim = atTrain();
    sim.apply({ type: "JobStarted", report: started(sim.job("Train"), 2, "runner-b") });
    const before = sim.state;
    expect(sim.apply({ type: "JobStarted", report: started(sim.job("Train"), 1, "runner-a") }).ignored).toMatch(/delivery 2 was reported started already/);
    expect(sim.state).toBe(before);
    const { delivery: _none, ...noDelivery } = started(sim.job("Train"), 3, "runner-c");
    expect(sim.apply({ type: "JobStarted", report: noDelivery }).ignored).toMatch(/names no delivery/);
  });

  it("calls a result from a lower delivery than the highest started stale, and ignores it", () => {
    const sim = atTrain();
    const job = sim.job("Train");
    sim.apply({ type: "JobStarted", report: started(job, 1, "runner-a") });
    sim.apply({ type: "JobStarted", report: started(job, 2, "runner-b") });
    const stale = success(job, { delivery: 1, updatedBy: "runner-a" });
    expect(staleAttempt(sim.state, stale)).toMatch(/result from delivery 1, but delivery 2 was started since by runner-b/);
    const before = sim.state;
    expect(sim.apply({ type: "JobCompleted", result: stale }).ignored).toMatch(/stale attempt/);
    expect(sim.state).toBe(before);
    expect(trainRun(sim).status).toBe("InProgress");
    // The current delivery's result completes the action.
    const current = success(job, { delivery: 2, updatedBy: "runner-b" });
    expect(staleAttempt(sim.state, current)).toBeUndefined();
    sim.apply({ type: "JobCompleted", result: current });
    expect(trainRun(sim)).toMatchObject({ status: "Succeeded", updatedBy: "runner-b" });
    // Still stale after the action ended: the fence stays with the run.
    expect(staleAttempt(sim.state, stale)).toMatch(/stale attempt/);
  });

  it("never fences a result that names no delivery, or a run with no started report", () => {
    const sim = atTrain();
    const job = sim.job("Train");
    expect(staleAttempt(sim.state, success(job, { delivery: 1 }))).toBeUndefined();
    sim.apply({ type: "JobStarted", report: started(job, 3, "runner-c") });
    expect(staleAttempt(sim.state, success(job))).toBeUndefined();
  });
});

describe("stale attempts of Commands rules", () => {
  it("fences a rule's result from a lower delivery than the highest started, and takes the current one", () => {
    const spec = pipelineSpec([
      ["Source", [sourceSpec("Src", "SrcOut")]],
      ["Build", [actionSpec("Compile")]],
    ]);
    const build = spec.stages[1];
    if (build === undefined) throw new Error("fixture has no Build stage");
    build.beforeEntry = { conditions: [{ result: "FAIL", rules: [commandsRule("Gate")] }] };
    const sim = new Sim(spec);
    sim.start("e1");
    sim.succeed("Src");
    const gate = sim.job("Gate");
    sim.apply({ type: "JobStarted", report: started(gate, 1, "runner-a") });
    sim.apply({ type: "JobStarted", report: started(gate, 2, "runner-b") });
    const stale = success(gate, { delivery: 1 });
    expect(staleAttempt(sim.state, stale)).toMatch(/result from delivery 1, but delivery 2 was started since/);
    expect(sim.apply({ type: "JobCompleted", result: stale }).ignored).toMatch(/stale attempt/);
    sim.apply({ type: "JobCompleted", result: success(gate, { delivery: 2 }) });
    expect(sim.exec("e1").stages[1]?.conditions?.map((c) => c.status)).toEqual(["Succeeded"]);
    expect(sim.job("Compile").actionName).toBe("Compile");
  });
});

describe("queued jobs in GetPipelineState", () => {
  it("shows a dispatched runner job as queued in its pool, with its age, until a runner starts it", () => {
    const sim = atTrain();
    const dispatchedAt = sim.ctx.now;
    sim.ctx.advance(90_000);
    const view = pipelineStateView(sim.state, { created: 0, updated: 0, now: sim.ctx.now });
    const build = view.stageStates?.find((s) => s.stageName === "Build");
    const train = build?.actionStates?.find((a) => a.actionName === "Train")?.latestExecution;
    expect(train).toMatchObject({ status: "InProgress", queued: { pool: "gpu", ageSeconds: 90n } });
    expect(train?.summary).toBe(`Queued since ${new Date(dispatchedAt).toISOString()} in runner pool gpu: no runner of the pool has started the job yet`);
    // An approval is nobody's queue.
    expect(build?.actionStates?.find((a) => a.actionName === "Review")?.latestExecution?.queued).toBeUndefined();

    expect(queuedJobsOf(sim.state)).toEqual([{ jobId: sim.job("Train").jobId, pool: "gpu", since: dispatchedAt }]);
    sim.apply({ type: "JobStarted", report: started(sim.job("Train"), 1, "gpu-runner") });
    expect(queuedJobsOf(sim.state)).toEqual([]);
    const after = pipelineStateView(sim.state, { created: 0, updated: 0, now: sim.ctx.now });
    const run = after.stageStates?.find((s) => s.stageName === "Build")?.actionStates?.find((a) => a.actionName === "Train")?.latestExecution;
    expect(run?.queued).toBeUndefined();
    expect(run).toMatchObject({ status: "InProgress", summary: "", lastUpdatedBy: "gpu-runner" });
    expect(run?.startedAt).toBeDefined();
  });
});
