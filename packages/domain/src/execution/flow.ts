// The driver: the one module that moves executions forward.
// Entering a stage or waiting in front of it per execution mode, checking its
// conditions (conditions.ts runs the checks and returns a finished one, this
// file acts on its outcome), running its actions group by group (actions.ts
// starts each), completing, skipping, retrying (retry.ts marks the reruns) or
// rolling back a stage (rollback.ts creates the rollback execution), admitting
// waiters when a stage frees up, and ending executions (including the
// Stopping and cancelling ones once their running actions finished).
//
// The rule modules it calls change only their own part of the draft and
// return what happened; none of them imports this file. Event handlers in
// those modules leave the steps that follow on the draft's agenda
// (draft.ts `Step`), and `drive` runs them here, in order.

import type { ActionRun, ConditionRun, ConditionType, ExecutionRuntime, ExecutionStatus, StageRetryMode, StageStatus } from "./types.js";
import { startAction } from "./actions.js";
import { cancelCondition, conditionsApply, runningCondition, stageSpecFor, startCondition } from "./conditions.js";
import {
  emitPipeline,
  emitStage,
  isTerminal,
  liveExecution,
  modeOf,
  releaseLock,
  removeWaiter,
  setStageLatest,
  setWaiters,
  slotByName,
  specFor,
  stageRunOf,
  takesLocks,
  transitionEnabled,
  waitersOf,
} from "./draft.js";
import type { Draft, PipelineEventState, Step } from "./draft.js";
import { scheduleRerun } from "./retry.js";
import { recordRollbackTarget, rollBackAutomatically } from "./rollback.js";
import { stoppedSummary } from "./stop.js";

/** Runs the steps the event's handler left on the agenda, oldest first. */
export function drive(d: Draft): void {
  for (let step = d.agenda.shift(); step !== undefined; step = d.agenda.shift()) runStep(d, step);
}

function runStep(d: Draft, step: Step): void {
  switch (step.kind) {
    case "tryEnter":
      tryEnter(d, step.exec, step.index);
      return;
    case "enterStage":
      enterStage(d, step.exec, step.index);
      return;
    case "progressStage":
      progressStage(d, step.exec, step.stageName);
      return;
    case "conditionDone":
      applyConditionOutcome(d, step.exec, step.stageName, step.cond);
      return;
    case "finish":
      finishExecution(d, step.exec, step.status, step.summary);
      return;
    case "settle":
      settle(d, step.exec);
      return;
    case "admitWaiters":
      admitWaiters(d, step.stageName);
      return;
  }
}

const PIPELINE_STATE: Record<ExecutionStatus, PipelineEventState> = {
  InProgress: "STARTED",
  Succeeded: "SUCCEEDED",
  Failed: "FAILED",
  Superseded: "SUPERSEDED",
  Stopped: "STOPPED",
  Stopping: "STOPPING",
  Cancelled: "CANCELED",
};

/** Ends an execution: status, summary, event; the shell archives it (listed in `finished`). */
export function finishExecution(d: Draft, exec: ExecutionRuntime, status: ExecutionStatus, summary?: string): void {
  exec.status = status;
  if (summary !== undefined) exec.statusSummary = summary;
  exec.lastUpdateTime = d.ctx.now;
  delete exec.currentStage;
  if (exec.waitingFor !== undefined) removeWaiter(d.state, exec);
  delete exec.cancelReason;
  d.state.finished.push(exec.id);
  emitPipeline(d, exec, PIPELINE_STATE[status]);
}

/** Ends an older waiter replaced by a newer arrival (SUPERSEDED). */
function supersede(d: Draft, older: ExecutionRuntime, by: ExecutionRuntime): void {
  older.supersededBy = by.id;
  finishExecution(d, older, "Superseded", `Superseded by pipeline execution ${by.id}`);
}

