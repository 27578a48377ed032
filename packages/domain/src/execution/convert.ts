// Conversions between the bus messages (protobuf) and the plain data the
// state machine works on, so the shell does no field-by-field copying.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type {
  InputGrant,
  JobResult,
  JobSchema,
  OutputGrant,
  SourceRevisionDetail,
  StateChangeEventSchema,
} from "@sluice/proto";
import type { JobOutcome, JobSpec, SourceRevisionRef, StateChangeEventSpec } from "./types.js";

/** A source revision from the bus (SourceChanged.revision, JobResult.revision); empty strings become absent. */
export function sourceRevisionFromProto(actionName: string, detail: SourceRevisionDetail): SourceRevisionRef {
  const ref: SourceRevisionRef = { actionName, revisionId: detail.revisionId };
  if (detail.revisionSummary !== "") ref.revisionSummary = detail.revisionSummary;
  if (detail.created !== undefined) ref.created = timestampMs(detail.created);
  if (detail.branch !== "") ref.branch = detail.branch;
  if (detail.revisionUrl !== "") ref.revisionUrl = detail.revisionUrl;
  return ref;
}

/** A JobResult as the state machine's JobOutcome; empty strings become absent. */
export function jobOutcomeFromProto(result: JobResult): JobOutcome {
  const outcome: JobOutcome = {
    jobId: result.jobId,
    actionExecutionId: result.actionExecutionId,
    attempt: result.attempt,
    pipelineName: result.pipelineName,
    pipelineExecutionId: result.pipelineExecutionId,
    stageName: result.stageName,
    actionName: result.actionName,
    status: result.status,
    outputArtifacts: result.outputArtifacts.map((a) => ({
      name: a.name,
      artifactId: a.artifactId,
      bucket: a.bucket,
      key: a.key,
      sha256: a.sha256,
      sizeBytes: Number(a.sizeBytes),
    })),
    outputVariables: { ...result.outputVariables },
  };
  if (result.summary !== "") outcome.summary = result.summary;
  if (result.errorDetails !== undefined && (result.errorDetails.code !== "" || result.errorDetails.message !== "")) {
    outcome.errorDetails = { code: result.errorDetails.code, message: result.errorDetails.message };
  }
  if (result.externalExecutionId !== "") outcome.externalExecutionId = result.externalExecutionId;
  if (result.externalExecutionUrl !== "") outcome.externalExecutionUrl = result.externalExecutionUrl;
  if (result.revision !== undefined && result.revision.revisionId !== "") {
    const { actionName: _ignored, ...revision } = sourceRevisionFromProto(result.actionName, result.revision);
    outcome.revision = revision;
  }
  if (result.updatedBy !== "") outcome.updatedBy = result.updatedBy;
  if (result.finishedAt !== undefined) outcome.finishedAt = timestampMs(result.finishedAt);
  if (result.delivery > 0) outcome.delivery = result.delivery;
  return outcome;
}

/** The Job bus message for a dispatched JobSpec plus the grants ArtifactService issued for it. */
export function jobInit(
  job: JobSpec,
  grants: { inputs: readonly InputGrant[]; outputs: readonly OutputGrant[] },
): MessageInitShape<typeof JobSchema> {
  const init: MessageInitShape<typeof JobSchema> = {
    jobId: job.jobId,
    actionExecutionId: job.actionExecutionId,
    attempt: job.attempt,
    pipelineName: job.pipelineName,
    pipelineVersion: job.pipelineVersion,
    pipelineExecutionId: job.pipelineExecutionId,
    stageName: job.stageName,
    actionName: job.actionName,
    actionTypeId: { ...job.actionTypeId },
    configuration: { ...job.configuration },
    commands: [...job.commands],
    environmentVariables: job.environmentVariables.map((v) => ({ ...v })),
    outputVariables: [...job.outputVariables],
    inputs: [...grants.inputs],
    outputs: [...grants.outputs],
    outputArtifacts: job.outputArtifacts.map((o) => ({ name: o.name, files: [...o.files] })),
    deadline: timestampFromMs(job.deadline),
    sourceRevision: job.sourceRevision ?? "",
    approvalToken: job.approvalToken ?? "",
    artifactBucket: job.artifactBucket,
    continuationToken: job.continuationToken ?? "",
    secretConfigurationKeys: [...(job.secretConfigurationKeys ?? [])],
  };
  return init;
}

/** Sluice runs everything in one place; action events name it as their region. */
const LOCAL_REGION = "local";

/** The StateChangeEvent bus message of an emitted state change. */
export function stateChangeEventInit(event: StateChangeEventSpec): MessageInitShape<typeof StateChangeEventSchema> {
  const init: MessageInitShape<typeof StateChangeEventSchema> = {
    eventId: event.eventId,
    detailType: event.detailType,
    time: timestampFromMs(event.time),
    pipeline: event.pipeline,
    executionId: event.executionId,
    version: event.version,
    stage: event.stage ?? "",
    action: event.action ?? "",
    state: event.state,
  };
  if (event.executionTrigger !== undefined) init.executionTrigger = { ...event.executionTrigger };
  if (event.type !== undefined) init.type = { ...event.type };
  if (event.stopExecutionComments !== undefined) init.stopExecutionComments = event.stopExecutionComments;
  if (event.pipelineExecutionAttempt !== undefined) init.pipelineExecutionAttempt = event.pipelineExecutionAttempt;
  if (event.action !== undefined) init.region = LOCAL_REGION;
  if (event.inputArtifacts !== undefined) init.inputArtifacts = event.inputArtifacts.map((a) => ({ name: a.name, s3location: { ...a.s3location } }));
  if (event.outputArtifacts !== undefined) init.outputArtifacts = event.outputArtifacts.map((a) => ({ name: a.name, s3location: { ...a.s3location } }));
  if (event.executionResult !== undefined) {
    const r = event.executionResult;
    init.executionResult = {
      externalExecutionId: r.externalExecutionId ?? "",
      externalExecutionSummary: r.externalExecutionSummary ?? "",
      externalExecutionUrl: r.externalExecutionUrl ?? "",
      errorCode: r.errorCode ?? "",
    };
  }
  return init;
}
