// The pure execution state machine (AWS CodePipeline's execution rules; docs/architecture.md, "Execution rules").
//
// decide() applies one event to a copy of the state and returns the new state
// with the commands (jobs to dispatch or cancel) and state-change events it
// caused. The new state shares with the input whatever the event did not
// change (see draft.ts `Draft`), so neither may be changed in place.
// It reads no clock and makes no ids of its own: both come from ctx, so a
// decision is reproducible. An event that must not change anything (a stale or
// duplicate job result, a source revision already seen, …) returns the input
// state itself with `ignored` saying why. A request that breaks a rule (retry
// of a stage that is not retryable, stop of an execution that ended, …)
// throws a DomainError and changes nothing.
//
// How a decision is made: the event's handler checks the request against the
// input state (throwing or ignoring changes nothing), takes a draft
// (draft.ts), changes its own part of it and leaves on the draft's agenda
// the steps that move executions forward; decide() then has the driver
// (flow.ts) run those steps and turns the draft into the Decision.
//
// Handlers live with their rules: start.ts (starting, variables, limits),
// stop.ts, retry.ts, transitions.ts, conditions.ts (OverrideStageCondition),
// rollback.ts (RollbackStage). Job results, timers and the pipeline
// lifecycle are handled here, calling the driver directly where one event
// moves several executions in turn. The imports run one way: decide →
// flow → rule modules (retry and stop use actions and conditions; resume.ts
// serves retry and conditions) → draft; no rule module imports flow.ts or
// this file.

import type { DecideContext, Decision, ExecutionEvent, JobOutcome, PipelineRuntime, PipelineSpec, StageSlot } from "./types.js";
import { abandonRun, applyResult, jobIdOf, timeOutRun } from "./actions.js";
import {
  actionSpecOf,
  done,
  draftOf,
  emitStage,
  ignore,
  isDraft,
  isTerminal,
  liveExecution,
  removeWaiter,
  setLatest,
  slotByName,
  specFor,
  takesLocks,
  TIMEOUT_GRACE_MS,
} from "./draft.js";
import type { Handled } from "./draft.js";
import type { RuleLocation } from "./conditions.js";
import { applyRuleResult, cancelCondition, findRuleRun, onConditionOverridden, runningRules, timeOutRule } from "./conditions.js";
import { applyConditionOutcome, drive, enterStage, finishExecution, progressStage, settle } from "./flow.js";
import { runOfJob, staleAttempt } from "./fencing.js";
import { onRollbackRequested } from "./rollback.js";
import { onStageRetryRequested, onActionRetryRequested } from "./retry.js";
import { onDefinitionRejected, onExecutionRequested, onSourceChanged } from "./start.js";
import { onStopRequested } from "./stop.js";
import { onTransitionChanged } from "./transitions.js";

export {
  DETAIL_TYPES,
  MAX_PARALLEL_EXECUTIONS,
  MAX_QUEUED_EXECUTIONS,
  MAX_REQUEST_TOKENS,
  TIMEOUT_GRACE_MS,
  isFinal,
  isTerminal,
} from "./draft.js";

/** The runtime of a pipeline that has never run. */
export function initialRuntime(spec: PipelineSpec): PipelineRuntime {
  return {
    pipelineName: spec.name,
    spec,
    executions: {},
    stages: spec.stages.map((s) => ({ name: s.name, actions: [] })),
    lastSourceRevisions: [],
    finished: [],
  };
}

/**
 * The earliest time (epoch ms) at which a TimerFired would fail an in-flight
 * action, or undefined when nothing is running. The shell stores it as an
 * indexed deadline and sends TimerFired once it is due.
 */
export function nextDeadline(state: PipelineRuntime): number | undefined {
  let next: number | undefined;
  for (const exec of Object.values(state.executions)) {
    if (isTerminal(exec.status)) continue;
    for (const stage of exec.stages) {
      for (const run of stage.actions) {
        if (run.status !== "InProgress") continue;
        const due = run.deadline + TIMEOUT_GRACE_MS;
        if (next === undefined || due < next) next = due;
      }
    }
    for (const { rule } of runningRules(exec)) {
      const due = (rule.deadline ?? 0) + TIMEOUT_GRACE_MS;
      if (next === undefined || due < next) next = due;
    }
  }
  return next;
}

/** Applies one event to a pipeline's runtime. Pure: `state` is not modified. Throws DomainError for an invalid request. */
export function decide(state: PipelineRuntime, event: ExecutionEvent, ctx: DecideContext): Decision {
  const handled = handle(state, event, ctx);
  if (!isDraft(handled)) return handled;
  drive(handled);
  return done(handled);
}

