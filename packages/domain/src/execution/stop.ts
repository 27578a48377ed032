// StopPipelineExecution (AWS: "Stop"). The handler records the stop
// and abandons what it must in the stopped stage; ending the execution and
// admitting the stage's waiters are steps it leaves on the agenda for the
// driver (flow.ts), which also settles a stop-and-wait once nothing runs.

import { DomainError, invalid } from "../errors.js";
import { MAX_STOP_REASON } from "../limits.js";
import type { DecideContext, ExecutionEvent, ExecutionRuntime, PipelineRuntime } from "./types.js";
import { abandonRun } from "./actions.js";
import { cancelCondition } from "./conditions.js";
import { actionSpecOf, draftOf, emitPipeline, emitStage, findExecution, liveExecution, releaseLock, removeWaiter, setStageLatest, stageRunOf } from "./draft.js";
import type { Handled } from "./draft.js";


type StopRequested = Extract<ExecutionEvent, { type: "StopRequested" }>;

/**
 * Stops an execution that is InProgress (or Stopping, to abandon it):
 * - waiting in front of a stage: leaves the line and is Stopped at once;
 * - abandon=false: Stopping; running actions finish, nothing new starts,
 *   then the stage and the execution are Stopped (a second request is a
 *   DuplicatedStopRequestException);
 * - abandon=true: running actions become Abandoned at once (their jobs are
 *   cancelled), the stage and the execution are Stopped; allowed after a
 *   stop-and-wait.
 * Either way the stage lock is released and the next waiter enters.
 */
export function onStopRequested(state: PipelineRuntime, event: StopRequested, ctx: DecideContext): Handled {
  if (event.reason.length > MAX_STOP_REASON) {
    throw invalid("ValidationException", [{ field: "reason", message: `at most ${MAX_STOP_REASON} characters, got ${event.reason.length}` }]);
  }
  const found = findExecution(state, event.executionId);
  if (found === undefined) {
    throw new DomainError("PipelineExecutionNotFoundException", `pipeline execution ${event.executionId} of pipeline ${state.pipelineName} is not in flight`);
  }
  if (found.status === "Stopping") {
    if (!event.abandon || found.stopTrigger?.abandon === true) {
      throw new DomainError("DuplicatedStopRequestException", `pipeline execution ${found.id} is already stopping; only an abandon request can follow a stop-and-wait`);
    }
  } else if (found.status === "Stopped" && found.stopTrigger?.abandon === true && event.abandon) {
    // AWS reports a repeated abandon as a duplicate (its abandon passes through Stopping; Sluice's is immediate).
    throw new DomainError("DuplicatedStopRequestException", `pipeline execution ${found.id} was already stopped and abandoned`);
  } else if (found.status !== "InProgress") {
    throw new DomainError("PipelineExecutionNotStoppableException", `pipeline execution ${found.id} is ${found.status}; only an InProgress execution can be stopped`);
  }
  const d = draftOf(state, ctx);
  const exec = liveExecution(d, found.id);
  if (exec === undefined) throw new Error(`execution ${found.id} vanished from the copy of the state`);
  const reason = event.reason !== "" ? event.reason : (exec.stopTrigger?.reason ?? "");
  exec.stopTrigger = { reason, by: event.by, at: ctx.now, abandon: event.abandon };
  exec.lastUpdateTime = ctx.now;
  delete exec.cancelReason;

  if (exec.waitingFor !== undefined || exec.currentStage === undefined) {
    removeWaiter(d.state, exec);
    d.agenda.push({ kind: "finish", exec, status: "Stopped", summary: stoppedSummary(exec) });
    return d;
  }
  const stageName = exec.currentStage;
  const stage = stageRunOf(exec, stageName);
  if (!event.abandon) {
    exec.status = "Stopping";
    if (stage !== undefined) stage.status = "Stopping";
    setStageLatest(d, exec, stageName, "Stopping");
    emitPipeline(d, exec, "STOPPING");
    emitStage(d, exec, stageName, "STOPPING");
    d.agenda.push({ kind: "settle", exec });
    return d;
  }
  cancelCondition(d, exec, stageName, "Abandoned", `Abandoned: ${stoppedSummary(exec)}`);
  for (const run of stage?.actions ?? []) {
    if (run.status !== "InProgress") continue;
    abandonRun(d, exec, stageName, actionSpecOf(d.state, exec, stageName, run.name), run, `Abandoned: ${stoppedSummary(exec)}`);
  }
  if (stage !== undefined) {
    stage.status = "Stopped";
    delete stage.pendingRerun;
  }
  setStageLatest(d, exec, stageName, "Stopped");
  releaseLock(d.state, exec, stageName);
  emitStage(d, exec, stageName, "STOPPED");
  d.agenda.push({ kind: "finish", exec, status: "Stopped", summary: stoppedSummary(exec) }, { kind: "admitWaiters", stageName });
  return d;
}

/** The statusSummary of a stopped execution: who stopped it, and why when they said. */
export function stoppedSummary(exec: ExecutionRuntime): string {
  const stop = exec.stopTrigger;
  if (stop === undefined) return "Stopped";
  return stop.reason === "" ? `Stopped by ${stop.by}` : `Stopped by ${stop.by}: ${stop.reason}`;
}
