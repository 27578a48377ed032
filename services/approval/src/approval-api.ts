import { tokenRef } from "./token-ref.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { APPROVAL_STATUSES, DEFAULT_MAX_RESULTS, DomainError, MAX_APPROVAL_SUMMARY_LENGTH, MAX_LIST_RESULTS, isDomainError } from "@sluice/domain";
import type { ApprovalStatus, Logger } from "@sluice/domain";
import type { CallContext, PermissionTable, ServiceImpl } from "@sluice/grpc";
import type { ApprovalSchema, ApprovalService, PutApprovalResultRequest } from "@sluice/proto";
import { expiredMessage } from "./expiry.js";
import type { ApprovalDoc, ApprovalStore, DecisionDoc, ListCursor } from "./approval-store.js";
import type { ResultOutbox } from "./results.js";
import { Violations, clip } from "./validation.js";

/**
 * Who may call what. Answering is the approver's job (the orchestrator
 * forwards a user's PutApprovalResult with the user's own authorization, so
 * the user's roles decide); listing is open to readers and to the
 * orchestrator. `admin` passes every check.
 */
export const APPROVAL_PERMISSIONS: PermissionTable = {
  PutApprovalResult: ["approver"],
  ListApprovals: ["viewer", "approver", "service"],
  GetApproval: ["viewer", "approver", "service"],
};

/** What the handlers need. */
export interface ApprovalApiDeps {
  store: ApprovalStore;
  outbox: ResultOutbox;
  logger: Logger;
  now: () => Date;
}

/** The gRPC `ApprovalService` implementation. */
export function createApprovalApi(deps: ApprovalApiDeps): ServiceImpl<typeof ApprovalService> {
  const { store, outbox, logger, now } = deps;

  async function decide(req: PutApprovalResultRequest, ctx: CallContext): Promise<{ doc: ApprovalDoc; decision: AnswerDoc }> {
    const v = new Violations();
    v.uuid("token", req.token);
    v.name("pipelineName", req.pipelineName);
    v.name("stageName", req.stageName);
    v.name("actionName", req.actionName);
    const result = req.result;
    if (result === undefined) v.add("result", "is required");
    else {
      if (result.status !== "Approved" && result.status !== "Rejected") {
        v.add("result.status", result.status === "" ? "is required (Approved or Rejected)" : `"${clip(result.status)}" must be Approved or Rejected`);
      }
      if (result.summary.length > MAX_APPROVAL_SUMMARY_LENGTH) v.add("result.summary", `must be at most ${MAX_APPROVAL_SUMMARY_LENGTH} characters`);
    }
    v.throwIfAny();
    const status = result?.status as "Approved" | "Rejected";

    const token = req.token.toLowerCase();
    const existing = await store.get(token);
    // One answer for an unknown token and for a token of another action, so a
    // caller cannot probe which tokens exist.
    if (
      existing === null ||
      existing.pipelineName !== req.pipelineName ||
      existing.stageName !== req.stageName ||
      existing.actionName !== req.actionName
    ) {
      throw new DomainError("InvalidApprovalTokenException", `token is not valid for ${req.pipelineName}/${req.stageName}/${req.actionName}`, [
        { field: "token", message: "does not identify an open approval of this action" },
      ]);
    }
    if (existing.status === "Expired") throw expired(existing.expiresAt ?? existing.decidedAt ?? existing.created);
    if (existing.status !== "Pending") throw alreadyCompleted(existing.status, existing.decidedBy);
    const at = now();
    // Due but not yet swept: expired all the same.
    if (existing.expiresAt !== null && existing.expiresAt.getTime() <= at.getTime()) throw expired(existing.expiresAt);
    const decision: AnswerDoc = { _id: token, status, summary: result?.summary ?? "", decidedBy: ctx.principal.id, decidedAt: at, published: false };
    // The insert decides who wins when two answers race; the approval is then
    // updated conditionally on still being Pending.
    if (!(await store.claim(decision))) {
      const winner = await store.getDecision(token);
      if (winner?.status === "Expired") throw expired(existing.expiresAt ?? winner.decidedAt);
      throw alreadyCompleted(winner?.status ?? "answered", winner?.decidedBy ?? "someone else");
    }
    await store.apply(decision);
    return { doc: { ...existing, status, summary: decision.summary, decidedBy: decision.decidedBy, decidedAt: at }, decision };
  }

  return {
    async putApprovalResult(req, ctx) {
      let decided: { doc: ApprovalDoc; decision: AnswerDoc };
      try {
        decided = await decide(req, ctx);
      } catch (err) {
        await auditAttempt(req, ctx, "Refused", isDomainError(err) ? `${err.code}: ${err.message}` : "internal error");
        throw err;
      }
      const { doc, decision } = decided;
      logger.info("approval decided", { approval: tokenRef(doc._id), status: decision.status, decidedBy: decision.decidedBy, pipelineName: doc.pipelineName });
      await auditAttempt(req, ctx, decision.status);
      // The decision is durable; a failed publish is retried by the sweeper,
      // so the caller still gets success.
      await outbox.deliver(doc, decision);
      return { approvedAt: timestampFromDate(decision.decidedAt) };
    },

    async getApproval(req) {
      const v = new Violations();
      v.uuid("token", req.token);
      v.throwIfAny();
      const doc = await store.get(req.token.toLowerCase());
      if (doc === null) {
        throw new DomainError("InvalidApprovalTokenException", "no approval has this token", [{ field: "token", message: "does not identify an approval" }]);
      }
      return { approval: toApproval(doc) };
    },

    async listApprovals(req) {
      const v = new Violations();
      if (req.pipelineName !== "") v.name("pipelineName", req.pipelineName);
      if (req.status !== "" && !APPROVAL_STATUSES.includes(req.status as ApprovalStatus)) {
        v.add("status", `"${clip(req.status)}" must be one of ${APPROVAL_STATUSES.join(", ")}`);
      }
      const limit = req.maxResults ?? DEFAULT_MAX_RESULTS;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_RESULTS) v.add("maxResults", `must be between 1 and ${MAX_LIST_RESULTS}`);
      v.throwIfAny();
      const cursor = req.nextToken === "" ? undefined : decodeCursor(req.nextToken);
      const filter = {
        ...(req.pipelineName !== "" ? { pipelineName: req.pipelineName } : {}),
        ...(req.status !== "" ? { status: req.status as ApprovalStatus } : {}),
      };
      // One extra row tells whether another page exists.
      const docs = await store.list(filter, limit + 1, cursor);
      const page = docs.slice(0, limit);
      const last = page.at(-1);
      return {
        approvals: page.map(toApproval),
        nextToken: docs.length > limit && last !== undefined ? encodeCursor({ created: last.created, token: last._id }) : "",
      };
    },
  };

  async function auditAttempt(req: PutApprovalResultRequest, ctx: CallContext, outcome: "Approved" | "Rejected" | "Refused", reason?: string): Promise<void> {
    try {
      await store.audit({
        token: clip(req.token, 100),
        pipelineName: clip(req.pipelineName, 100),
        stageName: clip(req.stageName, 100),
        actionName: clip(req.actionName, 100),
        requested: clip(req.result?.status ?? "", 20),
        principal: ctx.principal.id,
        at: now(),
        outcome,
        ...(reason !== undefined ? { reason: clip(reason, 600) } : {}),
      });
    } catch (err) {
      // The decision (or refusal) stands either way; a lost audit row is an
      // operator problem, not the caller's.
      logger.error("approval audit write failed", { approval: tokenRef(req.token), outcome, err: err instanceof Error ? err.message : String(err) });
    }
  }
}

