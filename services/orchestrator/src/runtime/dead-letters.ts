import { fromBinary } from "@bufbuild/protobuf";
import type { MessageHandler, HandlerContext } from "@sluice/bus";
import { isTransientError } from "@sluice/bus";
import { isDomainError } from "@sluice/domain";
import type { JobOutcome, Logger } from "@sluice/domain";
import { JobResultSchema, JobSchema } from "@sluice/proto";
import type { DeadLetter, DeadLetterSchema } from "@sluice/proto";
import { REFUSED_RESULT_CODE } from "../result-intake.js";
import { failedOutcome } from "./failed-outcome.js";
import type { Concerned } from "./failed-outcome.js";
import { JOB_HEADERS } from "./publisher.js";

/**
 * The failure a dead letter stands for: a job no consumer could take (undecodable, refused as
 * poison, or out of deliveries) or a result the orchestrator could not apply. Undefined when the
 * letter names no action run (neither its bytes nor its headers say which).
 */
function failureOfDeadLetter(letter: DeadLetter, streams: { jobs: string; results: string }, header: (name: string) => string): JobOutcome | undefined {
  const what = letter.stream === streams.jobs ? "job" : letter.stream === streams.results ? "result" : undefined;
  if (what === undefined) return undefined;
  if (what === "result" && letter.errorCode === REFUSED_RESULT_CODE) return undefined;
  const concerned = what === "job" ? jobOf(letter.data, header) : resultOf(letter.data);
  if (concerned === undefined) return undefined;
  const message =
    what === "job"
      ? `the job was dead-lettered after ${letter.deliveries} deliveries and never ran to completion: ${letter.reason}`
      : `the job's result could not be applied and was dead-lettered: ${letter.reason}`;
  return failedOutcome(concerned, message);
}

function jobOf(data: Uint8Array, header: (name: string) => string): Concerned | undefined {
  try {
    const job = fromBinary(JobSchema, data);
    if (job.pipelineName !== "" && job.actionExecutionId !== "" && job.pipelineExecutionId !== "") return job;
  } catch {
    // Undecodable (the reason it was dead-lettered): the headers the orchestrator set still say whose it is.
  }
  const attempt = Number(header(JOB_HEADERS.attempt));
  const concerned: Concerned = {
    jobId: header("Sluice-Original-Msg-Id"),
    pipelineName: header(JOB_HEADERS.pipeline),
    pipelineExecutionId: header(JOB_HEADERS.execution),
    stageName: header(JOB_HEADERS.stage),
    actionName: header(JOB_HEADERS.action),
    actionExecutionId: header(JOB_HEADERS.actionExecution),
    attempt: Number.isInteger(attempt) && attempt > 0 ? attempt : 0,
  };
  return concerned.pipelineName !== "" && concerned.pipelineExecutionId !== "" && concerned.actionExecutionId !== "" && concerned.attempt > 0 ? concerned : undefined;
}

function resultOf(data: Uint8Array): Concerned | undefined {
  try {
    const result = fromBinary(JobResultSchema, data);
    return result.pipelineName !== "" && result.actionExecutionId !== "" ? result : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The handler of the orchestrator's dead-letter consumer: fails the action run a dead letter
 * concerns at once (decide() ignores it when the run already ended or moved on to another
 * attempt). A transient failure is thrown, so the letter is retried; any other is logged and
 * the letter acked — a dead letter is never dead-lettered again.
 */
export function createDeadLetterHandler(
  streams: { jobs: string; results: string },
  fail: (pipelineName: string, outcome: JobOutcome) => Promise<unknown>,
  logger: Logger,
): MessageHandler<typeof DeadLetterSchema> {
  return async (letter: DeadLetter, ctx: HandlerContext) => {
    const outcome = failureOfDeadLetter(letter, streams, ctx.header);
    if (outcome === undefined && letter.stream === streams.results && letter.errorCode === REFUSED_RESULT_CODE) {
      logger.warn("refused result stays dead-lettered; the action it names goes on", { subject: letter.subject, reason: letter.reason });
      return;
    }
    if (outcome === undefined) {
      logger.error("dead letter names no action; left for an operator", { stream: letter.stream, subject: letter.subject, sequence: String(letter.streamSequence), reason: letter.reason });
      return;
    }
    logger.warn("failing an action whose job or result was dead-lettered", { pipeline: outcome.pipelineName, actionExecutionId: outcome.actionExecutionId, reason: letter.reason });
    try {
      await fail(outcome.pipelineName, outcome);
    } catch (err) {
      if (isTransientError(err)) throw err;
      if (isDomainError(err) && err.code === "PipelineNotFoundException") return;
      logger.error("a dead letter could not fail its action", { pipeline: outcome.pipelineName, actionExecutionId: outcome.actionExecutionId, error: err instanceof Error ? err.message : String(err) });
    }
  };
}
