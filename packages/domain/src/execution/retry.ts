// RetryStageExecution (AWS: "Retry") and Sluice's single-action retry.
//
// A retry reruns actions of the stage an execution is in or ended in. An
// execution that ended Failed or Stopped resumes: the same id goes back to
// InProgress (pipeline and stage event RESUMED), takes the stage lock again
// and continues to later stages. Every earlier attempt of a rerun action is
// kept in its run's `attempts`.
//
// The handlers check the request, resume the execution (resume.ts), mark what
// reruns and start those actions, then leave a progressStage step on the
// draft's agenda: the driver (flow.ts) continues the stage. scheduleRerun is
// shared with the driver's automatic onFailure RETRY.

import { DomainError } from "../errors.js";
import type { DecideContext, ExecutionEvent, ExecutionRuntime, PipelineRuntime, StageRetryMode, StageRun } from "./types.js";
import { startAction } from "./actions.js";
import { runningCondition } from "./conditions.js";
import { actionSpecOf, draftOf, findExecution, isFinal, isTerminal, slotByName, stageRunOf, takesLocks } from "./draft.js";
import type { Draft, Handled } from "./draft.js";
import { bringBack } from "./resume.js";

type StageRetryRequested = Extract<ExecutionEvent, { type: "StageRetryRequested" }>;
type ActionRetryRequested = Extract<ExecutionEvent, { type: "ActionRetryRequested" }>;

/**
 * RetryStageExecution. FAILED_ACTIONS reruns the failed (and abandoned)
 * actions — allowed as soon as one failed, running ones continue; a Stopped
 * stage also continues with the groups it never started. ALL_ACTIONS reruns
 * the whole stage from its first group and needs nothing running.
 */
export function onStageRetryRequested(state: PipelineRuntime, event: StageRetryRequested, ctx: DecideContext): Handled {
  const { exec, stageRun } = retryTarget(state, event.executionId, event.stageName);
  const failed = failedActions(stageRun);
  if (event.retryMode === "ALL_ACTIONS") {
    const running = stageRun.actions.filter((a) => a.status === "InProgress").map((a) => a.name);
    if (running.length > 0) {
      throw new DomainError("ConflictException", `stage ${event.stageName} still runs ${running.join(", ")}; ALL_ACTIONS needs nothing running (use FAILED_ACTIONS)`);
    }
  }
  // A stage failed by a condition check is retried by checking it again.
  if (failed.length === 0 && stageRun.status !== "Stopped" && stageRun.failedBy === undefined) {
    throw new DomainError(
      "StageNotRetryableException",
      `stage ${event.stageName} of pipeline execution ${exec.id} has no failed actions to retry${stageRun.status === "InProgress" ? " (a retry may be underway)" : ""}`,
    );
  }
  const d = draftOf(state, ctx);
  const live = bringBack(d, exec);
  const run = stageRunOf(live, event.stageName);
  if (run === undefined) throw new Error(`stage run ${event.stageName} vanished from the copy of the state`);
  countRetry(d, live, run);
  if (run.failedBy === "BEFORE_ENTRY") delete run.entryCleared;
  delete run.failedBy;
  scheduleRerun(d, live, event.stageName, event.retryMode);
  d.agenda.push({ kind: "progressStage", exec: live, stageName: event.stageName });
  return d;
}

function failedActions(run: StageRun): StageRun["actions"] {
  return run.actions.filter((a) => (a.status === "Failed" || a.status === "Abandoned") && !(run.pendingRerun ?? []).includes(a.name));
}

/**
 * Marks what a retry reruns: ALL_ACTIONS every action (progressStage starts
 * them group by group); FAILED_ACTIONS the failed and abandoned ones, started
 * at once. Shared by RetryStageExecution and onFailure RETRY.
 */
export function scheduleRerun(d: Draft, exec: ExecutionRuntime, stageName: string, retryMode: StageRetryMode): void {
  const run = stageRunOf(exec, stageName);
  if (run === undefined) return;
  if (retryMode === "ALL_ACTIONS") {
    const spec = d.state.spec.stages.find((s) => s.name === stageName);
    run.pendingRerun = spec?.actions.map((a) => a.name) ?? [];
    return;
  }
  const failed = failedActions(run);
  run.pendingRerun = [...new Set([...(run.pendingRerun ?? []), ...failed.map((a) => a.name)])];
  for (const a of failed) {
    const spec = actionSpecOf(d.state, exec, stageName, a.name);
    if (spec !== undefined) startAction(d, exec, stageName, spec);
  }
}

/**
 * Sluice extension: reruns one action — failed or succeeded — of the stage's
 * latest execution, in the stage the execution is in or ended in. A stage
 * that failed because of another action fails again unless that one is
 * retried too.
 */