function handle(state: PipelineRuntime, event: ExecutionEvent, ctx: DecideContext): Handled {
  switch (event.type) {
    case "ExecutionRequested":
      return onExecutionRequested(state, event, ctx);
    case "SourceChanged":
      return onSourceChanged(state, event, ctx);
    case "DefinitionRejected":
      return onDefinitionRejected(state, event, ctx);
    case "JobCompleted":
      return onJobCompleted(state, event.result, ctx);
    case "JobStarted":
      return onJobStarted(state, event.report, ctx);
    case "TimerFired":
      return onTimerFired(state, ctx);
    case "PipelineUpdated":
      return onPipelineUpdated(state, event.spec, ctx);
    case "PipelineDeleted":
      return onPipelineDeleted(state, ctx);
    case "StopRequested":
      return onStopRequested(state, event, ctx);
    case "StageRetryRequested":
      return onStageRetryRequested(state, event, ctx);
    case "ActionRetryRequested":
      return onActionRetryRequested(state, event, ctx);
    case "TransitionChanged":
      return onTransitionChanged(state, event, ctx);
    case "ConditionOverridden":
      return onConditionOverridden(state, event, ctx);
    case "RollbackRequested":
      return onRollbackRequested(state, event, ctx);
  }
}

// ---------------------------------------------------------------- results and timers

interface RunLocation {
  executionId: string;
  stageName: string;
  actionName: string;
}

/**
 * Finds the in-flight action run (or Commands rule run) a result answers, or
 * says why the result is ignored: only the current attempt of a running
 * action, or a running rule, takes a result.
 */
function findRun(state: PipelineRuntime, result: JobOutcome): RunLocation | { rule: RuleLocation } | string {
  const exec = Object.hasOwn(state.executions, result.pipelineExecutionId) ? state.executions[result.pipelineExecutionId] : undefined;
  if (exec === undefined) return `execution ${result.pipelineExecutionId} is not in flight`;
  if (isTerminal(exec.status)) return `execution ${exec.id} already ended ${exec.status}`;
  for (const stage of exec.stages) {
    for (const run of stage.actions) {
      if (run.actionExecutionId !== result.actionExecutionId) {
        if (run.attempts?.some((a) => a.actionExecutionId === result.actionExecutionId) === true) {
          return `action execution ${result.actionExecutionId} is an earlier attempt of ${run.name}, now at attempt ${run.attempt}`;
        }
        continue;
      }
      if (run.attempt !== result.attempt) {
        return `result for attempt ${result.attempt} of action execution ${run.actionExecutionId}, which is at attempt ${run.attempt}`;
      }
      if (run.status !== "InProgress") return `action execution ${run.actionExecutionId} already ended ${run.status}`;
      // A continued action takes the result of its latest follow-up job only.
      if (run.continuations !== undefined && result.jobId !== jobIdOf(run)) {
        return `result for job ${result.jobId} of action execution ${run.actionExecutionId}, whose current job is ${jobIdOf(run)}`;
      }
      return { executionId: exec.id, stageName: stage.name, actionName: run.name };
    }
  }
  const rule = findRuleRun(exec, result.actionExecutionId);
  if (rule !== undefined) {
    if (rule.rule.status !== "InProgress") return `rule execution ${result.actionExecutionId} already ended ${rule.rule.status}`;
    if (result.attempt !== 1) return `result for attempt ${result.attempt} of rule execution ${result.actionExecutionId}, which runs once`;
    return { rule };
  }
  return `action execution ${result.actionExecutionId} is unknown in execution ${exec.id}`;
}

function onJobCompleted(state: PipelineRuntime, result: JobOutcome, ctx: DecideContext): Handled {
  // The shell refuses (dead-letters and counts) stale results before they get here; this keeps
  // the rule in the state machine for every other path.
  const stale = staleAttempt(state, result);
  if (stale !== undefined) return ignore(state, stale);
  const found = findRun(state, result);
  if (typeof found === "string") return ignore(state, found);
  const d = draftOf(state, ctx);
  if ("rule" in found) {
    const exec = liveExecution(d, found.rule.executionId);
    const rule = exec === undefined ? undefined : findRuleRun(exec, result.actionExecutionId);
    if (exec === undefined || rule === undefined) throw new Error(`rule ${result.actionExecutionId} vanished from the copy of the state`);
    const finished = applyRuleResult(d, exec, rule.stageName, rule.rule, result);
    if (finished !== undefined) applyConditionOutcome(d, exec, rule.stageName, finished);
    return d;
  }
  const exec = liveExecution(d, found.executionId);
  const run = exec?.stages.findLast((s) => s.name === found.stageName)?.actions.find((a) => a.name === found.actionName);
  if (exec === undefined || run === undefined) throw new Error(`run ${found.actionName} vanished from the copy of the state`);
  applyResult(d, exec, found.stageName, actionSpecOf(d.state, exec, found.stageName, found.actionName), run, result);
  progressStage(d, exec, found.stageName);
  return d;
}

