import type { JobOutcome } from "@sluice/domain";

/** Who a failure concerns: enough for decide() to find the action run. */
export type Concerned = Pick<JobOutcome, "jobId" | "actionExecutionId" | "attempt" | "pipelineName" | "pipelineExecutionId" | "stageName" | "actionName">;

/**
 * The failed result the orchestrator reports itself for a job that will never report one (not
 * dispatched, or dead-lettered), shaped as a runner's failure so it takes the same path.
 */
export function failedOutcome(concerned: Concerned, message: string): JobOutcome {
  return {
    jobId: concerned.jobId,
    actionExecutionId: concerned.actionExecutionId,
    attempt: concerned.attempt,
    pipelineName: concerned.pipelineName,
    pipelineExecutionId: concerned.pipelineExecutionId,
    stageName: concerned.stageName,
    actionName: concerned.actionName,
    status: "Failed",
    errorDetails: { code: "JobFailed", message },
    outputArtifacts: [],
    outputVariables: {},
    updatedBy: "orchestrator",
  };
}