function wait(d: Draft, exec: ExecutionRuntime, stageName: string, ids: readonly string[]): void {
  const slot = slotByName(d.state, stageName);
  if (slot === undefined) throw new Error(`pipeline ${d.state.pipelineName} has no stage ${stageName} to wait for`);
  setWaiters(slot, ids);
  delete exec.currentStage;
  exec.waitingFor = stageName;
  exec.lastUpdateTime = d.ctx.now;
}

/**
 * Moves an execution to stage `index` of the version it runs: enter it, wait
 * in front of it, or finish Succeeded after the last stage.
 * - SUPERSEDED: enters a free stage with an enabled transition; otherwise
 *   waits, replacing (superseding) the execution that waited there.
 * - QUEUED: enters only when the stage is free, the transition enabled and
 *   nobody queues ahead; otherwise joins the end of the queue.
 * - PARALLEL: takes no lock; waits only while the transition is disabled.
 */
function tryEnter(d: Draft, exec: ExecutionRuntime, index: number): void {
  const spec = specFor(d.state, exec);
  const stage = spec.stages[index];
  if (stage === undefined) {
    finishExecution(d, exec, "Succeeded");
    return;
  }
  const slot = slotByName(d.state, stage.name);
  const enabled = transitionEnabled(slot);
  const mode = modeOf(exec);
  if (mode === "PARALLEL" || slot === undefined) {
    if (enabled || slot === undefined) enterStage(d, exec, index);
    else wait(d, exec, stage.name, [...waitersOf(slot), exec.id]);
    return;
  }
  const waiters = waitersOf(slot);
  if (mode === "QUEUED") {
    if (enabled && slot.lock === undefined && waiters.length === 0) enterStage(d, exec, index);
    else wait(d, exec, stage.name, [...waiters, exec.id]);
    return;
  }
  if (enabled && slot.lock === undefined) {
    enterStage(d, exec, index);
    return;
  }
  // SUPERSEDED: one waiter per stage; the newer arrival replaces the older.
  wait(d, exec, stage.name, [exec.id]);
  for (const id of waiters) {
    const older = id === exec.id ? undefined : d.state.executions[id];
    if (older !== undefined && !isTerminal(older.status)) supersede(d, liveExecution(d, id) ?? older, exec);
  }
}

/** Enters stage `index` of the execution's version and starts its first actions. */
export function enterStage(d: Draft, exec: ExecutionRuntime, index: number): void {
  const stage = specFor(d.state, exec).stages[index];
  if (stage === undefined) throw new Error(`execution ${exec.id} has no stage ${index}`);
  const slot = slotByName(d.state, stage.name);
  if (exec.waitingFor !== undefined) removeWaiter(d.state, exec);
  if (slot !== undefined) {
    if (takesLocks(exec)) slot.lock = exec.id;
    if (slot.latest?.pipelineExecutionId !== exec.id) {
      delete slot.retryStageMetadata;
      delete slot.conditions;
    }
    slot.latest = { pipelineExecutionId: exec.id, status: "InProgress" };
  }
  exec.currentStage = stage.name;
  exec.lastUpdateTime = d.ctx.now;
  exec.stages.push({ name: stage.name, status: "InProgress", actions: [] });
  emitStage(d, exec, stage.name, "STARTED");
  progressStage(d, exec, stage.name);
}

/**
 * Drives the stage an execution is inside: waits while actions or a
 * condition check run, checks the beforeEntry condition first, starts the
 * next runOrder group (actions not run yet, or pending a retry) when the
 * current one succeeded, checks the onSuccess condition once every action
 * succeeded, and completes the stage — or handles its failure (see
 * `stageFailed`) when something failed and nothing runs. A Stopping or
 * cancelling execution starts nothing and ends once nothing of it runs.
 */