/**
 * A runner started delivery `report.delivery` of the job of a running action (or Commands rule):
 * the run is no longer queued, and results of lower deliveries are stale from now on (fencing.ts).
 * A report of a delivery not higher than one already reported changes nothing.
 */
function onJobStarted(state: PipelineRuntime, report: JobOutcome, ctx: DecideContext): Handled {
  const delivery = report.delivery;
  if (delivery === undefined || !Number.isInteger(delivery) || delivery < 1) return ignore(state, `started report for job ${report.jobId} names no delivery`);
  const found = findRun(state, report);
  if (typeof found === "string") return ignore(state, found);
  const current = "rule" in found ? found.rule.rule : runOfJob(state, report);
  if (current?.startedDelivery !== undefined && current.startedDelivery >= delivery) {
    return ignore(state, `job ${report.jobId}: delivery ${current.startedDelivery} was reported started already`);
  }
  const d = draftOf(state, ctx);
  const exec = liveExecution(d, report.pipelineExecutionId);
  if (exec === undefined) throw new Error(`execution ${report.pipelineExecutionId} vanished from the copy of the state`);
  if ("rule" in found) {
    const rule = findRuleRun(exec, report.actionExecutionId);
    if (rule === undefined) throw new Error(`rule ${report.actionExecutionId} vanished from the copy of the state`);
    rule.rule.startedDelivery = delivery;
    return d;
  }
  const run = exec.stages.findLast((s) => s.name === found.stageName)?.actions.find((a) => a.name === found.actionName);
  if (run === undefined) throw new Error(`run ${found.actionName} vanished from the copy of the state`);
  run.startedDelivery = delivery;
  run.startedAt ??= ctx.now;
  if (report.updatedBy !== undefined) run.updatedBy = report.updatedBy;
  run.lastUpdateTime = ctx.now;
  setLatest(d, exec, found.stageName, run);
  return d;
}

/** Fails every running action whose deadline (plus the grace) has passed, and cancels its job. */
function onTimerFired(state: PipelineRuntime, ctx: DecideContext): Handled {
  const due = nextDeadline(state);
  if (due === undefined || due > ctx.now) return ignore(state, "no deadline is due");
  const d = draftOf(state, ctx);
  // Ids first: failing one action may end its execution and start others.
  const expired: { execId: string; stageName: string; actionExecutionId: string }[] = [];
  for (const exec of Object.values(d.state.executions)) {
    if (isTerminal(exec.status)) continue;
    for (const stage of exec.stages) {
      for (const run of stage.actions) {
        if (run.status === "InProgress" && run.deadline + TIMEOUT_GRACE_MS <= ctx.now) {
          expired.push({ execId: exec.id, stageName: stage.name, actionExecutionId: run.actionExecutionId });
        }
      }
    }
  }
  for (const exec of Object.values(d.state.executions)) {
    if (isTerminal(exec.status)) continue;
    for (const { stageName, rule } of runningRules(exec)) {
      if ((rule.deadline ?? 0) + TIMEOUT_GRACE_MS <= ctx.now) expired.push({ execId: exec.id, stageName, actionExecutionId: rule.ruleExecutionId });
    }
  }
  for (const e of expired) {
    const exec = liveExecution(d, e.execId);
    if (exec === undefined || isTerminal(exec.status)) continue;
    const rule = findRuleRun(exec, e.actionExecutionId);
    if (rule !== undefined) {
      const finished = rule.rule.status === "InProgress" ? timeOutRule(d, exec, rule.stageName, rule.rule) : undefined;
      if (finished !== undefined) applyConditionOutcome(d, exec, rule.stageName, finished);
      continue;
    }
    const run = exec.stages.findLast((s) => s.name === e.stageName)?.actions.find((a) => a.actionExecutionId === e.actionExecutionId);
    if (run === undefined || run.status !== "InProgress") continue;
    timeOutRun(d, exec, e.stageName, actionSpecOf(d.state, exec, e.stageName, run.name), run);
    progressStage(d, exec, e.stageName);
  }
  return d;
}

