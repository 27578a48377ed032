// Property tests of decide(): random pipelines in all
// three execution modes driven by random sequences of execution requests,
// source changes, job results (fresh, duplicate and stale), stops (both
// kinds), stage and action retries, transition toggles, timer firings and
// pipeline updates, with the shell's archiving mixed in; stages carry random
// conditions (beforeEntry, onSuccess, onFailure with VariableCheck and
// Commands rules, automatic retry and rollback), with condition overrides and
// manual rollbacks among the steps. Requests that break a rule throw a
// DomainError; the run catches it and checks nothing changed.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isDomainError } from "../errors.js";
import { decide, initialRuntime, isFinal, isTerminal } from "./decide.js";
import { findExecution, takesLocks, waitersOf } from "./draft.js";
import { actionSpec, approvalSpec, commandsRule, deepFreeze, failure, pipelineSpec, sourceSpec, success, testContext, variableCheckRule } from "./testing.js";
import type { ActionSpec, ExecutionEvent, ExecutionMode, ExecutionRuntime, JobSpec, PipelineRuntime, PipelineSpec, RuleSpec, StageConditionsSpec, StageSpec } from "./types.js";

const MODES: readonly ExecutionMode[] = ["SUPERSEDED", "QUEUED", "PARALLEL"];

/** How random conditions may be: `passing` VariableCheck rules always pass and no result rolls back. */
interface ConditionOptions {
  passing: boolean;
}

/**
 * A rule of a random kind: a VariableCheck on the source's commit (passes
 * for some revisions; always, when `passing`), or a Commands rule.
 */
const ruleArb = (name: string, opts: ConditionOptions): fc.Arbitrary<RuleSpec> =>
  fc.oneof(
    (opts.passing ? fc.constant("latest") : fc.constantFrom("latest", "r1", "r2")).map((value) => variableCheckRule(name, "#{Src.CommitId}", "EQ", value)),
    fc.constant(commandsRule(name, { inputArtifacts: ["SrcOut"] })),
  );

/** Random beforeEntry / onSuccess / onFailure for stage `s` (rollbacks only where the mode allows them). */
const conditionsArb = (s: number, mode: ExecutionMode, opts: ConditionOptions): fc.Arbitrary<Partial<StageSpec>> => {
  const rollback = mode !== "PARALLEL" && !opts.passing;
  const ruleOf = (name: string): fc.Arbitrary<RuleSpec> => ruleArb(name, opts);
  return fc.record(
    {
      beforeEntry: fc.tuple(ruleOf(`S${s}Entry`), fc.boolean()).map(([rule, skip]) => ({
        conditions: [{ result: skip && rule.ruleTypeId.provider === "VariableCheck" ? ("SKIP" as const) : ("FAIL" as const), rules: [rule] }],
      })),
      onSuccess: fc.tuple(ruleOf(`S${s}Success`), fc.boolean()).map(([rule, back]) => ({
        conditions: [{ result: back && rollback ? ("ROLLBACK" as const) : ("FAIL" as const), rules: [rule] }],
      })),
      onFailure: fc.oneof<fc.Arbitrary<StageConditionsSpec>[]>(
        fc.constantFrom("FAILED_ACTIONS" as const, "ALL_ACTIONS" as const).map((retryMode) => ({ result: "RETRY" as const, retryConfiguration: { retryMode }, conditions: [] })),
        ...(rollback
          ? [fc.constant<StageConditionsSpec>({ result: "ROLLBACK", conditions: [] }), ruleOf(`S${s}Failure`).map((rule) => ({ conditions: [{ result: "ROLLBACK" as const, rules: [rule] }] }))]
          : []),
      ),
    },
    { requiredKeys: [] },
  );
};