function expired(at: Date): DomainError {
  return new DomainError("InvalidApprovalTokenException", expiredMessage(at), [{ field: "token", message: `expired at ${at.toISOString()}` }]);
}

function alreadyCompleted(status: string, decidedBy: string): DomainError {
  return new DomainError("ApprovalAlreadyCompletedException", `the approval was already ${status.toLowerCase()} by ${decidedBy}`, [
    { field: "token", message: `already ${status}` },
  ]);
}

/** A decision made by someone's answer (not by expiry). */
type AnswerDoc = DecisionDoc & { status: "Approved" | "Rejected" };

/** The wire form of an approval. */
export function toApproval(doc: ApprovalDoc): MessageInitShape<typeof ApprovalSchema> {
  return {
    token: doc._id,
    pipelineName: doc.pipelineName,
    pipelineExecutionId: doc.pipelineExecutionId,
    stageName: doc.stageName,
    actionName: doc.actionName,
    actionExecutionId: doc.actionExecutionId,
    status: doc.status,
    summary: doc.summary,
    decidedBy: doc.decidedBy,
    ...(doc.decidedAt !== null ? { decidedAt: timestampFromDate(doc.decidedAt) } : {}),
    created: timestampFromDate(doc.created),
    customData: doc.customData,
    externalEntityLink: doc.externalEntityLink,
    ...(doc.expiresAt !== null ? { expiresAt: timestampFromDate(doc.expiresAt) } : {}),
    notificationStatus: doc.notifyStatus ?? "",
  };
}

/** Page tokens are opaque to callers: base64url of the last item's position. */
export function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify({ c: cursor.created.getTime(), t: cursor.token }), "utf8").toString("base64url");
}

/** Parses a page token; anything not produced by `encodeCursor` is InvalidNextTokenException. */
export function decodeCursor(token: string): ListCursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (typeof parsed === "object" && parsed !== null) {
      const { c, t } = parsed as { c?: unknown; t?: unknown };
      if (typeof c === "number" && Number.isFinite(c) && typeof t === "string") return { created: new Date(c), token: t };
    }
  } catch {
    // fall through to the error below
  }
  throw new DomainError("InvalidNextTokenException", "nextToken is not a token returned by ListApprovals", [
    { field: "nextToken", message: "is not valid" },
  ]);
}