// ---------------------------------------------------------------- pipeline lifecycle

function onPipelineDeleted(state: PipelineRuntime, ctx: DecideContext): Handled {
  const live = Object.values(state.executions).filter((e) => !isTerminal(e.status));
  if (live.length === 0 && state.retryable === undefined && state.rollbackTargets === undefined) return ignore(state, "no execution in flight");
  const d = draftOf(state, ctx);
  for (const { id } of live) {
    const exec = liveExecution(d, id);
    if (exec === undefined) continue;
    for (const stage of exec.stages) {
      if (stage.status !== "InProgress" && stage.status !== "Stopping") continue;
      cancelCondition(d, exec, stage.name, "Cancelled", "The pipeline was deleted");
      for (const run of stage.actions) {
        if (run.status !== "InProgress") continue;
        abandonRun(d, exec, stage.name, actionSpecOf(d.state, exec, stage.name, run.name), run, "The pipeline was deleted");
      }
      stage.status = "Cancelled";
      emitStage(d, exec, stage.name, "CANCELED");
    }
    exec.cancelledBy = "PipelineDeleted";
    finishExecution(d, exec, "Cancelled", "The pipeline was deleted");
  }
  for (const slot of d.state.stages) {
    delete slot.lock;
    delete slot.waiting;
    delete slot.queue;
  }
  delete d.state.retryable;
  delete d.state.rollbackTargets;
  return d;
}

/**
 * A new version of the pipeline (AWS: "Updates & versions"). PARALLEL
 * to PARALLEL: executions in flight continue on the version they started
 * with. Otherwise executions waiting in front of a stage are Cancelled at
 * once, executions inside a stage start nothing new and end Cancelled when
 * their running actions finish. New executions run the new version.
 */
function onPipelineUpdated(state: PipelineRuntime, spec: PipelineSpec, ctx: DecideContext): Handled {
  if (spec.version <= state.spec.version) {
    return ignore(state, `pipeline ${state.pipelineName} already runs version ${state.spec.version}`);
  }
  const d = draftOf(state, ctx);
  const old = d.state.stages;
  const oldSpec = d.state.spec;
  // A rollback needs a target on the current version.
  delete d.state.rollbackTargets;
  d.state.spec = structuredClone(spec);
  // Slots are matched by stage name: a stage kept by the update keeps its
  // lock (its execution still runs there), waiters, transition and latest state.
  d.state.stages = spec.stages.map((stage): StageSlot => {
    const prev = old.find((s) => s.name === stage.name);
    if (prev === undefined) return { name: stage.name, actions: [] };
    return { ...prev, actions: prev.actions.filter((a) => stage.actions.some((x) => x.name === a.name)) };
  });
  const live = Object.values(d.state.executions).flatMap((e) => (isTerminal(e.status) ? [] : [liveExecution(d, e.id) ?? e]));
  // A stage an earlier update dropped and this one brings back starts with a
  // fresh slot: the execution still inside it (being cancelled) keeps its lock.
  for (const exec of live) {
    const slot = exec.currentStage === undefined ? undefined : slotByName(d.state, exec.currentStage);
    if (slot !== undefined && slot.lock === undefined && takesLocks(exec)) slot.lock = exec.id;
  }
  const keepRunning = oldSpec.executionMode === "PARALLEL" && spec.executionMode === "PARALLEL";
  if (keepRunning) {
    if (live.some((e) => e.pipelineVersion === oldSpec.version)) {
      d.state.retainedSpecs = [...(d.state.retainedSpecs ?? []).filter((s) => s.version !== oldSpec.version), oldSpec];
    }
    // A waiter in front of a stage the new version dropped lost the transition
    // that held it (transitions belong to the current version's stages): it enters.
    for (const exec of live) {
      if (exec.waitingFor === undefined || d.state.stages.some((s) => s.name === exec.waitingFor)) continue;
      const index = specFor(d.state, exec).stages.findIndex((s) => s.name === exec.waitingFor);
      delete exec.waitingFor;
      if (index >= 0) enterStage(d, exec, index);
    }
    return d;
  }
  const reason = `Cancelled by the update of the pipeline to version ${spec.version}`;
  for (const exec of live) {
    // A Stopping execution ends Stopped as asked; the update does not change that.
    if (exec.status === "Stopping") continue;
    exec.cancelledBy = "PipelineUpdated";
    if (exec.waitingFor !== undefined) {
      removeWaiter(d.state, exec);
      finishExecution(d, exec, "Cancelled", reason);
      continue;
    }
    exec.cancelReason = reason;
    settle(d, exec);
  }
  return d;
}
