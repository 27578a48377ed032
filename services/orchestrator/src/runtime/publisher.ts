import type { Bus } from "@sluice/bus";
import { isObjectSource, objectSourceOf, resolveProvider } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { GrpcStatus, isRpcError } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { JobSchema, StateChangeEventSchema } from "@sluice/proto";
import type { ArtifactService, Job } from "@sluice/proto";
import { parseEvent, parseJob } from "./outbox.js";
import type { OutboxEntry } from "./outbox.js";

/** What became of one outbox entry. */
export type PublishOutcome =
  /** On the bus (or already there: JetStream dropped the repeat); drop it from the outbox. */
  | { kind: "published" }
  /** Not published; keep it for the sweeper. */
  | { kind: "retry" }
  /**
   * A job whose grants the artifact service refused for good (an input
   * artifact that does not exist, …): the caller fails the action with
   * `reason` instead of retrying forever, then pulls the entry.
   */
  | { kind: "rejected"; job: Job; reason: string };

/** Publishes outbox entries, attaching artifact grants to jobs on the way. */
export interface OutboxPublisher {
  publish(entry: OutboxEntry): Promise<PublishOutcome>;
}

/** Options of `createOutboxPublisher`. */
export interface OutboxPublisherOptions {
  bus: Bus;
  logger: Logger;
  /** ArtifactService client; undefined = jobs go out without grants (tests without an artifact service). */
  artifacts: Client<typeof ArtifactService> | undefined;
  /**
   * Makes an Http invoke job answerable through JobService before it is published: its endpoint
   * may answer 202 and report later with the job id. Undefined: such answers find no job.
   */
  answerableLater?: ((job: Job) => Promise<void>) | undefined;
}

// Statuses that will not change on a retry: the request itself is wrong.
const PERMANENT_GRANT_FAILURES: ReadonlySet<number> = new Set([
  GrpcStatus.NOT_FOUND,
  GrpcStatus.INVALID_ARGUMENT,
  GrpcStatus.FAILED_PRECONDITION,
  GrpcStatus.DATA_LOSS,
  GrpcStatus.PERMISSION_DENIED,
]);

/** Creates the publisher used by the runtime store and the outbox sweeper. */
export function createOutboxPublisher(opts: OutboxPublisherOptions): OutboxPublisher {
  const { bus, artifacts } = opts;
  const logger = opts.logger.child({ component: "outbox" });

  const publishJob = async (entry: OutboxEntry): Promise<PublishOutcome> => {
    const job = parseJob(entry);
    const inputIds = entry.inputArtifactIds ?? [];
    const outputNames = entry.outputNames ?? [];
    const logAttempt = runnerKeepsLog(job) ? job.attempt : 0;
    if ((inputIds.length > 0 || outputNames.length > 0 || logAttempt > 0) && artifacts !== undefined) {
      try {
        const grants = await artifacts.issueJobGrants({
          pipelineName: job.pipelineName,
          pipelineExecutionId: job.pipelineExecutionId,
          stageName: job.stageName,
          actionName: job.actionName,
          actionExecutionId: job.actionExecutionId,
          bucket: job.artifactBucket,
          inputArtifactIds: inputIds,
          outputNames,
          logAttempt,
          ...deployTargetOf(job),
          ...sourceObjectOf(job),
        });
        job.inputs = grants.inputs;
        job.outputs = grants.outputs;
        if (grants.log !== undefined) job.log = grants.log;
        if (grants.source !== undefined) job.sourceObject = grants.source;
      } catch (err) {
        if (inputIds.length === 0 && outputNames.length === 0) {
          // Only the log grant was asked for: the job must not wait for the artifact service (or
          // fail) for its log, which is then streamed but not stored.
          logger.warn("job published without a log grant: its log is streamed, not stored", { jobId: entry.id, error: errorText(err) });
        } else if (isRpcError(err) && PERMANENT_GRANT_FAILURES.has(err.code)) {
          return { kind: "rejected", job, reason: `artifact grants refused: ${err.message}` };
        } else {
          logger.warn("issuing job grants failed; will retry", { jobId: entry.id, error: errorText(err) });
          return { kind: "retry" };
        }
      }
    }
    if (isHttpInvoke(job)) await opts.answerableLater?.(job);
    await bus.publish(entry.subject, JobSchema, job, { msgId: entry.id, headers: jobHeaders(job) });
    return { kind: "published" };
  };

  return {
    async publish(entry) {
      try {
        if (entry.type === "job") return await publishJob(entry);
        if (entry.type === "cancel") {
          // Core NATS, not JetStream: every runner hears it; the flush makes sure the server has it.
          bus.nc.publish(entry.subject, entry.payload);
          await bus.nc.flush();
          return { kind: "published" };
        }
        await bus.publish(entry.subject, StateChangeEventSchema, parseEvent(entry), { msgId: entry.id });
        return { kind: "published" };
      } catch (err) {
        logger.warn("publishing an outbox entry failed; the sweeper will retry", { id: entry.id, subject: entry.subject, error: errorText(err) });
        return { kind: "retry" };
      }
    },
  };
}