export function progressStage(d: Draft, exec: ExecutionRuntime, stageName: string): void {
  if (exec.cancelReason !== undefined || exec.status === "Stopping") {
    settle(d, exec);
    return;
  }
  if (isTerminal(exec.status)) return;
  const stageSpec = stageSpecFor(d.state, exec, stageName);
  const run = stageRunOf(exec, stageName);
  if (stageSpec === undefined || run === undefined || run.status !== "InProgress") return;
  if (runningCondition(run) !== undefined) return;
  const checks = conditionsApply(exec);
  if (checks && stageSpec.beforeEntry !== undefined && run.entryCleared !== true) {
    checkCondition(d, exec, stageName, "BEFORE_ENTRY");
    return;
  }
  for (;;) {
    if (run.actions.some((a) => a.status === "InProgress")) return;
    const pending = new Set(run.pendingRerun ?? []);
    const failed = run.actions.find((a) => (a.status === "Failed" || a.status === "Abandoned") && !pending.has(a.name));
    if (failed !== undefined) {
      stageFailed(d, exec, stageName, failed);
      return;
    }
    const remaining = stageSpec.actions.filter((a) => pending.has(a.name) || !run.actions.some((r) => r.name === a.name));
    if (remaining.length === 0) {
      if (checks && stageSpec.onSuccess !== undefined && run.successCleared !== true) checkCondition(d, exec, stageName, "ON_SUCCESS");
      else completeStage(d, exec, stageName, "Succeeded");
      return;
    }
    const order = Math.min(...remaining.map((a) => a.runOrder));
    for (const action of remaining) {
      if (action.runOrder === order) startAction(d, exec, stageName, action);
    }
  }
}

/**
 * A stage whose action failed, once nothing of it runs (AWS:
 * "Retry", "Rollback", "Conditions"), per its onFailure:
 * - result RETRY: the stage is retried automatically with the configured
 *   mode, once per failure — a failure of the automatic retry itself is not
 *   retried again (a manual retry re-arms it);
 * - a condition: its check decides on a rollback (see conditions.ts);
 * - result ROLLBACK: the stage fails and is rolled back;
 * - none: the stage and the execution fail.
 */
function stageFailed(d: Draft, exec: ExecutionRuntime, stageName: string, failed: ActionRun): void {
  const onFailure = conditionsApply(exec) ? stageSpecFor(d.state, exec, stageName)?.onFailure : undefined;
  const run = stageRunOf(exec, stageName);
  const retryMode = onFailure?.result === "RETRY" ? onFailure.retryConfiguration?.retryMode : undefined;
  if (run !== undefined && retryMode !== undefined && run.lastRetryTrigger !== "AutomatedStageRetry") {
    retryAutomatically(d, exec, stageName, retryMode);
    return;
  }
  if (onFailure !== undefined && onFailure.conditions.length > 0) {
    checkCondition(d, exec, stageName, "ON_FAILURE");
    return;
  }
  completeStage(d, exec, stageName, "Failed", { failed, rollback: onFailure?.result === "ROLLBACK" });
}

/** onFailure RETRY: reruns the stage's failed (or all) actions; counted in retryStageMetadata. */
function retryAutomatically(d: Draft, exec: ExecutionRuntime, stageName: string, retryMode: StageRetryMode): void {
  const run = stageRunOf(exec, stageName);
  if (run === undefined) return;
  run.autoRetryAttempts = (run.autoRetryAttempts ?? 0) + 1;
  run.lastRetryTrigger = "AutomatedStageRetry";
  exec.lastUpdateTime = d.ctx.now;
  const slot = slotByName(d.state, stageName);
  if (slot?.latest?.pipelineExecutionId === exec.id) {
    slot.retryStageMetadata = {
      autoStageRetryAttempt: run.autoRetryAttempts,
      manualStageRetryAttempt: run.manualRetryAttempts ?? 0,
      latestRetryTrigger: "AutomatedStageRetry",
    };
  }
  scheduleRerun(d, exec, stageName, retryMode);
  progressStage(d, exec, stageName);
}

