// Fencing of stale attempts (docs/architecture.md, "Runners, leases and fencing").
//
// A runner reports each JetStream delivery of a job it starts (JobStarted, with the delivery
// number), and every result names the delivery it comes from. The highest started delivery is
// kept on the run (ActionRun / RuleRun `startedDelivery`). A result from a lower delivery comes
// from an attempt whose lease passed to another runner since — a runner paused past its lease
// (SIGSTOP, a VM freeze, a long GC) and resumed — and is refused: applying it could complete the
// action with the outputs of a run that another runner is repeating. Pure: reads the state only.

import type { ActionRun, JobOutcome, PipelineRuntime, RuleRun } from "./types.js";

/**
 * `JobResult.status` of a runner's "started" report: it took delivery `JobResult.delivery` of the
 * job and runs it now. The orchestrator applies it as JobStarted; it is never an outcome.
 */
export const JOB_STARTED_STATUS = "InProgress";

/** The run (action run or Commands rule run) a job's result or report concerns, if still in the state. */
export function runOfJob(state: PipelineRuntime, outcome: Pick<JobOutcome, "pipelineExecutionId" | "actionExecutionId">): ActionRun | RuleRun | undefined {
  const exec = Object.hasOwn(state.executions, outcome.pipelineExecutionId) ? state.executions[outcome.pipelineExecutionId] : undefined;
  if (exec === undefined) return undefined;
  for (const stage of exec.stages) {
    const run = stage.actions.find((a) => a.actionExecutionId === outcome.actionExecutionId);
    if (run !== undefined) return run;
    for (const cond of stage.conditions ?? []) {
      const rule = cond.rules.find((r) => r.ruleExecutionId === outcome.actionExecutionId);
      if (rule !== undefined) return rule;
    }
  }
  return undefined;
}

/**
 * Why `result` is a stale attempt: its delivery is lower than the highest delivery of the same
 * job a runner reported started. Undefined when it is not stale — including a result that names
 * no delivery (approvals, job workers, older runners) and a run that has no started report.
 */
export function staleAttempt(state: PipelineRuntime, result: JobOutcome): string | undefined {
  if (result.delivery === undefined) return undefined;
  const run = runOfJob(state, result);
  const started = run?.startedDelivery;
  if (run === undefined || started === undefined) return undefined;
  // An earlier attempt of an action (a retry) is another action execution: not found above.
  if ("attempt" in run && run.attempt !== result.attempt) return undefined;
  if (result.delivery >= started) return undefined;
  return `job ${result.jobId}: result from delivery ${result.delivery}, but delivery ${started} was started since by ${run.updatedBy ?? "another runner"} (a stale attempt, e.g. a runner paused past its lease)`;
}

/** A job dispatched to a runner pool that no runner reported started (shown as queued). */
export interface QueuedJob {
  readonly jobId: string;
  readonly pool: string;
  /** Epoch ms: when it was dispatched. */
  readonly since: number;
}

/** The queued jobs of a pipeline's in-flight executions (for the `sluice.jobs.queued` gauges). */
export function queuedJobsOf(state: PipelineRuntime): QueuedJob[] {
  const out: QueuedJob[] = [];
  for (const exec of Object.values(state.executions)) {
    for (const stage of exec.stages) {
      for (const run of stage.actions) {
        if (run.status !== "InProgress" || run.runnerPool === undefined || run.startedAt !== undefined) continue;
        out.push({ jobId: `${run.actionExecutionId}:${run.attempt}`, pool: run.runnerPool, since: run.startTime });
      }
    }
  }
  return out;
}
