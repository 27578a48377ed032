import { tokenRef } from "./token-ref.js";
import type { Logger } from "@sluice/domain";
import type { ApprovalStore, DecisionDoc } from "./approval-store.js";

/**
 * Approval expiry. An approval expires at its job's deadline (the action's `timeoutInMinutes`,
 * 5–86400, else the Manual provider's 7 days), after which nobody can answer it. The sweeper
 * marks expired Pending approvals `Expired` so listings show it; it publishes nothing: the
 * orchestrator fails the action itself when its own stored deadline fires (TimerFired), and a
 * second, competing result would only be ignored there.
 */

/** Expired approvals one sweep handles at most; the next sweep takes the rest. */
export const EXPIRY_SWEEP_BATCH = 100;

/** Approval lifetime when a job carries no deadline: AWS's default for manual approvals. */
export const DEFAULT_APPROVAL_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/** The message of an answer to an expired approval (InvalidApprovalTokenException). */
export function expiredMessage(expiresAt: Date): string {
  return `approval expired at ${expiresAt.toISOString()}`;
}

/**
 * Marks every due Pending approval Expired; resolves with how many it expired. Expiry goes
 * through the decision insert, like an answer: an answer racing the sweep either wins (the
 * approval ends Approved/Rejected) or loses (InvalidApprovalTokenException), never both.
 */
export async function expireDue(store: ApprovalStore, now: Date, logger: Logger): Promise<number> {
  const due = await store.dueForExpiry(now, EXPIRY_SWEEP_BATCH);
  let expired = 0;
  for (const doc of due) {
    const expiresAt = doc.expiresAt ?? now;
    const decision: DecisionDoc = {
      _id: doc._id,
      status: "Expired",
      summary: `no answer before ${expiresAt.toISOString()}`,
      decidedBy: "",
      decidedAt: expiresAt,
      // Nothing to publish: the orchestrator fails the action from its own deadline.
      published: true,
    };
    if (await store.claim(decision)) {
      await store.apply(decision);
      expired += 1;
      logger.info("approval expired", { approval: tokenRef(doc._id), pipelineName: doc.pipelineName, stageName: doc.stageName, actionName: doc.actionName, expiresAt });
      continue;
    }
    // Answered just in time, or a crash left a decision unapplied: finish that one instead.
    const winner = await store.getDecision(doc._id);
    if (winner !== null) await store.apply(winner);
  }
  return expired;
}
