// Property tests of decide() (DESIGN §7): random pipelines driven by random
// sequences of execution requests, source changes and job results (fresh,
// duplicate and stale), with the shell's archiving mixed in.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decide, initialRuntime, isTerminal } from "./decide.js";
import { actionSpec, approvalSpec, failure, pipelineSpec, sourceSpec, success, testContext } from "./testing.js";
import type { ActionSpec, ExecutionEvent, ExecutionRuntime, JobSpec, PipelineRuntime, PipelineSpec } from "./types.js";

/** A pipeline: a source stage, then 1–3 stages of 1–3 actions with runOrders 1–3. */
const pipelineArb: fc.Arbitrary<PipelineSpec> = fc
  .array(fc.array(fc.record({ runOrder: fc.integer({ min: 1, max: 3 }), approval: fc.boolean() }), { minLength: 1, maxLength: 3 }), {
    minLength: 1,
    maxLength: 3,
  })
  .map((stages) =>
    pipelineSpec([
      ["Source", [sourceSpec("Src", "SrcOut", { namespace: "Src" })]],
      ...stages.map((actions, s): [string, ActionSpec[]] => [
        `Stage${s + 1}`,
        actions.map((a, i) =>
          a.approval
            ? approvalSpec(`S${s + 1}A${i + 1}`, { runOrder: a.runOrder })
            : actionSpec(`S${s + 1}A${i + 1}`, {
                runOrder: a.runOrder,
                inputArtifacts: ["SrcOut"],
                configuration: { Commit: "#{Src.CommitId}", Run: "#{codepipeline.PipelineExecutionId}" },
              }),
        ),
      ]),
    ]),
  );

type Step =
  | { kind: "request" }
  | { kind: "source"; revision: number }
  | { kind: "answer"; pick: number; succeed: boolean }
  | { kind: "stale"; pick: number; attemptDelta: number }
  | { kind: "archive" }
  | { kind: "update"; pick: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.constant({ kind: "request" as const }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("source" as const), revision: fc.integer({ min: 0, max: 3 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("answer" as const), pick: fc.nat(), succeed: fc.boolean() }), weight: 8 },
  { arbitrary: fc.record({ kind: fc.constant("stale" as const), pick: fc.nat(), attemptDelta: fc.integer({ min: 1, max: 3 }) }), weight: 1 },
  { arbitrary: fc.constant({ kind: "archive" as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("update" as const), pick: fc.nat() }), weight: 1 },
);

/** The shell around decide() plus the bookkeeping the invariants need. */
class World {
  state: PipelineRuntime;
  readonly ctx = testContext();
  readonly jobs: JobSpec[] = [];
  /** jobId → number of accepted results. */
  readonly accepted = new Map<string, number>();
  /** Terminal executions as first seen terminal (JSON). */
  readonly terminal = new Map<string, string>();
  /** Stages each execution has entered, as last seen. */
  readonly entered = new Map<string, string[]>();
  /** Specs by version, for executions started on older versions. */
  readonly versions = new Map<number, PipelineSpec>();
  private nextExecution = 0;

  /** `updates`: structures a random "update" step switches to. */
  constructor(
    spec: PipelineSpec,
    readonly updates: readonly PipelineSpec[] = [],
  ) {
    this.state = initialRuntime(spec);
    this.versions.set(spec.version, spec);
  }

  apply(event: ExecutionEvent): void {
    const d = decide(this.state, event, this.ctx);
    if (d.ignored !== undefined) {
      expect(d.state).toBe(this.state);
      expect(d.commands).toEqual([]);
      expect(d.events).toEqual([]);
    }
    if (event.type === "JobCompleted" && d.ignored === undefined) {
      this.accepted.set(event.result.jobId, (this.accepted.get(event.result.jobId) ?? 0) + 1);
    }
    this.state = d.state;
    for (const c of d.commands) this.jobs.push(c.job);
    this.ctx.advance(1);
    this.check();
  }

  step(step: Step): void {
    switch (step.kind) {
      case "request":
        this.apply({ type: "ExecutionRequested", executionId: `e${++this.nextExecution}`, trigger: { triggerType: "StartPipelineExecution", triggerDetail: "t" } });
        return;
      case "source":
        this.apply({
          type: "SourceChanged",
          executionId: `e${++this.nextExecution}`,
          actionName: "Src",
          revision: { actionName: "Src", revisionId: `r${step.revision}` },
          trigger: { triggerType: "PollForSourceChanges", triggerDetail: "Src" },
        });
        return;
      case "answer":
      case "stale": {
        if (this.jobs.length === 0) return;
        const job = this.jobs[step.pick % this.jobs.length];
        if (job === undefined) return;
        if (step.kind === "stale") {
          this.apply({ type: "JobCompleted", result: success(job, { attempt: job.attempt + step.attemptDelta }) });
        } else {
          this.apply({ type: "JobCompleted", result: this.outcome(job, step.succeed) });
        }
        return;
      }
      case "update": {
        const next = this.updates[step.pick % Math.max(1, this.updates.length)];
        if (next === undefined) return;
        const spec = { ...next, version: this.state.spec.version + 1 };
        this.versions.set(spec.version, spec);
        this.apply({ type: "PipelineUpdated", spec });
        return;
      }
      case "archive":
        // The shell archives finished executions and drops them from the runtime.
        for (const exec of Object.values(this.state.executions)) {
          if (isTerminal(exec.status)) delete this.state.executions[exec.id];
        }
        return;
    }
  }

  outcome(job: JobSpec, succeed: boolean) {
    if (!succeed) return failure(job, "failed on purpose");
    return job.category === "Source"
      ? success(job, { revision: { revisionId: job.sourceRevision ?? "latest" }, outputVariables: { CommitId: job.sourceRevision ?? "latest" } })
      : success(job);
  }