/** A pipeline in a random mode: a source stage, then 1–3 stages of 1–3 actions with runOrders 1–3, some with conditions. */
const pipelineArbOf = (opts: ConditionOptions): fc.Arbitrary<PipelineSpec> => fc
  .tuple(
    fc.constantFrom(...MODES),
    fc.array(fc.array(fc.record({ runOrder: fc.integer({ min: 1, max: 3 }), approval: fc.boolean() }), { minLength: 1, maxLength: 3 }), {
      minLength: 1,
      maxLength: 3,
    }),
  )
  .chain(([mode, stages]) =>
    fc.tuple(fc.constant(mode), fc.constant(stages), fc.tuple(...stages.map((_, s) => fc.option(conditionsArb(s + 1, mode, opts), { freq: 2 })))),
  )
  .map(([mode, stages, conditions]) => {
    const spec = pipelineSpec(
      [
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
      ],
      "demo",
      mode,
    );
    spec.stages = spec.stages.map((stage, i) => (i === 0 ? stage : { ...stage, ...(conditions[i - 1] ?? {}) }));
    return spec;
  });

const pipelineArb = pipelineArbOf({ passing: false });
/** Conditions that pass once their Commands rules succeed, and never roll back. */
const passingPipelineArb = pipelineArbOf({ passing: true });

type Step =
  | { kind: "request" }
  | { kind: "source"; revision: number }
  | { kind: "answer"; pick: number; succeed: boolean }
  | { kind: "stale"; pick: number; attemptDelta: number }
  | { kind: "archive" }
  | { kind: "update"; pick: number }
  | { kind: "stop"; pick: number; abandon: boolean }
  | { kind: "retryStage"; pick: number; stage: number; all: boolean }
  | { kind: "retryAction"; pick: number; stage: number; action: number }
  | { kind: "transition"; stage: number; enabled: boolean }
  | { kind: "timer"; advanceMinutes: number }
  | { kind: "override"; pick: number; stage: number; onSuccess: boolean }
  | { kind: "rollback"; pick: number; stage: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.constant({ kind: "request" as const }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("source" as const), revision: fc.integer({ min: 0, max: 3 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("answer" as const), pick: fc.nat(), succeed: fc.boolean() }), weight: 8 },
  { arbitrary: fc.record({ kind: fc.constant("stale" as const), pick: fc.nat(), attemptDelta: fc.integer({ min: -1, max: 3 }) }), weight: 1 },
  { arbitrary: fc.constant({ kind: "archive" as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("update" as const), pick: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("stop" as const), pick: fc.nat(), abandon: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("retryStage" as const), pick: fc.nat(), stage: fc.nat(), all: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("retryAction" as const), pick: fc.nat(), stage: fc.nat(), action: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("transition" as const), stage: fc.nat(), enabled: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("timer" as const), advanceMinutes: fc.constantFrom(1, 61, 8 * 24 * 60) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("override" as const), pick: fc.nat(), stage: fc.nat(), onSuccess: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("rollback" as const), pick: fc.nat(), stage: fc.nat() }), weight: 1 },
);

/** Executions a retry may apply to: ended Failed/Stopped, or running with a failed action. */
function retryable(e: ExecutionRuntime): boolean {
  if (e.status === "Failed" || e.status === "Stopped") return true;
  return e.status === "InProgress" && e.stages.at(-1)?.actions.some((a) => a.status === "Failed") === true;
}

/** Accepted requests per event type over all runs, to check the properties reach the new rules. */
const accepted = new Map<string, number>();

/** The shell around decide() plus the bookkeeping the invariants need. */
class World {
  state: PipelineRuntime;
  readonly ctx = testContext();
  readonly jobs: JobSpec[] = [];
  /** jobId → number of accepted results. */
  readonly accepted = new Map<string, number>();
  /** Executions as first seen with a final status (JSON). */
  readonly final = new Map<string, string>();
  /** Failed/Stopped executions as last seen (JSON): only a retry of that execution may change them. */
  readonly ended = new Map<string, string>();
  /** Stages each execution has entered, as last seen. */
  readonly entered = new Map<string, string[]>();
  /** Specs by version, for executions started on older versions. */
  readonly versions = new Map<number, PipelineSpec>();
  /** Every execution id ever requested. */
  readonly ids: string[] = [];
  /** The request applied last (for the "only a retry resumes" invariant). */
  private lastEvent: ExecutionEvent | undefined;
  private nextExecution = 0;
  refused = 0;

  /** `updates`: structures a random "update" step switches to. */
  constructor(
    spec: PipelineSpec,
    readonly updates: readonly PipelineSpec[] = [],
  ) {
    this.state = initialRuntime(spec);
    this.versions.set(spec.version, spec);
  }

