import { describe, expect, it } from "vitest";
import { DETAIL_TYPES } from "./decide.js";
import { actionSpec, pipelineSpec, Sim, sourceSpec } from "./testing.js";
import type { ExecutionEvent, PipelineSpec } from "./types.js";

const twoStages = (): PipelineSpec =>
  pipelineSpec([
    ["Source", [sourceSpec("Src", "SrcOut")]],
    ["Build", [actionSpec("Compile", { inputArtifacts: ["SrcOut"] })]],
  ]);

const trigger = { triggerType: "PollForSourceChanges", triggerDetail: "https://bob:hunter2@git.example/repo.git#main" };

const rejected = (executionId: string, revisionId: string): ExecutionEvent => ({
  type: "DefinitionRejected",
  executionId,
  actionName: "Src",
  revision: { actionName: "Src", revisionId },
  trigger,
  violations: [
    { field: "pipeline.name", message: 'must be "demo", the pipeline\'s own name' },
    { field: "pipeline.stages[1].actions[0].runOrder", message: "must be 1-999" },
  ],
});

const changed = (executionId: string, revisionId: string): ExecutionEvent => ({
  type: "SourceChanged",
  executionId,
  actionName: "Src",
  revision: { actionName: "Src", revisionId },
  trigger,
});

describe("DefinitionRejected", () => {
  it("creates the revision's execution Failed, in no stage, listing every violation, and emits only pipeline FAILED", () => {
    const sim = new Sim(twoStages());
    const d = sim.apply(rejected("e1", "r1"));
    const exec = sim.exec("e1");
    expect(exec).toMatchObject({ status: "Failed", stages: [], pinnedRevisions: [{ actionName: "Src", revisionId: "r1" }], pipelineVersion: 1 });
    expect(exec.statusSummary).toContain("pipeline.name: must be \"demo\"");
    expect(exec.statusSummary).toContain("pipeline.stages[1].actions[0].runOrder: must be 1-999");
    expect(exec.trigger.triggerDetail).not.toContain("hunter2");
    expect(exec.currentStage).toBeUndefined();
    expect(d.commands).toEqual([]);
    expect(d.events.map((e) => [e.event.detailType, e.event.state])).toEqual([[DETAIL_TYPES.pipeline, "FAILED"]]);
    expect(sim.slot("Source").lock).toBeUndefined();
  });

  it("counts the revision as seen: neither a redelivery nor a SourceChanged of it starts anything", () => {
    const sim = new Sim(twoStages());
    sim.apply(rejected("e1", "r1"));
    const again = sim.apply(rejected("e2", "r1"));
    expect(again.ignored).toBe("revision r1 of Src was already started");
    expect(again.executionId).toBe("e1");
    const same = sim.apply(changed("e3", "r1"));
    expect(same.ignored).toBe("revision r1 of Src was already started");
    expect(Object.keys(sim.state.executions)).toEqual(["e1"]);
  });

  it("is ignored for a revision already started, and leaves a running execution alone", () => {
    const sim = new Sim(twoStages());
    sim.apply(changed("e1", "r1"));
    const d = sim.apply(rejected("e2", "r1"));
    expect(d.ignored).toBe("revision r1 of Src was already started");
    const other = sim.apply(rejected("e3", "r2"));
    expect(other.ignored).toBeUndefined();
    expect(sim.exec("e1").status).toBe("InProgress");
    expect(sim.exec("e3").status).toBe("Failed");
  });

  it("ignores an action that is not a source action", () => {
    const sim = new Sim(twoStages());
    const d = sim.apply({ ...rejected("e1", "r1"), actionName: "Compile" } as ExecutionEvent);
    expect(d.ignored).toBe('"Compile" is not a source action of pipeline demo');
  });
});

describe("a rejected definition's execution", () => {
  it("has nothing to retry: it entered no stage", () => {
    const sim = new Sim(twoStages());
    sim.apply(rejected("e1", "r1"));
    sim.refuse({ type: "StageRetryRequested", executionId: "e1", stageName: "Source", retryMode: "FAILED_ACTIONS", by: "ops" }, "NotLatestPipelineExecutionException");
  });
});