/** Starts a condition check; one decided at once (no rule job to wait for) takes effect at once. */
function checkCondition(d: Draft, exec: ExecutionRuntime, stageName: string, type: ConditionType): void {
  const finished = startCondition(d, exec, stageName, type);
  if (finished !== undefined) applyConditionOutcome(d, exec, stageName, finished);
}

/**
 * What a finished condition check does to its stage (conditions.ts explains
 * the semantics): BEFORE_ENTRY passed → the actions run, failed → SKIP or
 * FAIL; ON_SUCCESS passed → the stage succeeds, failed → FAIL or ROLLBACK;
 * ON_FAILURE met → the stage fails and rolls back, not met → it just fails.
 */
export function applyConditionOutcome(d: Draft, exec: ExecutionRuntime, stageName: string, cond: ConditionRun): void {
  const run = stageRunOf(exec, stageName);
  if (run === undefined) return;
  const passed = cond.status === "Succeeded" || cond.status === "Overridden";
  const summary = `Stage "${stageName}" failed its ${cond.conditionType} condition: ${cond.summary ?? cond.status}`;
  switch (cond.conditionType) {
    case "BEFORE_ENTRY":
      if (passed) {
        run.entryCleared = true;
        progressStage(d, exec, stageName);
      } else if (cond.result === "SKIP") {
        skipStage(d, exec, stageName);
      } else {
        run.failedBy = "BEFORE_ENTRY";
        completeStage(d, exec, stageName, "Failed", { summary });
      }
      return;
    case "ON_SUCCESS":
      if (passed) {
        run.successCleared = true;
        progressStage(d, exec, stageName);
      } else {
        run.failedBy = "ON_SUCCESS";
        completeStage(d, exec, stageName, "Failed", { summary, rollback: cond.result === "ROLLBACK" });
      }
      return;
    case "ON_FAILURE": {
      const failed = run.actions.find((a) => a.status === "Failed" || a.status === "Abandoned");
      completeStage(d, exec, stageName, "Failed", failed === undefined ? { rollback: passed } : { failed, rollback: passed });
      return;
    }
  }
}

/** beforeEntry SKIP: the stage is Skipped and the execution continues with the next stage. */
function skipStage(d: Draft, exec: ExecutionRuntime, stageName: string): void {
  const run = stageRunOf(exec, stageName);
  if (run !== undefined) {
    run.status = "Skipped";
    delete run.pendingRerun;
  }
  setStageLatest(d, exec, stageName, "Skipped");
  releaseLock(d.state, exec, stageName);
  delete exec.currentStage;
  exec.lastUpdateTime = d.ctx.now;
  // EventBridge documents no stage state for a skip; Sluice says SKIPPED.
  emitStage(d, exec, stageName, "SKIPPED");
  const index = specFor(d.state, exec).stages.findIndex((s) => s.name === stageName);
  tryEnter(d, exec, index + 1);
  admitWaiters(d, stageName);
}

/** How a stage ended, for completeStage. */
interface StageEnd {
  /** The action whose failure failed the stage. */
  failed?: ActionRun;
  /** The execution's statusSummary when it fails (default: names the failed action). */
  summary?: string;
  /** Roll the stage back automatically to the latest execution that succeeded in it. */
  rollback?: boolean;
}

