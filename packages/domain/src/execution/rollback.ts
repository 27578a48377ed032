// Rollback (AWS: "Rollback"): RollbackStage and the automatic
// rollback of onSuccess/onFailure ROLLBACK.
//
// A rollback is a new execution of type ROLLBACK that runs only the rolled
// back stage, with the inputs that stage had in the target execution: the
// artifacts and variables produced before it, the source revisions and the
// pipeline variables. Choices where AWS is silent:
// - Only that stage runs; then the rollback execution ends Succeeded.
// - It takes the stage's lock like any execution, but enters even when the
//   stage's inbound transition is disabled and ahead of executions waiting
//   in front of it: a rollback is the operator's (or the pipeline's)
//   deliberate recovery, and the waiters enter after it. A stage that is
//   running refuses a manual rollback (ConflictException).
// - It checks no stage conditions (see conditions.ts).
// - Targets: executions that succeeded in the stage on the current pipeline
//   version, not rollbacks themselves. The executions are archived by the
//   shell, so the inputs a rollback needs are kept in the runtime for the
//   newest MAX_ROLLBACK_TARGETS executions per stage (an update of the
//   pipeline drops them: a rollback needs the current version).
//
// This module creates the ROLLBACK execution and keeps the targets; entering
// the stage is the driver's (flow.ts): RollbackStage leaves an enterStage
// step on the agenda, and rollBackAutomatically returns that step to the
// driver, which runs it before admitting the stage's waiters.

import { DomainError, invalid } from "../errors.js";
import { MAX_ROLLBACK_TARGETS, ROLLBACK_TRIGGERS } from "../limits.js";
import type { DecideContext, ExecutionEvent, ExecutionRuntime, PipelineRuntime, RollbackTarget, TriggerSpec } from "./types.js";
import { addExecution, draftOf, emitPipeline, findExecution, ignore, isTerminal, modeOf, slotByName, specFor, stageRunOf } from "./draft.js";
import type { Draft, Handled, Step } from "./draft.js";


type RollbackRequested = Extract<ExecutionEvent, { type: "RollbackRequested" }>;

/**
 * Keeps what a rollback of `stageName` to `exec` would need, once the stage
 * succeeded in it: the artifacts and variables that existed before the stage
 * (not those its own actions produced), the source revisions and pipeline
 * variables. Not for ROLLBACK or PARALLEL executions, the source stage, or
 * executions of an older version.
 */
export function recordRollbackTarget(d: Draft, exec: ExecutionRuntime, stageName: string): void {
  const { state } = d;
  if (exec.executionType === "ROLLBACK" || modeOf(exec) === "PARALLEL" || exec.pipelineVersion !== state.spec.version) return;
  const index = state.spec.stages.findIndex((s) => s.name === stageName);
  const stage = state.spec.stages[index];
  const run = stageRunOf(exec, stageName);
  if (index <= 0 || stage === undefined || run === undefined) return;
  const own = new Set(run.actions.flatMap((a) => [a.actionExecutionId, ...(a.attempts ?? []).map((x) => x.actionExecutionId)]));
  const namespaces = new Set(stage.actions.flatMap((a) => (a.namespace === undefined ? [] : [a.namespace])));
  const target: RollbackTarget = {
    executionId: exec.id,
    stageName,
    pipelineVersion: exec.pipelineVersion,
    succeededAt: d.ctx.now,
    sourceRevisions: structuredClone(exec.sourceRevisions),
    // Artifact ids are "<actionExecutionId>/<name>".
    artifacts: structuredClone(exec.artifacts.filter((a) => !own.has(a.artifactId.split("/")[0] ?? ""))),
    variables: structuredClone(Object.fromEntries(Object.entries(exec.variables).filter(([ns]) => !namespaces.has(ns)))),
  };
  if (exec.pipelineVariables !== undefined) target.pipelineVariables = structuredClone(exec.pipelineVariables);
  const others = (state.rollbackTargets ?? []).filter((t) => !(t.stageName === stageName && t.executionId === exec.id));
  const sameStage = others.filter((t) => t.stageName === stageName);
  const drop = new Set(sameStage.slice(0, Math.max(0, sameStage.length + 1 - MAX_ROLLBACK_TARGETS)));
  state.rollbackTargets = [...others.filter((t) => !drop.has(t)), target];
}

/**
 * RollbackStage: starts execution `event.executionId` (type ROLLBACK) that
 * reruns the stage with the target's inputs. Refused (nothing changes) for
 * an unknown stage, the first stage, a PARALLEL pipeline, a target that did
 * not succeed in the stage on the current version or is a rollback itself,
 * and a stage that is running. The same execution id again changes nothing.
 */
