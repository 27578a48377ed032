import { MAX_OUTPUT_VARIABLES_BYTES, VARIABLE_KEY_PATTERN } from "@sluice/domain";
import type { AcknowledgeJobRequest, ActionTypeId, FailureDetails, PollForJobsRequest, PutJobFailureResultRequest, PutJobSuccessResultRequest } from "@sluice/proto";
import { checkActionTypeId, checks } from "../api/request-validation.js";
import type { RequestChecks } from "../api/request-validation.js";

// AWS limits of the job-worker calls.
const MAX_BATCH_SIZE = 100;
const MAX_QUERY_PARAMS = 1;
const MAX_QUERY_KEY_LENGTH = 50;
const MAX_QUERY_VALUE_LENGTH = 50;
const MAX_JOB_ID_LENGTH = 200;
const MAX_NONCE_LENGTH = 50;
const MAX_SUMMARY_LENGTH = 2048;
const MAX_EXTERNAL_ID_LENGTH = 1500;
const MAX_CONTINUATION_TOKEN_LENGTH = 2048;
const MAX_FAILURE_MESSAGE_LENGTH = 5000;
const MAX_REVISION_LENGTH = 1500;

/** AWS FailureType. */
export const FAILURE_TYPES = ["JobFailed", "ConfigurationError", "PermissionError", "RevisionOutOfSync", "RevisionUnavailable", "SystemUnavailable"] as const;

/** A poll, checked: the action type given, the batch size defaulted. */
export interface CheckedPoll {
  actionTypeId: ActionTypeId;
  maxBatchSize: number;
  queryParam: Record<string, string>;
}

function jobId(c: RequestChecks, value: string): RequestChecks {
  return c.text("jobId", value, 1, MAX_JOB_ID_LENGTH);
}

/** Throws ValidationException naming the field unless the job id is given. */
export function checkJobId(value: string): void {
  jobId(checks(), value).throwIfAny();
}

/** PollForJobs: a Custom action type, 1-100 jobs (0 = 1), at most one query parameter. */
export function checkPoll(req: PollForJobsRequest): CheckedPoll {
  const c = checks();
  const id = req.actionTypeId;
  if (id === undefined) c.add("actionTypeId", "is required");
  else {
    checkActionTypeId(c, "actionTypeId.", id);
    if (id.owner !== "Custom") c.add("actionTypeId.owner", "must be Custom: job workers serve custom action types");
  }
  const maxBatchSize = req.maxBatchSize === 0 ? 1 : req.maxBatchSize;
  c.range("maxBatchSize", maxBatchSize, 1, MAX_BATCH_SIZE);
  const entries = Object.entries(req.queryParam);
  if (entries.length > MAX_QUERY_PARAMS) c.add("queryParam", `must have at most ${MAX_QUERY_PARAMS} entry`);
  for (const [key, value] of entries) {
    c.text(`queryParam.${key}`, key, 1, MAX_QUERY_KEY_LENGTH);
    c.text(`queryParam.${key}`, value, 1, MAX_QUERY_VALUE_LENGTH);
  }
  c.throwIfAny();
  return { actionTypeId: id as ActionTypeId, maxBatchSize, queryParam: { ...req.queryParam } };
}

/**
 * AWS's queryParam rule: empty for a type without a queryable property; for a type with one,
 * exactly that property (jobs are filtered on its value).
 */
export function checkQueryParam(queryParam: Readonly<Record<string, string>>, queryable: string | undefined, typeKey: string): void {
  const keys = Object.keys(queryParam);
  const c = checks();
  if (queryable === undefined) {
    if (keys.length > 0) c.add("queryParam", `must be empty: ${typeKey} has no queryable property`);
  } else if (keys.length === 0) {
    c.add("queryParam", `is required: ${typeKey} has the queryable property ${JSON.stringify(queryable)}; poll with its value`);
  } else if (keys[0] !== queryable) {
    c.add(`queryParam.${keys[0]}`, `is not queryable: ${typeKey}'s queryable property is ${JSON.stringify(queryable)}`);
  }
  c.throwIfAny();
}

/** AcknowledgeJob: job id and nonce given. */
export function checkAcknowledge(req: AcknowledgeJobRequest): void {
  jobId(checks(), req.jobId).text("nonce", req.nonce, 1, MAX_NONCE_LENGTH).throwIfAny();
}

/** PutJobSuccessResult: AWS's lengths, and output variables only with the final result. */
export function checkSuccess(req: PutJobSuccessResultRequest): void {
  const c = jobId(checks(), req.jobId);
  c.text("continuationToken", req.continuationToken, 0, MAX_CONTINUATION_TOKEN_LENGTH);
  const details = req.executionDetails;
  if (details !== undefined) {
    c.text("executionDetails.summary", details.summary, 0, MAX_SUMMARY_LENGTH);
    c.text("executionDetails.externalExecutionId", details.externalExecutionId, 0, MAX_EXTERNAL_ID_LENGTH);
    c.range("executionDetails.percentComplete", details.percentComplete, 0, 100);
  }
  if (req.currentRevision !== undefined) {
    c.text("currentRevision.revision", req.currentRevision.revision, 1, MAX_REVISION_LENGTH);
    c.text("currentRevision.changeIdentifier", req.currentRevision.changeIdentifier, 0, 100);
  }
  const names = Object.keys(req.outputVariables);
  if (names.length > 0 && req.continuationToken !== "") c.add("outputVariables", "may only come with the final result, not with a continuationToken");
  let bytes = 0;
  for (const [name, value] of Object.entries(req.outputVariables)) {
    if (!VARIABLE_KEY_PATTERN.test(name)) c.add(`outputVariables.${name}`, "name must be 1-128 characters of [A-Za-z0-9@_-]");
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
  }
  if (bytes > MAX_OUTPUT_VARIABLES_BYTES) c.add("outputVariables", `are ${bytes} bytes, more than the ${MAX_OUTPUT_VARIABLES_BYTES} allowed per action`);
  c.throwIfAny();
}

/** PutJobFailureResult: failure details with a known type and a message. */
export function checkFailure(req: PutJobFailureResultRequest): FailureDetails {
  const c = jobId(checks(), req.jobId);
  const details = req.failureDetails;
  if (details === undefined) c.add("failureDetails", "is required");
  else {
    c.oneOf("failureDetails.type", details.type, FAILURE_TYPES);
    c.text("failureDetails.message", details.message, 1, MAX_FAILURE_MESSAGE_LENGTH);
    c.text("failureDetails.externalExecutionId", details.externalExecutionId, 0, MAX_EXTERNAL_ID_LENGTH);
  }
  c.throwIfAny();
  return details as FailureDetails;
}
