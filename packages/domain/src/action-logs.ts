// Where an action's log lives: the artifact that holds a job's whole log, and the
// reference views give for it (logStreamARN).

/**
 * The artifact name of one attempt's stored log: `log.<attempt>`. The dot keeps it apart from every
 * declared artifact name (`[A-Za-z0-9_-]`), so a pipeline cannot declare an output that overwrites a log.
 */
export function logArtifactName(attempt: number): string {
  return `log.${attempt}`;
}

/** Matches `logArtifactName` results. */
export const LOG_ARTIFACT_NAME_PATTERN = /^log\.[1-9][0-9]{0,8}$/;

/** The artifact id of one attempt's stored log: `<actionExecutionId>/log.<attempt>`. */
export function logArtifactIdOf(actionExecutionId: string, attempt: number): string {
  return `${actionExecutionId}/${logArtifactName(attempt)}`;
}

/** The reference to an action execution's log in views (AWS logStreamARN): `sluice:logs:<pipeline>:<actionExecutionId>`. */
export function logStreamArnOf(pipelineName: string, actionExecutionId: string): string {
  return `sluice:logs:${pipelineName}:${actionExecutionId}`;
}
