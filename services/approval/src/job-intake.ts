import { tokenRef } from "./token-ref.js";
import type { MessageShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { invalid } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import type { JobSchema } from "@sluice/proto";
import type { ApprovalDoc, ApprovalStore } from "./approval-store.js";
import { DEFAULT_APPROVAL_TTL_MS } from "./expiry.js";
import { notificationUrlProblem } from "./notifications.js";
import type { Notifier } from "./notifications.js";
import { Violations } from "./validation.js";

/** A Job message from SLUICE_JOBS. */
export type Job = MessageShape<typeof JobSchema>;

/**
 * The Pending approval an Approval/Manual job opens. It expires at the job's
 * deadline, or 7 days after `now` when the job has none. A `NotificationUrl`
 * in the configuration makes its notification Pending (due now), or Failed at
 * once when the URL is unusable. Throws a non-retryable ValidationException for
 * a job that cannot be an approval (no token, no names), which the bus
 * dead-letters instead of retrying.
 */
export function approvalOfJob(job: Job, now: Date): ApprovalDoc {
  const v = new Violations();
  v.uuid("approvalToken", job.approvalToken);
  v.name("pipelineName", job.pipelineName);
  v.name("stageName", job.stageName);
  v.name("actionName", job.actionName);
  if (job.jobId === "") v.add("jobId", "is required");
  if (job.actionExecutionId === "") v.add("actionExecutionId", "is required");
  if (v.list.length > 0) throw invalid("ValidationException", v.list);
  return {
    _id: job.approvalToken.toLowerCase(),
    pipelineName: job.pipelineName,
    pipelineExecutionId: job.pipelineExecutionId,
    stageName: job.stageName,
    actionName: job.actionName,
    actionExecutionId: job.actionExecutionId,
    jobId: job.jobId,
    attempt: job.attempt,
    status: "Pending",
    summary: "",
    decidedBy: "",
    decidedAt: null,
    created: now,
    // AWS's Manual approval configuration keys.
    customData: job.configuration["CustomData"] ?? "",
    externalEntityLink: job.configuration["ExternalEntityLink"] ?? "",
    expiresAt: job.deadline !== undefined ? timestampDate(job.deadline) : new Date(now.getTime() + DEFAULT_APPROVAL_TTL_MS),
    ...notificationFields(job.configuration["NotificationUrl"]?.trim() ?? "", now),
  };
}

function notificationFields(url: string, now: Date): Partial<ApprovalDoc> {
  if (url === "") return { notifyStatus: "" };
  const problem = notificationUrlProblem(url);
  if (problem !== undefined) {
    return { notifyStatus: "Failed", notifyUrl: url, notifyAttempts: 0, notifyNextAt: null, notifyLastError: `NotificationUrl ${problem}` };
  }
  return { notifyStatus: "Pending", notifyUrl: url, notifyAttempts: 0, notifyNextAt: now, notifyLastError: "" };
}

/**
 * The bus handler for approval jobs: records the approval once per token (a
 * redelivered job finds it already there) and returns, so the message is acked.
 * A notification is tried in the background, never awaited: a slow webhook
 * must not hold the job's lease (the sweeper retries from stored state).
 */
export function createJobIntake(store: ApprovalStore, logger: Logger, now: () => Date, notifier?: Notifier): (job: Job) => Promise<void> {
  return async (job) => {
    const doc = approvalOfJob(job, now());
    const inserted = await store.insert(doc);
    if (inserted) {
      logger.info("approval opened", {
        approval: tokenRef(doc._id),
        jobId: doc.jobId,
        pipelineName: doc.pipelineName,
        stageName: doc.stageName,
        actionName: doc.actionName,
        expiresAt: doc.expiresAt,
      });
      if (doc.notifyStatus === "Failed") {
        logger.warn("approval notification not sent", { approval: tokenRef(doc._id), err: doc.notifyLastError });
      } else if (doc.notifyStatus === "Pending") {
        notifier?.kick(doc._id);
      }
    } else {
      logger.debug("approval job redelivered", { approval: tokenRef(doc._id), jobId: doc.jobId });
    }
  };
}