  apply(event: ExecutionEvent): void {
    const before = JSON.stringify(this.state);
    // decide() must not change its input: a change in place of the frozen state throws.
    deepFreeze(this.state);
    let d;
    try {
      d = decide(this.state, event, this.ctx);
    } catch (err) {
      // A refused request is a DomainError and leaves the state as it was.
      if (!isDomainError(err)) throw err;
      expect(["JobCompleted", "TimerFired", "SourceChanged", "PipelineUpdated", "PipelineDeleted"], (err as Error).message).not.toContain(event.type);
      expect(JSON.stringify(this.state)).toBe(before);
      this.refused++;
      return;
    }
    expect(JSON.stringify(this.state), "decide() modified its input").toBe(before);
    if (d.ignored !== undefined) {
      expect(d.state).toBe(this.state);
      expect(d.commands).toEqual([]);
      expect(d.events).toEqual([]);
    }
    if (d.ignored === undefined) accepted.set(event.type, (accepted.get(event.type) ?? 0) + 1);
    if (event.type === "JobCompleted" && d.ignored === undefined) {
      this.accepted.set(event.result.jobId, (this.accepted.get(event.result.jobId) ?? 0) + 1);
    }
    this.state = d.state;
    this.lastEvent = event;
    for (const c of d.commands) {
      if (c.type === "DispatchJob") this.jobs.push(c.job);
      // Only jobs that were dispatched are ever cancelled.
      else expect(this.jobs.some((j) => j.jobId === c.jobId)).toBe(true);
    }
    this.ctx.advance(1);
    this.check();
  }

  private newId(): string {
    const id = `e${++this.nextExecution}`;
    this.ids.push(id);
    return id;
  }

  /** Any execution ever requested; for even picks, preferably one a retry or a stop may apply to. */
  private pickId(pick: number, wanted: (e: ExecutionRuntime) => boolean): string | undefined {
    const preferred = this.ids.filter((id) => {
      const e = findExecution(this.state, id);
      return e !== undefined && wanted(e);
    });
    const from = pick % 2 === 0 && preferred.length > 0 ? preferred : this.ids;
    return from.length === 0 ? undefined : from[Math.floor(pick / 2) % from.length];
  }

  /** For even picks the stage the execution is in or ended in, else any stage. */
  private pickStage(id: string, pick: number): PipelineSpec["stages"][number] | undefined {
    const stages = this.state.spec.stages;
    const last = findExecution(this.state, id)?.stages.at(-1)?.name;
    const own = stages.find((s) => s.name === last);
    return pick % 2 === 0 && own !== undefined ? own : stages[pick % stages.length];
  }

