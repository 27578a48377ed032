import { describe, expect, it } from "vitest";
import { decide, initialRuntime } from "@sluice/domain";
import type { ActionSpec, PipelineRuntime, PipelineSpec } from "@sluice/domain";
import { adoptSpec } from "./adopt-spec.js";

function action(name: string, over: Partial<ActionSpec> = {}): ActionSpec {
  return {
    name,
    category: "Build",
    owner: "AWS",
    provider: "Commands",
    builtIn: "Commands",
    providerVersion: "1",
    runOrder: 1,
    configuration: {},
    commands: ["true"],
    inputArtifacts: [],
    outputArtifacts: [],
    outputVariables: [],
    timeoutInMinutes: 60,
    environmentVariables: [],
    ...over,
  };
}

const source = action("Checkout", { category: "Source", provider: "Git", builtIn: "Git", commands: [], outputArtifacts: [{ name: "Src", files: [] }] });

function spec(version: number, stages: [string, ActionSpec[]][]): PipelineSpec {
  return { name: "p", version, executionMode: "SUPERSEDED", artifactBucket: "b", stages: stages.map(([name, actions]) => ({ name, actions })) };
}

let ids = 0;
const ctx = { now: 1000, newId: () => `id-${++ids}` };

/** A runtime with one execution inside the Source stage (its Checkout job running). */
function running(v1: PipelineSpec): PipelineRuntime {
  return decide(initialRuntime(v1), { type: "ExecutionRequested", executionId: "e1", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "t" } }, ctx).state;
}

describe("adoptSpec", () => {
  const v1 = spec(1, [
    ["Source", [source]],
    ["Build", [action("Compile")]],
  ]);

  it("switches to the new version and keeps an execution whose stage and running actions remain", () => {
    const v2 = spec(2, [
      ["Source", [source]],
      ["Build", [action("Compile")]],
      ["Test", [action("Unit")]],
    ]);
    const before = running(v1);
    const { state, events } = adoptSpec(before, v2, 2000);
    expect(state.spec.version).toBe(2);
    expect(state.stages.map((s) => s.name)).toEqual(["Source", "Build", "Test"]);
    expect(state.stages[0]?.lock).toBe("e1");
    expect(state.executions["e1"]?.status).toBe("InProgress");
    expect(events).toEqual([]);
    // The input is not modified.
    expect(before.spec.version).toBe(1);
  });

  it("cancels an execution whose running action is gone and releases its lock", () => {
    const renamed = action("Fetch", { category: "Source", provider: "Git", builtIn: "Git", commands: [], outputArtifacts: [{ name: "Src", files: [] }] });
    const v2 = spec(2, [
      ["Source", [renamed]],
      ["Build", [action("Compile")]],
    ]);
    const { state, events } = adoptSpec(running(v1), v2, 2000);
    const exec = state.executions["e1"];
    expect(exec?.status).toBe("Cancelled");
    expect(exec?.statusSummary).toContain("version 2");
    expect(state.stages[0]?.lock).toBeUndefined();
    expect(state.finished).toEqual(["e1"]);
    expect(events.map((e) => [e.kind, e.event.state, e.event.executionId])).toEqual([["pipeline", "CANCELED", "e1"]]);
  });

  it("lets a new execution run the new structure", () => {
    const v2 = spec(2, [
      ["Source", [source]],
      ["Package", [action("Zip")]],
    ]);
    const { state } = adoptSpec(initialRuntime(v1), v2, 2000);
    const decision = decide(state, { type: "ExecutionRequested", executionId: "e2", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "t" } }, ctx);
    expect(decision.commands.map((c) => [c.job.stageName, c.job.actionName, c.job.pipelineVersion])).toEqual([["Source", "Checkout", 2]]);
  });
});