export function onActionRetryRequested(state: PipelineRuntime, event: ActionRetryRequested, ctx: DecideContext): Handled {
  const stageSpec = state.spec.stages.find((s) => s.name === event.stageName);
  if (stageSpec !== undefined && !stageSpec.actions.some((a) => a.name === event.actionName)) {
    throw new DomainError("ActionNotFoundException", `stage ${event.stageName} of pipeline ${state.pipelineName} has no action ${event.actionName}`);
  }
  const { exec, stageRun } = retryTarget(state, event.executionId, event.stageName);
  const previous = stageRun.actions.find((a) => a.name === event.actionName);
  if (previous === undefined) {
    throw new DomainError("ActionExecutionNotFoundException", `action ${event.actionName} has not run in stage ${event.stageName} of pipeline execution ${exec.id}`);
  }
  if (previous.status === "InProgress") {
    throw new DomainError("ConflictException", `action ${event.actionName} of pipeline execution ${exec.id} is still running`);
  }
  const d = draftOf(state, ctx);
  const live = bringBack(d, exec);
  const run = stageRunOf(live, event.stageName);
  const spec = actionSpecOf(d.state, live, event.stageName, event.actionName);
  if (run === undefined || spec === undefined) throw new Error(`action ${event.actionName} vanished from the copy of the state`);
  countRetry(d, live, run);
  delete run.failedBy;
  run.pendingRerun = [...new Set([...(run.pendingRerun ?? []), event.actionName])];
  startAction(d, live, event.stageName, spec);
  d.agenda.push({ kind: "progressStage", exec: live, stageName: event.stageName });
  return d;
}

/**
 * The AWS rules every retry shares; returns the execution (in flight or
 * kept for a retry) and its run of the stage.
 */
function retryTarget(state: PipelineRuntime, executionId: string, stageName: string): { exec: ExecutionRuntime; stageRun: StageRun } {
  const slot = slotByName(state, stageName);
  if (slot === undefined) throw new DomainError("StageNotFoundException", `pipeline ${state.pipelineName} has no stage ${stageName}`);
  const latest = slot.latest?.pipelineExecutionId;
  if (latest !== executionId) {
    throw new DomainError(
      "NotLatestPipelineExecutionException",
      latest === undefined
        ? `no execution has run stage ${stageName} of pipeline ${state.pipelineName}`
        : `pipeline execution ${executionId} is not the latest execution of stage ${stageName} (the latest is ${latest})`,
    );
  }
  const exec = findExecution(state, executionId);
  if (exec === undefined || isFinal(exec.status)) {
    const status = exec?.status ?? "no longer retryable";
    throw new DomainError("StageNotRetryableException", `pipeline execution ${executionId} is ${status}; only a Failed, Stopped or running execution can be retried`);
  }
  if (exec.pipelineVersion !== state.spec.version) {
    throw new DomainError(
      "StageNotRetryableException",
      `pipeline execution ${executionId} ran version ${exec.pipelineVersion} of the pipeline, which has changed to version ${state.spec.version}`,
    );
  }
  if (exec.status === "Stopping") {
    throw new DomainError("ConflictException", `pipeline execution ${executionId} is stopping; retry once it has stopped`);
  }
  const stageRun = exec.stages.at(-1);
  if (stageRun === undefined || stageRun.name !== stageName || (isTerminal(exec.status) && stageRun.status === "Succeeded")) {
    throw new DomainError(
      "StageNotRetryableException",
      `stage ${stageName} did not fail or stop in pipeline execution ${executionId}${stageRun === undefined ? "" : ` (its last stage is ${stageRun.name}, ${stageRun.status})`}`,
    );
  }
  if (isTerminal(exec.status) && takesLocks(exec) && slot.lock !== undefined) {
    throw new DomainError("ConflictException", `stage ${stageName} is occupied by pipeline execution ${slot.lock}`);
  }
  const checking = runningCondition(stageRun);
  if (checking !== undefined) {
    throw new DomainError("ConflictException", `the ${checking.conditionType} condition of stage ${stageName} is being checked in pipeline execution ${executionId}; retry once the check ends`);
  }
  return { exec, stageRun };
}

function countRetry(d: Draft, exec: ExecutionRuntime, run: StageRun): void {
  run.manualRetryAttempts = (run.manualRetryAttempts ?? 0) + 1;
  run.lastRetryTrigger = "ManualStageRetry";
  exec.lastUpdateTime = d.ctx.now;
  const slot = slotByName(d.state, run.name);
  if (slot === undefined) return;
  slot.retryStageMetadata = {
    autoStageRetryAttempt: slot.retryStageMetadata?.autoStageRetryAttempt ?? 0,
    manualStageRetryAttempt: run.manualRetryAttempts,
    latestRetryTrigger: "ManualStageRetry",
  };
}