  step(step: Step): void {
    const stages = this.state.spec.stages;
    switch (step.kind) {
      case "request":
        this.apply({ type: "ExecutionRequested", executionId: this.newId(), trigger: { triggerType: "StartPipelineExecution", triggerDetail: "t" } });
        return;
      case "source":
        this.apply({
          type: "SourceChanged",
          executionId: this.newId(),
          actionName: "Src",
          revision: { actionName: "Src", revisionId: `r${step.revision}` },
          trigger: { triggerType: "PollForSourceChanges", triggerDetail: "Src" },
        });
        return;
      case "answer":
      case "stale": {
        // Answers mostly go to jobs still awaited; stale ones to any job.
        const outstanding = this.outstanding();
        const from = step.kind === "answer" && step.pick % 4 !== 0 && outstanding.length > 0 ? outstanding : this.jobs;
        if (from.length === 0) return;
        const job = from[step.pick % from.length];
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
        // The shell archives ended executions and drops them from the runtime (a new map: the state is frozen).
        this.state = { ...this.state, executions: Object.fromEntries(Object.entries(this.state.executions).filter(([, exec]) => !isTerminal(exec.status))) };
        return;
      case "stop": {
        const id = this.pickId(step.pick, (e) => !isTerminal(e.status));
        if (id !== undefined) this.apply({ type: "StopRequested", executionId: id, abandon: step.abandon, reason: "property", by: "p" });
        return;
      }
      case "retryStage": {
        const id = this.pickId(step.pick, retryable);
        const stage = id === undefined ? undefined : this.pickStage(id, step.stage);
        if (id !== undefined && stage !== undefined) {
          this.apply({ type: "StageRetryRequested", executionId: id, stageName: stage.name, retryMode: step.all ? "ALL_ACTIONS" : "FAILED_ACTIONS", by: "p" });
        }
        return;
      }
      case "retryAction": {
        const id = this.pickId(step.pick, retryable);
        const stage = id === undefined ? undefined : this.pickStage(id, step.stage);
        const action = stage?.actions[step.action % stage.actions.length];
        if (id !== undefined && stage !== undefined && action !== undefined) {
          this.apply({ type: "ActionRetryRequested", executionId: id, stageName: stage.name, actionName: action.name, by: "p" });
        }
        return;
      }
      case "transition": {
        const stage = stages[step.stage % stages.length];
        if (stage !== undefined) this.apply({ type: "TransitionChanged", stageName: stage.name, enabled: step.enabled, reason: "maintenance", by: "p" });
        return;
      }
      case "timer":
        this.ctx.advance(step.advanceMinutes * 60_000);
        this.apply({ type: "TimerFired" });
        return;
      case "override": {
        // Mostly the latest execution of a stage with a check, else anyone.
        const id = this.pickId(step.pick, (e) => e.stages.at(-1)?.conditions !== undefined);
        const stage = id === undefined ? undefined : this.pickStage(id, step.stage);
        if (id !== undefined && stage !== undefined) {
          this.apply({ type: "ConditionOverridden", executionId: id, stageName: stage.name, conditionType: step.onSuccess ? "ON_SUCCESS" : "BEFORE_ENTRY", by: "p" });
        }
        return;
      }
      case "rollback": {
        // Mostly a kept target of the stage, else any execution.
        const targets = this.state.rollbackTargets ?? [];
        const kept = targets[step.pick % Math.max(1, targets.length)];
        const stageName = step.pick % 2 === 0 && kept !== undefined ? kept.stageName : stages[step.stage % stages.length]?.name;
        const target = step.pick % 2 === 0 && kept !== undefined ? kept.executionId : this.ids[step.pick % Math.max(1, this.ids.length)];
        if (stageName !== undefined && target !== undefined) {
          this.apply({ type: "RollbackRequested", executionId: this.newId(), stageName, targetExecutionId: target, trigger: { triggerType: "ManualRollback", triggerDetail: "p" } });
        }
        return;
      }
    }
  }

  outcome(job: JobSpec, succeed: boolean) {
    if (!succeed) return failure(job, "failed on purpose");
    if (job.category === "Rule") return success(job);
    return job.category === "Source"
      ? success(job, { revision: { revisionId: job.sourceRevision ?? "latest" }, outputVariables: { CommitId: job.sourceRevision ?? "latest" } })
      : success(job);
  }

  /** Jobs whose action is still waiting for them. */
  outstanding(): JobSpec[] {
    return this.jobs.filter((j) => {
      const exec = this.state.executions[j.pipelineExecutionId];
      if (exec === undefined || isTerminal(exec.status)) return false;
      if (j.category === "Rule") {
        return exec.stages.some((s) => (s.conditions ?? []).some((c) => c.rules.some((r) => r.ruleExecutionId === j.actionExecutionId && r.status === "InProgress")));
      }
      return exec.stages.some((s) => s.actions.some((a) => a.actionExecutionId === j.actionExecutionId && a.attempt === j.attempt && a.status === "InProgress"));
    });
  }

  check(): void {
    const executions = Object.values(this.state.executions);
    const live = executions.filter((e) => !isTerminal(e.status));
    for (const [i, slot] of this.state.stages.entries()) {
      // Never two lock-taking executions inside one stage; the lock names the one inside.
      const inside = live.filter((e) => takesLocks(e) && e.currentStage === slot.name);
      expect(inside.length, `executions inside ${slot.name}`).toBeLessThanOrEqual(1);
      expect(slot.lock).toBe(inside[0]?.id);
      // The slot lists exactly the executions waiting in front of it.
      const waiting = live.filter((e) => e.waitingFor === slot.name).map((e) => e.id);
      const listed = waitersOf(slot);
      expect([...listed].sort()).toEqual([...waiting].sort());
      expect(slot.waiting).toBe(listed[0]);
      if (this.state.spec.executionMode === "SUPERSEDED") expect(listed.length).toBeLessThanOrEqual(1);
      // Nobody waits in front of a stage that would let them in.
      if (listed.length > 0 && slot.transition?.enabled !== false) {
        for (const id of listed) {
          const w = this.state.executions[id];
          expect(w !== undefined && takesLocks(w), `${id} waits in front of the open stage ${slot.name}`).toBe(true);
        }
        expect(slot.lock).toBeDefined();
      }
      expect(slot.name).toBe(this.state.spec.stages[i]?.name);
    }
    for (const id of this.ids) {
      const exec = findExecution(this.state, id);
      if (exec !== undefined) this.checkExecution(exec);
    }
    for (const [jobId, count] of this.accepted) {
      expect(count, `accepted results of job ${jobId}`).toBe(1);
    }
  }

  checkExecution(exec: ExecutionRuntime): void {
    const names = exec.stages.map((s) => s.name);
    // Stages are entered in the order of the version the execution runs, each once;
    // a rollback runs exactly the one stage it rolls back.
    const spec = this.versions.get(exec.pipelineVersion);
    if (exec.executionType === "ROLLBACK") expect(names).toEqual([exec.rollbackStage]);
    else expect(names).toEqual(spec?.stages.slice(0, names.length).map((s) => s.name));
    // An execution never moves backwards: what it entered before is still a prefix.
    const before = this.entered.get(exec.id) ?? [];
    expect(names.slice(0, before.length)).toEqual(before);
    this.entered.set(exec.id, names);
    // Every stage but the last one entered has succeeded or was skipped.
    for (const s of exec.stages.slice(0, -1)) expect(["Succeeded", "Skipped"]).toContain(s.status);
    for (const s of exec.stages) {
      // A condition check runs only while no action runs, and at most one at a time.
      const running = (s.conditions ?? []).filter((c) => c.status === "InProgress");
      expect(running.length).toBeLessThanOrEqual(1);
      if (running.length > 0) {
        expect(s.conditions?.at(-1)?.status).toBe("InProgress");
        expect(s.actions.some((a) => a.status === "InProgress")).toBe(false);
      }
      // One automatic retry per failure: never more than one per manual retry, plus the first.
      expect(s.autoRetryAttempts ?? 0).toBeLessThanOrEqual((s.manualRetryAttempts ?? 0) + 1);
      // ROLLBACK executions check no conditions.
      if (exec.executionType === "ROLLBACK") expect(s.conditions).toBeUndefined();
    }
    // Only an update cancels, and only executions of an older version.
    if (exec.status === "Cancelled") expect(exec.pipelineVersion).toBeLessThan(this.state.spec.version);
    if (exec.currentStage !== undefined) {
      expect(exec.waitingFor).toBeUndefined();
      expect(exec.stages.at(-1)?.name).toBe(exec.currentStage);
      expect(["InProgress", "Stopping"]).toContain(exec.stages.at(-1)?.status);
    }
    const json = JSON.stringify(exec);
    if (isFinal(exec.status)) {
      // A final execution never changes again.
      const first = this.final.get(exec.id);
      if (first === undefined) this.final.set(exec.id, json);
      else expect(json).toBe(first);
    }
    const endedBefore = this.ended.get(exec.id);
    if (endedBefore !== undefined && json !== endedBefore) {
      // A Failed or Stopped execution changes only when a retry (or an override of the
      // condition that failed it) resumes it — never by a result or a timer.
      const e = this.lastEvent;
      const retried =
        (e?.type === "StageRetryRequested" || e?.type === "ActionRetryRequested" || e?.type === "ConditionOverridden") && e.executionId === exec.id;
      // PipelineDeleted drops what could still be retried; nothing else touches it.
      expect(retried, `ended execution ${exec.id} changed on ${e?.type}`).toBe(true);
    }
    if (exec.status === "Failed" || exec.status === "Stopped") this.ended.set(exec.id, json);
    else this.ended.delete(exec.id);
    if (isTerminal(exec.status)) {
      expect(exec.currentStage).toBeUndefined();
      expect(exec.waitingFor).toBeUndefined();
    } else {
      // An execution in flight is inside a stage or waiting in front of one.
      expect(exec.currentStage !== undefined || exec.waitingFor !== undefined).toBe(true);
    }
  }

  /** Enables every transition, then answers every outstanding job (successfully or not) until none is left. */
  drain(succeed: (n: number) => boolean): void {
    for (const slot of this.state.stages) {
      if (slot.transition?.enabled === false) this.apply({ type: "TransitionChanged", stageName: slot.name, enabled: true, reason: "", by: "p" });
    }
    for (let n = 0; ; n++) {
      const job = this.outstanding()[0];
      if (job === undefined) return;
      this.apply({ type: "JobCompleted", result: this.outcome(job, succeed(n)) });
      if (n > 10_000) throw new Error("drain does not converge");
    }
  }
}

describe("decide() properties", () => {
  it("keeps locks, order and ended executions intact under any event sequence, in every mode", () => {
    fc.assert(
      fc.property(pipelineArb, fc.array(pipelineArb, { maxLength: 2 }), fc.array(stepArb, { maxLength: 80, size: "max" }), (spec, updates, steps) => {
        const world = new World(spec, updates);
        for (const step of steps) world.step(step);
      }),
      { numRuns: 200 },
    );
    // The random steps reach overrides and manual rollbacks, not only their refusals.
    expect(accepted.get("ConditionOverridden") ?? 0).toBeGreaterThan(0);
    expect(accepted.get("RollbackRequested") ?? 0).toBeGreaterThan(0);
  });

  it("leaves nothing in progress once every dispatched job is answered and transitions are enabled", () => {
    // Quiescence: when no dispatched job is outstanding and every transition
    // is enabled, every execution has ended and every stage is unlocked with
    // nobody waiting — an execution waits only in front of a locked stage or
    // a disabled transition, and a locked stage always has a running action
    // (so an outstanding job) until it completes.
    fc.assert(
      fc.property(
        pipelineArb,
        fc.array(pipelineArb, { maxLength: 2 }),
        fc.array(stepArb, { maxLength: 80, size: "max" }),
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
            expect(waitersOf(slot)).toEqual([]);
          }
          // Every dispatched job got at most one accepted result.
          for (const job of world.jobs) expect(world.accepted.get(job.jobId) ?? 0, `job ${job.jobId}`).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("runs an execution to Succeeded when every job succeeds and nothing else happens, in every mode", () => {
    fc.assert(
      fc.property(passingPipelineArb, (spec) => {
        const world = new World(spec);
        world.step({ kind: "request" });
        world.drain(() => true);
        expect(world.state.executions["e1"]?.status).toBe("Succeeded");
        const actionJobs = world.jobs.filter((j) => j.category !== "Rule");
        expect(actionJobs.map((j) => j.actionName).sort()).toEqual(spec.stages.flatMap((s) => s.actions.map((a) => a.name)).sort());
        // Every declared rule ran once (Commands rules as jobs).
        const commandsRules = spec.stages.flatMap((s) => [s.beforeEntry, s.onSuccess].flatMap((c) => c?.conditions[0]?.rules ?? []).filter((r) => r.ruleTypeId.provider === "Commands"));
        expect(world.jobs.filter((j) => j.category === "Rule").map((j) => j.actionName).sort()).toEqual(commandsRules.map((r) => r.name).sort());
      }),
      { numRuns: 100 },
    );
  });

  it("a failed execution retried until its jobs succeed ends Succeeded", () => {
    fc.assert(
      fc.property(passingPipelineArb, fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }), fc.boolean(), (spec, answers, all) => {
        const world = new World(spec);
        world.step({ kind: "request" });
        let n = 0;
        for (let round = 0; round < 50; round++) {
          world.drain(() => answers[n++ % answers.length] ?? true);
          const exec = findExecution(world.state, "e1");
          if (exec?.status !== "Failed") break;
          const stage = exec.stages.at(-1)?.name ?? "";
          world.step({ kind: "retryStage", pick: 0, stage: spec.stages.findIndex((s) => s.name === stage), all });
          // Every later round succeeds, so the retry loop ends.
          answers = answers.map(() => true);
        }
        expect(findExecution(world.state, "e1")?.status).toBe("Succeeded");
        expect(world.refused).toBe(0);
      }),
      { numRuns: 100 },
    );
  });
});