  /** Jobs whose action is still waiting for them. */
  outstanding(): JobSpec[] {
    return this.jobs.filter((j) => {
      const exec = this.state.executions[j.pipelineExecutionId];
      if (exec === undefined || isTerminal(exec.status)) return false;
      return exec.stages.some((s) => s.actions.some((a) => a.actionExecutionId === j.actionExecutionId && a.status === "InProgress"));
    });
  }

  check(): void {
    const executions = Object.values(this.state.executions);
    const live = executions.filter((e) => !isTerminal(e.status));
    for (const [i, slot] of this.state.stages.entries()) {
      // Never two executions inside one stage; the lock names the one inside.
      const inside = live.filter((e) => e.currentStage === slot.name);
      expect(inside.length).toBeLessThanOrEqual(1);
      expect(slot.lock).toBe(inside[0]?.id);
      // At most one waiter, and the slot names it.
      const waiting = live.filter((e) => e.waitingFor === slot.name);
      expect(waiting.length).toBeLessThanOrEqual(1);
      expect(slot.waiting).toBe(waiting[0]?.id);
      // Nobody waits in front of a free stage.
      if (slot.waiting !== undefined) expect(slot.lock).toBeDefined();
      expect(slot.name).toBe(this.state.spec.stages[i]?.name);
    }
    for (const exec of executions) {
      this.checkExecution(exec);
    }
    for (const [jobId, count] of this.accepted) {
      expect(count, `accepted results of job ${jobId}`).toBe(1);
    }
  }

  checkExecution(exec: ExecutionRuntime): void {
    const names = exec.stages.map((s) => s.name);
    // Stages are entered in the order of the version the execution runs, each once.
    const spec = this.versions.get(exec.pipelineVersion);
    expect(names).toEqual(spec?.stages.slice(0, names.length).map((s) => s.name));
    // An execution never moves backwards: what it entered before is still a prefix.
    const before = this.entered.get(exec.id) ?? [];
    expect(names.slice(0, before.length)).toEqual(before);
    this.entered.set(exec.id, names);
    // Every stage but the last one entered has succeeded.
    for (const s of exec.stages.slice(0, -1)) expect(s.status).toBe("Succeeded");
    // Only an update cancels, and only executions of an older version.
    if (exec.status === "Cancelled") expect(exec.pipelineVersion).toBeLessThan(this.state.spec.version);
    if (exec.currentStage !== undefined) {
      expect(exec.waitingFor).toBeUndefined();
      expect(exec.stages.at(-1)).toMatchObject({ name: exec.currentStage, status: "InProgress" });
    }
    if (isTerminal(exec.status)) {
      expect(exec.currentStage).toBeUndefined();
      expect(exec.waitingFor).toBeUndefined();
      const json = JSON.stringify(exec);
      const first = this.terminal.get(exec.id);
      if (first === undefined) this.terminal.set(exec.id, json);
      // A terminal execution never changes.
      else expect(json).toBe(first);
    } else {
      // An execution in flight is inside a stage or waiting in front of one.
      expect(exec.currentStage !== undefined || exec.waitingFor !== undefined).toBe(true);
    }
  }

  /** Answers every outstanding job (successfully or not) until none is left. */
  drain(succeed: (n: number) => boolean): void {
    for (let n = 0; ; n++) {
      const job = this.outstanding()[0];
      if (job === undefined) return;
      this.apply({ type: "JobCompleted", result: this.outcome(job, succeed(n)) });
      if (n > 10_000) throw new Error("drain does not converge");
    }
  }
}

describe("decide() properties", () => {
  it("keeps locks, order and terminal executions intact under any event sequence", () => {
    fc.assert(
      fc.property(pipelineArb, fc.array(pipelineArb, { maxLength: 2 }), fc.array(stepArb, { maxLength: 60 }), (spec, updates, steps) => {
        const world = new World(spec, updates);
        for (const step of steps) world.step(step);
      }),
      { numRuns: 300 },
    );
  });

  it("leaves nothing in progress once every dispatched job is answered", () => {
    // Quiescence: when no dispatched job is outstanding, every execution is
    // terminal and every stage is unlocked with nobody waiting — an execution
    // can only wait in front of a locked stage, and a locked stage always has a
    // running action (so an outstanding job) until it completes.
    fc.assert(
      fc.property(
        pipelineArb,
        fc.array(pipelineArb, { maxLength: 2 }),
        fc.array(stepArb, { maxLength: 60 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
        (spec, updates, steps, answers) => {
          const world = new World(spec, updates);
          for (const step of steps) world.step(step);
          world.drain((n) => answers[n % answers.length] ?? true);
          for (const exec of Object.values(world.state.executions)) {
            expect(isTerminal(exec.status), `execution ${exec.id} is ${exec.status}`).toBe(true);
          }
          for (const slot of world.state.stages) {
            expect(slot.lock).toBeUndefined();
            expect(slot.waiting).toBeUndefined();
          }
          // Every dispatched job got exactly one accepted result.
          for (const job of world.jobs) expect(world.accepted.get(job.jobId), `job ${job.jobId}`).toBe(1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("runs an execution to Succeeded when every job succeeds and nothing else happens", () => {
    fc.assert(
      fc.property(pipelineArb, (spec) => {
        const world = new World(spec);
        world.step({ kind: "request" });
        world.drain(() => true);
        expect(world.state.executions["e1"]?.status).toBe("Succeeded");
        expect(world.jobs.map((j) => j.actionName).sort()).toEqual(spec.stages.flatMap((s) => s.actions.map((a) => a.name)).sort());
      }),
      { numRuns: 100 },
    );
  });
});
