import { tokenRef } from "./token-ref.js";
import { create } from "@bufbuild/protobuf";
import type { MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Logger } from "@sluice/domain";
import { JobResultSchema } from "@sluice/proto";
import type { ApprovalDoc, ApprovalStore, DecisionDoc } from "./approval-store.js";

/** A JobResult message. */
export type JobResult = MessageShape<typeof JobResultSchema>;

/**
 * Sends one job result to the orchestrator's results subject; resolves when
 * the bus acknowledged it. The message id `result:<jobId>` lets JetStream drop
 * a re-publish of the same decision inside its duplicate window.
 */
export type PublishResult = (result: JobResult, msgId: string) => Promise<void>;

/** The job result of an approval and its decision: Approved → Succeeded, Rejected → Failed (ApprovalRejected). */
export function resultOf(doc: ApprovalDoc, decision: DecisionDoc): JobResult {
  const rejected = decision.status === "Rejected";
  return create(JobResultSchema, {
    jobId: doc.jobId,
    actionExecutionId: doc.actionExecutionId,
    attempt: doc.attempt,
    pipelineName: doc.pipelineName,
    pipelineExecutionId: doc.pipelineExecutionId,
    stageName: doc.stageName,
    actionName: doc.actionName,
    status: rejected ? "Failed" : "Succeeded",
    summary: decision.summary,
    ...(rejected ? { errorDetails: { code: "ApprovalRejected", message: decision.summary } } : {}),
    // AWS shows the approval token as the action's external execution id.
    externalExecutionId: doc._id,
    updatedBy: decision.decidedBy,
    finishedAt: timestampFromDate(decision.decidedAt),
  });
}

/** Publishes decisions' results and records that they were published. */
export interface ResultOutbox {
  /**
   * Publishes one decision's result and marks it published. Never throws: on
   * failure it logs and returns false, leaving the decision for the sweeper,
   * because the decision itself is already durable.
   */
  deliver(doc: ApprovalDoc, decision: DecisionDoc): Promise<boolean>;
  /**
   * Finishes decisions made more than `UNPUBLISHED_GRACE_MS` before `now` and
   * still unpublished: applies each to its approval (in case the process died
   * before doing so) and publishes its result. Returns how many were
   * delivered. The grace keeps the sweeper from racing the answer that is
   * publishing right now.
   */
  sweep(now: Date): Promise<number>;
}

/** How many unpublished decisions one sweep handles; the next sweep takes the rest. */
export const SWEEP_BATCH = 100;

/** A decision younger than this is left to the call that made it. */
export const UNPUBLISHED_GRACE_MS = 5_000;

/** The outbox over the approvals store and a bus publisher. */
export function createResultOutbox(store: ApprovalStore, publish: PublishResult, logger: Logger): ResultOutbox {
  async function deliver(doc: ApprovalDoc, decision: DecisionDoc): Promise<boolean> {
    try {
      await publish(resultOf(doc, decision), `result:${doc.jobId}`);
      await store.markPublished(decision._id);
      logger.info("approval result published", { jobId: doc.jobId, status: decision.status, pipelineName: doc.pipelineName });
      return true;
    } catch (err) {
      logger.warn("approval result not published; the sweeper retries", { jobId: doc.jobId, err: errorText(err) });
      return false;
    }
  }
  return {
    deliver,
    async sweep(now) {
      const decisions = await store.unpublished(new Date(now.getTime() - UNPUBLISHED_GRACE_MS), SWEEP_BATCH);
      let delivered = 0;
      // One at a time and in decision order: the bus is the scarce resource when
      // this runs (it just failed), and order keeps results in decision order.
      for (const decision of decisions) {
        const doc = await store.get(decision._id);
        if (doc === null) {
          // Only a hand-edited database gets here; keep the decision for an operator.
          logger.error("decision without approval", { approval: tokenRef(decision._id) });
          continue;
        }
        await store.apply(decision);
        if (decision.status === "Expired") {
          // Expiry has no result (the orchestrator fails the action from its own deadline);
          // only a hand-edited database gets here.
          await store.markPublished(decision._id);
          continue;
        }
        if (!(await deliver(doc, decision))) break;
        delivered += 1;
      }
      return delivered;
    },
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
