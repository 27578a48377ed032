import { DETAIL_TYPES, isTerminal } from "@sluice/domain";
import type { Emitted, ExecutionRuntime, PipelineRuntime, PipelineSpec, StageSlot } from "@sluice/domain";

/** The runtime after a pipeline update, and the state changes that caused. */
export interface Adoption {
  state: PipelineRuntime;
  events: Emitted[];
}

/**
 * Switches a runtime to a new pipeline version (UpdatePipeline). New
 * executions run the new version; an execution in flight keeps running (its
 * recorded progress and locks stay) as long as the stage it is in or waits
 * for, and every action it is running, still exist under the same names.
 * One that cannot continue on the new structure is Cancelled, as AWS cancels
 * executions an update makes obsolete, instead of hanging on results the new
 * version no longer expects. Stage slots are matched by name.
 */
export function adoptSpec(state: PipelineRuntime, spec: PipelineSpec, now: number): Adoption {
  const next: PipelineRuntime = structuredClone(state);
  next.spec = spec;
  next.stages = spec.stages.map((stage): StageSlot => {
    const old = next.stages.find((s) => s.name === stage.name);
    if (old === undefined) return { name: stage.name, actions: [] };
    return { ...old, actions: old.actions.filter((a) => stage.actions.some((d) => d.name === a.name)) };
  });
  const events: Emitted[] = [];
  for (const exec of Object.values(next.executions)) {
    if (isTerminal(exec.status) || canContinue(exec, spec)) continue;
    cancel(next, exec, spec.version, now, events);
  }
  return { state: next, events };
}

function canContinue(exec: ExecutionRuntime, spec: PipelineSpec): boolean {
  const stageName = exec.currentStage ?? exec.waitingFor;
  if (stageName === undefined) return true;
  const stage = spec.stages.find((s) => s.name === stageName);
  if (stage === undefined) return false;
  const run = exec.stages.findLast((s) => s.name === stageName);
  return (run?.actions ?? []).every((a) => a.status !== "InProgress" || stage.actions.some((d) => d.name === a.name));
}

function cancel(state: PipelineRuntime, exec: ExecutionRuntime, version: number, now: number, events: Emitted[]): void {
  for (const stage of exec.stages) {
    if (stage.status !== "InProgress") continue;
    for (const run of stage.actions) {
      if (run.status !== "InProgress") continue;
      run.status = "Abandoned";
      run.lastUpdateTime = now;
    }
    stage.status = "Cancelled";
    const slot = state.stages.find((s) => s.name === stage.name);
    if (slot?.latest?.pipelineExecutionId === exec.id) slot.latest = { pipelineExecutionId: exec.id, status: "Cancelled" };
  }
  for (const slot of state.stages) {
    if (slot.lock === exec.id) delete slot.lock;
    if (slot.waiting === exec.id) delete slot.waiting;
  }
  exec.status = "Cancelled";
  exec.statusSummary = `Cancelled by the update of the pipeline to version ${version}`;
  exec.lastUpdateTime = now;
  delete exec.currentStage;
  delete exec.waitingFor;
  state.finished.push(exec.id);
  events.push({
    kind: "pipeline",
    event: {
      eventId: `${exec.id}:CANCELED`,
      detailType: DETAIL_TYPES.pipeline,
      time: now,
      pipeline: state.pipelineName,
      executionId: exec.id,
      version: exec.pipelineVersion,
      state: "CANCELED",
      executionTrigger: { ...exec.trigger },
    },
  });
}