function completeStage(d: Draft, exec: ExecutionRuntime, stageName: string, status: StageStatus, end: StageEnd = {}): void {
  const run = stageRunOf(exec, stageName);
  if (run !== undefined) {
    run.status = status;
    delete run.pendingRerun;
  }
  setStageLatest(d, exec, stageName, status);
  releaseLock(d.state, exec, stageName);
  delete exec.currentStage;
  exec.lastUpdateTime = d.ctx.now;
  emitStage(d, exec, stageName, status === "Succeeded" ? "SUCCEEDED" : "FAILED");
  if (status === "Succeeded") {
    if (exec.executionType === "ROLLBACK") {
      // A rollback reruns one stage; then it is done.
      const target = exec.rollbackMetadata?.rollbackTargetPipelineExecutionId ?? "";
      finishExecution(d, exec, "Succeeded", `Rolled back stage "${stageName}" to pipeline execution ${target}`);
    } else {
      recordRollbackTarget(d, exec, stageName);
      const index = specFor(d.state, exec).stages.findIndex((s) => s.name === stageName);
      tryEnter(d, exec, index + 1);
    }
  } else {
    const failed = end.failed;
    const why = failed?.errorDetails?.message ?? failed?.summary ?? "the action failed";
    const summary =
      end.summary ?? (failed === undefined ? `Stage "${stageName}" failed` : `Action "${failed.name}" in stage "${stageName}" failed: ${why}`);
    finishExecution(d, exec, "Failed", summary);
    // The rollback takes the stage before anyone waiting in front of it.
    const rollback = end.rollback === true ? rollBackAutomatically(d, exec, stageName) : undefined;
    if (rollback !== undefined) runStep(d, rollback);
  }
  admitWaiters(d, stageName);
}

/**
 * Lets waiters into a stage that may have become free (unlocked, transition
 * enabled): PARALLEL waiters all enter; of the others only the first in line
 * (SUPERSEDED: the single waiter; QUEUED: the oldest), once the lock is free.
 */
function admitWaiters(d: Draft, stageName: string): void {
  const slot = slotByName(d.state, stageName);
  if (slot === undefined) return;
  for (;;) {
    if (!transitionEnabled(slot)) return;
    const ids = waitersOf(slot);
    const live = ids.filter((id) => {
      const w = d.state.executions[id];
      return w !== undefined && !isTerminal(w.status) && w.waitingFor === stageName;
    });
    if (live.length !== ids.length) setWaiters(slot, live);
    let next: ExecutionRuntime | undefined;
    for (const id of live) {
      const w = d.state.executions[id];
      if (w === undefined) continue;
      if (!takesLocks(w)) {
        next = w;
        break;
      }
      // The first execution in line that needs the lock blocks those behind it.
      if (slot.lock === undefined) next = w;
      break;
    }
    if (next === undefined) return;
    const entering = liveExecution(d, next.id) ?? next;
    const index = specFor(d.state, entering).stages.findIndex((s) => s.name === stageName);
    if (index < 0) {
      removeWaiter(d.state, entering);
      continue;
    }
    enterStage(d, entering, index);
  }
}

/**
 * Ends an execution that is Stopping (stop-and-wait) or marked for
 * cancellation once nothing of it runs: its stage becomes Stopped or
 * Cancelled, the stage lock is released and the next waiter admitted.
 */
export function settle(d: Draft, exec: ExecutionRuntime): void {
  if (isTerminal(exec.status)) return;
  const stopping = exec.status === "Stopping";
  if (!stopping && exec.cancelReason === undefined) return;
  const name = exec.currentStage;
  const stage = name === undefined ? undefined : stageRunOf(exec, name);
  if (stage?.actions.some((a) => a.status === "InProgress")) return;
  // A condition check is not waited for: its rules are abandoned.
  if (name !== undefined) cancelCondition(d, exec, name, "Cancelled", stopping ? stoppedSummary(exec) : (exec.cancelReason ?? "Cancelled"));
  if (stage !== undefined) {
    stage.status = stopping ? "Stopped" : "Cancelled";
    delete stage.pendingRerun;
    setStageLatest(d, exec, stage.name, stage.status);
    releaseLock(d.state, exec, stage.name);
    emitStage(d, exec, stage.name, stopping ? "STOPPED" : "CANCELED");
  }
  if (stopping) finishExecution(d, exec, "Stopped", stoppedSummary(exec));
  else finishExecution(d, exec, "Cancelled", exec.cancelReason);
  if (stage !== undefined) admitWaiters(d, stage.name);
}
