import { create, toJson } from "@bufbuild/protobuf";
import { GetPipelineStateResponseSchema, PipelineExecutionSchema, PipelineExecutionSummarySchema } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { decide, initialRuntime } from "./decide.js";
import { actionSpec, approvalSpec, failure, jobsOf, pipelineSpec, sourceSpec, success, testContext } from "./testing.js";
import type { ExecutionEvent, JobSpec, PipelineRuntime } from "./types.js";
import { executionSummaryView, executionView, pipelineStateView } from "./views.js";

const spec = pipelineSpec([
  ["Source", [sourceSpec("Src", "SrcOut")]],
  ["Build", [actionSpec("Compile", { inputArtifacts: ["SrcOut"] }), actionSpec("Lint", { runOrder: 2 })]],
  ["Approve", [approvalSpec("Gate")]],
]);

function run(events: ((jobs: JobSpec[]) => ExecutionEvent)[]): { state: PipelineRuntime; jobs: JobSpec[] } {
  const ctx = testContext(1_700_000_000_000);
  let state = initialRuntime(spec);
  const jobs: JobSpec[] = [];
  for (const make of events) {
    const d = decide(state, make(jobs), ctx);
    state = d.state;
    jobs.push(...jobsOf(d));
    ctx.advance(1000);
  }
  return { state, jobs };
}

const start = (id: string) => (): ExecutionEvent => ({ type: "ExecutionRequested", executionId: id, trigger: { triggerType: "CreatePipeline", triggerDetail: "alice" } });
const ok = (action: string, over: Parameters<typeof success>[1] = {}) => (jobs: JobSpec[]): ExecutionEvent => {
  const job = jobs.findLast((j) => j.actionName === action);
  if (job === undefined) throw new Error(`no job ${action}`);
  return { type: "JobCompleted", result: success(job, over) };
};
const ko = (action: string, message: string) => (jobs: JobSpec[]): ExecutionEvent => {
  const job = jobs.findLast((j) => j.actionName === action);
  if (job === undefined) throw new Error(`no job ${action}`);
  return { type: "JobCompleted", result: failure(job, message) };
};

describe("pipelineStateView", () => {
  it("shows every declared stage and action with latest executions, token and waiter", () => {
    const { state } = run([
      start("e1"),
      ok("Src", { revision: { revisionId: "c0ffee", created: 1_600_000_000_000 }, externalExecutionId: "c0ffee", summary: "initial" }),
      ok("Compile"),
      ok("Lint"),
      start("e2"),
      ok("Src"),
      ok("Compile"),
      ok("Lint"),
      start("e3"),
    ]);
    // e1 waits for approval; e2 waits in front of Approve; e3 runs Source.
    const view = create(GetPipelineStateResponseSchema, pipelineStateView(state, { created: 1000, updated: 2000 }));
    const json = toJson(GetPipelineStateResponseSchema, view) as Record<string, unknown>;
    expect(json).toMatchObject({ pipelineName: "demo", pipelineVersion: 1, created: "1970-01-01T00:00:01Z", updated: "1970-01-01T00:00:02Z" });
    expect(view.stageStates.map((s) => s.stageName)).toEqual(["Source", "Build", "Approve"]);
    const [source, build, approve] = view.stageStates;
    expect(source?.latestExecution).toMatchObject({ pipelineExecutionId: "e3", status: "InProgress" });
    expect(source?.actionStates[0]?.currentRevision?.revisionId).toBeTruthy();
    expect(build?.actionStates.map((a) => [a.actionName, a.latestExecution?.status])).toEqual([
      ["Compile", "Succeeded"],
      ["Lint", "Succeeded"],
    ]);
    expect(build?.inboundTransitionState?.enabled).toBe(true);
    expect(approve?.inboundExecution).toMatchObject({ pipelineExecutionId: "e2", status: "InProgress" });
    expect(approve?.latestExecution).toMatchObject({ pipelineExecutionId: "e1", status: "InProgress" });
    const gate = approve?.actionStates[0]?.latestExecution;
    expect(gate?.status).toBe("InProgress");
    expect(gate?.token).toMatch(/^id-\d+$/);
  });

  it("names a failed action's error and lists never-run actions without an execution", () => {
    const { state } = run([start("e1"), ok("Src"), ko("Compile", "npm test exited 1")]);
    const view = create(GetPipelineStateResponseSchema, pipelineStateView(state, { created: 0, updated: 0 }));
    const build = view.stageStates[1];
    expect(build?.latestExecution?.status).toBe("Failed");
    expect(build?.actionStates[0]?.latestExecution).toMatchObject({ status: "Failed", summary: "npm test exited 1", errorDetails: { code: "JobFailed", message: "npm test exited 1" } });
    expect(build?.actionStates[1]?.latestExecution).toBeUndefined();
    expect(view.stageStates[2]?.latestExecution).toBeUndefined();
  });
});

describe("executionView / executionSummaryView", () => {
  it("show status, trigger, artifact revisions and source revisions in AWS's shapes", () => {
    const { state } = run([
      start("e1"),
      ok("Src", { revision: { revisionId: "c0ffee", revisionSummary: "fix things", created: 1_600_000_000_000, revisionUrl: "https://git/c0ffee" } }),
      ko("Compile", "boom"),
    ]);
    const exec = state.executions["e1"];
    if (exec === undefined) throw new Error("no e1");
    const view = create(PipelineExecutionSchema, executionView(exec, "demo", "SUPERSEDED"));
    expect(toJson(PipelineExecutionSchema, view)).toEqual({
      pipelineName: "demo",
      pipelineVersion: 1,
      pipelineExecutionId: "e1",
      status: "Failed",
      statusSummary: 'Action "Compile" in stage "Build" failed: boom',
      artifactRevisions: [{ name: "SrcOut", revisionId: "c0ffee", revisionSummary: "fix things", created: "2020-09-13T12:26:40Z", revisionUrl: "https://git/c0ffee" }],
      trigger: { triggerType: "CreatePipeline", triggerDetail: "alice" },
      executionMode: "SUPERSEDED",
      executionType: "STANDARD",
    });
    const summary = create(PipelineExecutionSummarySchema, executionSummaryView(exec));
    expect(summary.sourceRevisions).toHaveLength(1);
    expect(summary.sourceRevisions[0]).toMatchObject({ actionName: "Src", revisionId: "c0ffee", revisionSummary: "fix things", revisionUrl: "https://git/c0ffee" });
    expect(summary).toMatchObject({ pipelineExecutionId: "e1", status: "Failed", executionMode: "SUPERSEDED", executionType: "STANDARD" });
    expect(Number(summary.startTime?.seconds)).toBe(1_700_000_000);
    expect(Number(summary.lastUpdateTime?.seconds)).toBe(1_700_000_002);
  });
});