export function onRollbackRequested(state: PipelineRuntime, event: RollbackRequested, ctx: DecideContext): Handled {
  if (!ROLLBACK_TRIGGERS.includes(event.trigger.triggerType)) {
    throw invalid("ValidationException", [{ field: "trigger.triggerType", message: `must be ManualRollback or AutomatedRollback, got ${JSON.stringify(event.trigger.triggerType)}` }]);
  }
  if (Object.hasOwn(state.executions, event.executionId)) {
    return ignore(state, `execution ${event.executionId} already exists`, event.executionId);
  }
  const { stageName, targetExecutionId } = event;
  const index = state.spec.stages.findIndex((s) => s.name === stageName);
  if (index < 0) throw new DomainError("StageNotFoundException", `pipeline ${state.pipelineName} has no stage ${stageName}`);
  if (index === 0) {
    throw new DomainError("UnableToRollbackStageException", `stage ${stageName} is the first stage of pipeline ${state.pipelineName}; its source actions cannot be rolled back`);
  }
  if (state.spec.executionMode === "PARALLEL") {
    throw new DomainError("UnableToRollbackStageException", `pipeline ${state.pipelineName} runs in PARALLEL mode, which does not support rollback`);
  }
  const target = state.rollbackTargets?.find((t) => t.stageName === stageName && t.executionId === targetExecutionId);
  if (target === undefined) throw noTarget(state, stageName, targetExecutionId);
  if (target.pipelineVersion !== state.spec.version) {
    throw new DomainError(
      "PipelineExecutionOutdatedException",
      `pipeline execution ${targetExecutionId} ran version ${target.pipelineVersion} of pipeline ${state.pipelineName}, which is now at version ${state.spec.version}`,
    );
  }
  const busy = busyWith(state, stageName);
  if (busy !== undefined) throw new DomainError("ConflictException", `stage ${stageName} is running pipeline execution ${busy}; roll back once it has finished`);
  const d = draftOf(state, ctx, event.executionId);
  d.agenda.push(startRollback(d, event.executionId, index, target, event.trigger));
  return d;
}

/** Why there is no rollback target: the most precise reason decide() can know. */
function noTarget(state: PipelineRuntime, stageName: string, targetExecutionId: string): DomainError {
  const known = findExecution(state, targetExecutionId);
  if (known?.executionType === "ROLLBACK") {
    return new DomainError("UnableToRollbackStageException", `pipeline execution ${targetExecutionId} is itself a rollback; roll back to a standard execution`);
  }
  if (known !== undefined && known.pipelineVersion !== state.spec.version) {
    return new DomainError(
      "PipelineExecutionOutdatedException",
      `pipeline execution ${targetExecutionId} ran version ${known.pipelineVersion} of pipeline ${state.pipelineName}, which is now at version ${state.spec.version}`,
    );
  }
  return new DomainError(
    "UnableToRollbackStageException",
    known !== undefined
      ? `pipeline execution ${targetExecutionId} did not succeed in stage ${stageName}`
      : `pipeline execution ${targetExecutionId} is not one of the last ${MAX_ROLLBACK_TARGETS} executions that succeeded in stage ${stageName} on version ${state.spec.version} of pipeline ${state.pipelineName}`,
  );
}

/** The execution inside the stage, if any. */
function busyWith(state: PipelineRuntime, stageName: string): string | undefined {
  const slot = slotByName(state, stageName);
  if (slot?.lock !== undefined) return slot.lock;
  return Object.values(state.executions).find((e) => !isTerminal(e.status) && e.currentStage === stageName)?.id;
}

/**
 * onSuccess/onFailure ROLLBACK: after `failed` ended Failed in the stage, a
 * ROLLBACK execution (trigger AutomatedRollback) reruns the stage with the
 * inputs of the latest execution that succeeded in it, if there is one. The
 * failed execution's summary says so. Returns the step that enters the
 * rollback into the stage, for the driver to run at once.
 */
export function rollBackAutomatically(d: Draft, failed: ExecutionRuntime, stageName: string): Step | undefined {
  const { state } = d;
  const index = state.spec.stages.findIndex((s) => s.name === stageName);
  if (index <= 0 || state.spec.executionMode === "PARALLEL" || modeOf(failed) === "PARALLEL") return undefined;
  const target = state.rollbackTargets?.findLast((t) => t.stageName === stageName && t.pipelineVersion === state.spec.version && t.executionId !== failed.id);
  if (target === undefined) {
    failed.statusSummary = `${failed.statusSummary ?? "Failed"}; no earlier execution succeeded in stage "${stageName}", so there is nothing to roll back to`;
    return undefined;
  }
  if (busyWith(state, stageName) !== undefined) return undefined;
  const id = d.ctx.newId();
  failed.statusSummary = `${failed.statusSummary ?? "Failed"}; rolled back to pipeline execution ${target.executionId} by pipeline execution ${id}`;
  return startRollback(d, id, index, target, { triggerType: "AutomatedRollback", triggerDetail: failed.id });
}

/** Adds the ROLLBACK execution (STARTED); returns the step that enters it into stage `index`. */
function startRollback(d: Draft, executionId: string, index: number, target: RollbackTarget, trigger: TriggerSpec): Step {
  const { state, ctx } = d;
  const exec: ExecutionRuntime = {
    id: executionId,
    pipelineVersion: state.spec.version,
    executionMode: state.spec.executionMode,
    executionType: "ROLLBACK",
    rollbackMetadata: { rollbackTargetPipelineExecutionId: target.executionId },
    rollbackStage: target.stageName,
    status: "InProgress",
    trigger: { ...trigger },
    startTime: ctx.now,
    lastUpdateTime: ctx.now,
    stages: [],
    artifacts: structuredClone(target.artifacts),
    sourceRevisions: structuredClone(target.sourceRevisions),
    pinnedRevisions: [],
    variables: structuredClone(target.variables),
  };
  if (target.pipelineVariables !== undefined) exec.pipelineVariables = structuredClone(target.pipelineVariables);
  addExecution(d, exec);
  emitPipeline(d, exec, "STARTED");
  if (specFor(state, exec).stages[index] === undefined) throw new Error(`stage ${index} of pipeline ${state.pipelineName} vanished`);
  return { kind: "enterStage", exec, index };
}
