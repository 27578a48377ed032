import type { ResultPublisherPrincipal } from "@sluice/bus";
import { DEFAULT_RUNNER_POOL, runnerPoolOf } from "@sluice/domain";
import type { PipelineRuntime } from "@sluice/domain";
import type { JobResult } from "@sluice/proto";

/**
 * Checks that a result may be applied, before it reaches the state machine: who published it
 * (read from its subject, which NATS permissions bind to the publisher's user) must be allowed
 * for the job's provider, and every output artifact must belong to the action execution the
 * result answers. Returns why the result is refused, or undefined to accept it.
 */

/**
 * The error code a refused result is dead-lettered with (`DeadLetter.errorCode`). The dead-letter
 * handler leaves such letters alone: a forged or misrouted result must never fail the action it
 * names, or forging one would be a way to fail somebody else's action.
 */
export const REFUSED_RESULT_CODE = "AccessDeniedException";


/** Every output artifact id must be `<actionExecutionId>/<name>` of the result's own action execution. */
function foreignArtifact(result: JobResult): string | undefined {
  for (const [i, artifact] of result.outputArtifacts.entries()) {
    if (artifact.artifactId !== `${result.actionExecutionId}/${artifact.name}`) {
      return `outputArtifacts[${i}].artifactId: "${artifact.artifactId}" does not belong to action execution ${result.actionExecutionId}`;
    }
  }
  return undefined;
}

/**
 * Who may answer the job of `result.actionExecutionId`: the approval service for a Manual
 * approval, runners of the action's own pool (its `RunnerPool`) for everything else, and
 * runners of pool `default` for Commands rules.
 * Undefined when the execution is not in `state` (ended or unknown): the state machine
 * ignores such a result anyway.
 */
function expectedPublisher(state: PipelineRuntime | undefined, result: JobResult): ResultPublisherPrincipal | undefined {
  const exec = state !== undefined && Object.hasOwn(state.executions, result.pipelineExecutionId) ? state.executions[result.pipelineExecutionId] : undefined;
  if (state === undefined || exec === undefined) return undefined;
  const spec = exec.pipelineVersion === state.spec.version ? state.spec : (state.retainedSpecs?.find((s) => s.version === exec.pipelineVersion) ?? state.spec);
  for (const stage of exec.stages) {
    const run = stage.actions.find((a) => a.actionExecutionId === result.actionExecutionId || a.attempts?.some((t) => t.actionExecutionId === result.actionExecutionId) === true);
    if (run === undefined) continue;
    const action = spec.stages.find((s) => s.name === stage.name)?.actions.find((a) => a.name === run.name);
    return action?.builtIn === "Manual" ? { kind: "approval" } : { kind: "runner", pool: runnerPoolOf(action?.configuration ?? {}) };
  }
  // Not an action run: a Commands rule, which the default pool's runners run.
  return { kind: "runner", pool: DEFAULT_RUNNER_POOL };
}

/** Why `result`, published on a subject naming `publisher`, is refused; undefined when it is accepted. */
export function refuseResult(state: PipelineRuntime | undefined, result: JobResult, publisher: ResultPublisherPrincipal | undefined): string | undefined {
  if (publisher === undefined) return "the result's subject names no publisher (runner.<pool> or approval)";
  const artifact = foreignArtifact(result);
  if (artifact !== undefined) return artifact;
  const expected = expectedPublisher(state, result);
  if (expected === undefined) return undefined;
  if (expected.kind !== publisher.kind || (expected.kind === "runner" && publisher.kind === "runner" && expected.pool !== publisher.pool)) {
    return `a result for action execution ${result.actionExecutionId} must come from ${describe(expected)}, not ${describe(publisher)}`;
  }
  return undefined;
}

function describe(p: ResultPublisherPrincipal): string {
  return p.kind === "approval" ? "the approval service" : `a runner of pool ${p.pool}`;
}