/** An Http invoke job (Sluice's Lambda invoke): its endpoint may answer later through JobService. */
function isHttpInvoke(job: Job): boolean {
  return job.actionTypeId !== undefined && resolveProvider(job.actionTypeId)?.builtIn === "Http";
}

/**
 * Whether the job runs on a runner, which stores its whole log with a log grant (GetActionLog reads
 * it): every built-in action but manual approvals. Custom actions' job workers keep no Sluice log.
 */
function runnerKeepsLog(job: Job): boolean {
  const spec = job.actionTypeId === undefined ? undefined : resolveProvider(job.actionTypeId);
  return spec !== undefined && spec.category !== "Approval" && job.attempt > 0;
}

/**
 * An ObjectStore deploy job's target, for the artifact service to check against DEPLOY_BUCKETS and
 * record as the only place the job's runner may get PUT grants for, until the job's deadline.
 * Values are read as the runner reads them (trimmed; Extract any case).
 */
function deployTargetOf(job: Job): { deploy?: { bucket: string; objectKey: string; extract: boolean; expiresAt: Timestamp } } {
  const spec = job.actionTypeId === undefined ? undefined : resolveProvider(job.actionTypeId);
  if (spec?.category !== "Deploy" || spec.builtIn !== "ObjectStore") return {};
  const value = (key: string): string => job.configuration[key]?.trim() ?? "";
  return {
    deploy: {
      bucket: value("BucketName"),
      objectKey: value("ObjectKey"),
      extract: value("Extract").toLowerCase() !== "false",
      expiresAt: job.deadline ?? timestampFromDate(new Date(Date.now() + 3_600_000)),
    },
  };
}

/**
 * An ObjectStore source job's object, for the artifact service to check against SOURCE_BUCKETS
 * and presign a GET of: the pinned version when the job has a source revision (a VersionId),
 * else the current object. An `S3_OBJECT_KEY` pin has already replaced S3ObjectKey.
 */
function sourceObjectOf(job: Job): { source?: { bucket: string; objectKey: string; versionId: string } } {
  const spec = job.actionTypeId === undefined ? undefined : resolveProvider(job.actionTypeId);
  if (!isObjectSource(spec)) return {};
  const { bucket, objectKey } = objectSourceOf(job.configuration);
  const revision = job.sourceRevision.trim();
  // On an unversioned bucket the poller's revision is the ETag: no version to ask for, the runner
  // reads the current object and checks that it still has that ETag.
  return { source: { bucket, objectKey, versionId: ETAG_PATTERN.test(revision) ? "" : revision } };
}

/** An S3 ETag (MD5, or MD5-parts of a multipart upload): never the shape of an S3 or MinIO VersionId. */
const ETAG_PATTERN = /^[0-9a-f]{32}(-\d+)?$/;

/**
 * Who a job concerns, as headers: a consumer that dead-letters the job copies them into the dead
 * letter, so the orchestrator can fail the action even when the job's bytes cannot be decoded.
 */
function jobHeaders(job: Job): Record<string, string> {
  return {
    [JOB_HEADERS.pipeline]: job.pipelineName,
    [JOB_HEADERS.execution]: job.pipelineExecutionId,
    [JOB_HEADERS.stage]: job.stageName,
    [JOB_HEADERS.action]: job.actionName,
    [JOB_HEADERS.actionExecution]: job.actionExecutionId,
    [JOB_HEADERS.attempt]: String(job.attempt),
  };
}

/** Header names of `jobHeaders`. */
export const JOB_HEADERS = {
  pipeline: "Sluice-Pipeline",
  execution: "Sluice-Pipeline-Execution",
  stage: "Sluice-Stage",
  action: "Sluice-Action",
  actionExecution: "Sluice-Action-Execution",
  attempt: "Sluice-Attempt",
} as const;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
