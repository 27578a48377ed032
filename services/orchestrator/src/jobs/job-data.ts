import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@sluice/grpc";
import type { ArtifactService, Grant, IssueJobGrantsResponse, Job, JobDataSchema } from "@sluice/proto";
import { pipelineArn } from "../api/pipeline-api.js";

type JobDataInit = MessageInitShape<typeof JobDataSchema>;

/**
 * Issues a job's artifact grants afresh (they are presigned URLs with a short life, so every
 * hand-out and every GetJobDetails gets new ones instead of those the job was published with).
 * Without an artifact service the job goes without grants, as runner jobs do.
 */
export async function freshGrants(artifacts: Client<typeof ArtifactService> | undefined, job: Job, signal?: AbortSignal): Promise<Pick<IssueJobGrantsResponse, "inputs" | "outputs">> {
  const inputArtifactIds = job.inputs.map((i) => i.artifactId);
  const outputNames = job.outputs.length > 0 ? job.outputs.map((o) => o.name) : job.outputArtifacts.map((o) => o.name);
  if (artifacts === undefined || (inputArtifactIds.length === 0 && outputNames.length === 0)) return { inputs: [], outputs: [] };
  return artifacts.issueJobGrants(
    {
      pipelineName: job.pipelineName,
      pipelineExecutionId: job.pipelineExecutionId,
      stageName: job.stageName,
      actionName: job.actionName,
      actionExecutionId: job.actionExecutionId,
      bucket: job.artifactBucket,
      inputArtifactIds,
      outputNames,
    },
    signal === undefined ? {} : { signal },
  );
}

/** AWS JobData of a job, with the grants of `freshGrants` as its artifacts' credentials. */
export function jobDataOf(job: Job, grants: Pick<IssueJobGrantsResponse, "inputs" | "outputs">): JobDataInit {
  const location = (grant: Grant | undefined): { location?: { bucketName: string; objectKey: string }; grant?: Grant } =>
    grant === undefined ? {} : { location: { bucketName: grant.bucket, objectKey: grant.key }, grant };
  return {
    ...(job.actionTypeId === undefined ? {} : { actionTypeId: job.actionTypeId }),
    actionConfiguration: { ...job.configuration },
    pipelineContext: {
      pipelineName: job.pipelineName,
      stage: { name: job.stageName },
      action: { name: job.actionName, actionExecutionId: job.actionExecutionId },
      pipelineExecutionId: job.pipelineExecutionId,
      pipelineArn: pipelineArn(job.pipelineName),
      pipelineVersion: job.pipelineVersion,
    },
    inputArtifacts: grants.inputs.map((i) => ({ name: i.name, artifactId: i.artifactId, sha256: i.sha256, sizeBytes: i.sizeBytes, ...location(i.grant) })),
    outputArtifacts: grants.outputs.map((o) => ({ name: o.name, artifactId: o.artifactId, ...location(o.grant) })),
    continuationToken: job.continuationToken,
    ...(job.deadline === undefined ? {} : { deadline: job.deadline }),
    outputVariables: [...job.outputVariables],
  };
}
