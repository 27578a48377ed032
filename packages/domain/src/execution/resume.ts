// Resuming an execution that ended Failed or Stopped, for a retry
// (retry.ts) or an override of the condition check that failed it
// (conditions.ts). Changes only the execution, the stage slot's lock and
// latest state, and the kept-for-retry list; returns the live execution for
// the caller to continue.

import type { ExecutionRuntime } from "./types.js";
import { addExecution, emitPipeline, emitStage, isTerminal, liveExecution, setStageLatest, slotByName, takesLocks } from "./draft.js";
import type { Draft } from "./draft.js";

/**
 * The execution the retry works on, in the draft: one in flight as it is; a
 * Failed or Stopped one resumes — InProgress again, back in `executions`,
 * inside its last stage with the lock, RESUMED events.
 */
export function bringBack(d: Draft, found: ExecutionRuntime): ExecutionRuntime {
  const { state, ctx } = d;
  const exec = liveExecution(d, found.id);
  if (exec !== undefined && !isTerminal(exec.status)) return exec;
  const live = exec ?? structuredClone(found);
  addExecution(d, live);
  if (state.retryable !== undefined) {
    state.retryable = state.retryable.filter((e) => e.id !== live.id);
    if (state.retryable.length === 0) delete state.retryable;
  }
  const stage = live.stages.at(-1);
  if (stage === undefined) throw new Error(`execution ${live.id} has no stage to resume`);
  live.status = "InProgress";
  delete live.statusSummary;
  delete live.stopTrigger;
  live.executionAttempt = (live.executionAttempt ?? 1) + 1;
  live.currentStage = stage.name;
  live.lastUpdateTime = ctx.now;
  stage.status = "InProgress";
  const slot = slotByName(state, stage.name);
  if (slot !== undefined && takesLocks(live)) slot.lock = live.id;
  setStageLatest(d, live, stage.name, "InProgress");
  emitPipeline(d, live, "RESUMED");
  emitStage(d, live, stage.name, "RESUMED");
  return live;
}
