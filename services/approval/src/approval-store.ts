import type { ApprovalStatus } from "@sluice/domain";
import type { Collection, Db, Filter } from "mongodb";

/**
 * Webhook notification of an approval (configuration `NotificationUrl`): "" when none was
 * asked for; Pending while it is being delivered or waits for a retry; Sent; Failed after the
 * last attempt (or for an unusable URL); Skipped when the approval was closed before delivery.
 */
export type NotificationStatus = "" | "Pending" | "Sent" | "Failed" | "Skipped";

/** One approval request as kept in `sluice_approvals.approvals`. */
export interface ApprovalDoc {
  /** The approval token (a UUID minted by the orchestrator for this job attempt). */
  _id: string;
  pipelineName: string;
  pipelineExecutionId: string;
  stageName: string;
  actionName: string;
  actionExecutionId: string;
  jobId: string;
  attempt: number;
  status: ApprovalStatus;
  summary: string;
  decidedBy: string;
  decidedAt: Date | null;
  created: Date;
  customData: string;
  externalEntityLink: string;
  /**
   * The job's deadline (7 days after opening when the job carries none); after it the token is
   * stale, the sweeper marks the approval Expired, and the orchestrator fails the action from its
   * own stored deadline. Null only in documents written before expiry existed.
   */
  expiresAt: Date | null;
  /**
   * Notification state, kept as top-level fields (FerretDB refuses nothing there and indexes
   * them plainly). Absent in documents written before notifications existed.
   */
  notifyStatus?: NotificationStatus;
  /** The webhook URL (a bearer secret for many chat webhooks: never returned or logged). */
  notifyUrl?: string;
  /** Attempts started so far (counted when an attempt takes its lease, so a crash counts too). */
  notifyAttempts?: number;
  /** When the next attempt is due (or until when the current attempt holds its lease). */
  notifyNextAt?: Date | null;
  notifyLastError?: string;
  notifySentAt?: Date | null;
}

/**
 * The one decision of an approval, in `sluice_approvals.decisions` keyed by
 * token. Inserting it is how an answer wins: a unique-key insert is atomic on
 * MongoDB and on FerretDB alike, whereas FerretDB 1.x (SQLite) does not make
 * a filtered update a compare-and-set, so two concurrent conditional updates
 * of one Pending approval could both succeed there. It is also the outbox
 * record of the decision's JobResult.
 */
export interface DecisionDoc {
  /** The approval token. */
  _id: string;
  /**
   * Expired is the sweeper's "decision" when nobody answered in time: inserted through the same
   * unique key, so an answer and the expiry cannot both win. It has no JobResult (the
   * orchestrator fails the action from its own deadline) and is stored as published.
   */
  status: "Approved" | "Rejected" | "Expired";
  summary: string;
  decidedBy: string;
  decidedAt: Date;
  /**
   * Whether the JobResult reached the bus: false when the decision is made,
   * true once the publish is acknowledged. The sweeper re-publishes (and
   * re-applies to the approval) decisions still false after a crash or a NATS
   * outage.
   */
  published: boolean;
}

/** One decision attempt, kept append-only in `sluice_approvals.audit`. */
export interface AuditDoc {
  token: string;
  pipelineName: string;
  stageName: string;
  actionName: string;
  /** The status the caller asked for (Approved, Rejected, or whatever it sent). */
  requested: string;
  /** The principal that called. */
  principal: string;
  at: Date;
  /** Approved or Rejected when the decision was recorded; Refused otherwise. */
  outcome: "Approved" | "Rejected" | "Refused";
  /** For a refused attempt: the error code and message the caller got. */
  reason?: string;
}

/** A position in the newest-first listing: the last item returned. */
export interface ListCursor {
  created: Date;
  token: string;
}

/** Approval persistence; every write is a single-document operation. */
export interface ApprovalStore {
  ensureIndexes(): Promise<void>;
  /** Inserts a new Pending approval; false when the token is already known (a redelivered job). */
  insert(doc: ApprovalDoc): Promise<boolean>;
  get(token: string): Promise<ApprovalDoc | null>;
  /** Inserts the decision; false when the approval already has one (another answer won). */
  claim(decision: DecisionDoc): Promise<boolean>;
  getDecision(token: string): Promise<DecisionDoc | null>;
  /**
   * Copies a won decision onto its approval with a conditional update
   * `{_id: token, status: "Pending"}`; idempotent, so the sweeper can repeat it.
   */
  apply(decision: DecisionDoc): Promise<void>;
  markPublished(token: string): Promise<void>;
  /** Decisions made before `decidedBefore` whose result the bus has not acknowledged, oldest first. */
  unpublished(decidedBefore: Date, limit: number): Promise<DecisionDoc[]>;
  /** Newest first (created, then token), after `cursor` when given; `limit` items at most. */
  list(filter: { pipelineName?: string; status?: ApprovalStatus }, limit: number, cursor?: ListCursor): Promise<ApprovalDoc[]>;
  audit(entry: AuditDoc): Promise<void>;
  /** Pending approvals whose `expiresAt` is at or before `now`, soonest first. */
  dueForExpiry(now: Date, limit: number): Promise<ApprovalDoc[]>;
  /** Pending notifications due at or before `now`, soonest first. */
  dueNotifications(now: Date, limit: number): Promise<ApprovalDoc[]>;
  /**
   * Takes the lease of a due notification attempt: still Pending and due at `now` → counts the
   * attempt and moves `notifyNextAt` to `leaseUntil`, so no other sweep starts the same attempt.
   * Returns the approval as updated, or null when the attempt is not (or no longer) due.
   */
  leaseNotification(token: string, now: Date, leaseUntil: Date): Promise<ApprovalDoc | null>;
  /** Records the outcome of an attempt. */
  setNotification(token: string, update: { status: NotificationStatus; nextAt?: Date | null; lastError?: string; sentAt?: Date | null }): Promise<void>;
}

/** The store over `db.approvals` and `db.audit`. */
export function createApprovalStore(db: Db): ApprovalStore {
  const approvals: Collection<ApprovalDoc> = db.collection<ApprovalDoc>("approvals");
  const decisions: Collection<DecisionDoc> = db.collection<DecisionDoc>("decisions");
  const audit: Collection<AuditDoc> = db.collection<AuditDoc>("audit");
  return {
    async ensureIndexes() {
      // ListApprovals: newest first, optionally per pipeline and/or status.
      await approvals.createIndex({ created: -1, _id: -1 }, { name: "newest" });
      await approvals.createIndex({ pipelineName: 1, created: -1, _id: -1 }, { name: "by_pipeline" });
      await approvals.createIndex({ status: 1, created: -1, _id: -1 }, { name: "by_status" });
      // The sweeper's query: decided but unpublished.
      await decisions.createIndex({ published: 1, decidedAt: 1 }, { name: "unpublished" });
      await audit.createIndex({ token: 1, at: 1 }, { name: "by_token" });
      // The expiry and notification sweeps.
      await approvals.createIndex({ status: 1, expiresAt: 1 }, { name: "expiry" });
      await approvals.createIndex({ notifyStatus: 1, notifyNextAt: 1 }, { name: "notifications" });
    },

    async insert(doc) {
      try {
        await approvals.insertOne({ ...doc });
        return true;
      } catch (err) {
        if (isDuplicateKey(err)) return false;
        throw err;
      }
    },

    get(token) {
      return approvals.findOne({ _id: token });
    },

    async claim(decision) {
      try {
        await decisions.insertOne({ ...decision });
        return true;
      } catch (err) {
        if (isDuplicateKey(err)) return false;
        throw err;
      }
    },

    getDecision(token) {
      return decisions.findOne({ _id: token });
    },

    async apply(decision) {
      const { _id, status, summary, decidedBy, decidedAt } = decision;
      await approvals.updateOne({ _id, status: "Pending" }, { $set: { status, summary, decidedBy, decidedAt } });
    },

    async markPublished(token) {
      await decisions.updateOne({ _id: token }, { $set: { published: true } });
    },

    unpublished(decidedBefore, limit) {
      return decisions
        .find({ published: false, decidedAt: { $lt: decidedBefore } })
        .sort({ decidedAt: 1 })
        .limit(limit)
        .toArray();
    },

    list(filter, limit, cursor) {
      const query: Filter<ApprovalDoc> = {};
      if (filter.pipelineName !== undefined) query.pipelineName = filter.pipelineName;
      if (filter.status !== undefined) query.status = filter.status;
      if (cursor !== undefined) {
        query.$or = [{ created: { $lt: cursor.created } }, { created: cursor.created, _id: { $lt: cursor.token } }];
      }
      return approvals.find(query).sort({ created: -1, _id: -1 }).limit(limit).toArray();
    },

    async audit(entry) {
      await audit.insertOne({ ...entry });
    },

    dueForExpiry(now, limit) {
      return approvals
        .find({ status: "Pending", expiresAt: { $ne: null, $lte: now } })
        .sort({ expiresAt: 1 })
        .limit(limit)
        .toArray();
    },

    dueNotifications(now, limit) {
      return approvals
        .find({ notifyStatus: "Pending", notifyNextAt: { $ne: null, $lte: now } })
        .sort({ notifyNextAt: 1 })
        .limit(limit)
        .toArray();
    },

    async leaseNotification(token, now, leaseUntil) {
      const updated = await approvals.findOneAndUpdate(
        { _id: token, notifyStatus: "Pending", notifyNextAt: { $ne: null, $lte: now } },
        { $set: { notifyNextAt: leaseUntil }, $inc: { notifyAttempts: 1 } },
        { returnDocument: "after" },
      );
      return updated;
    },

    async setNotification(token, update) {
      const set: Partial<ApprovalDoc> = { notifyStatus: update.status };
      if (update.nextAt !== undefined) set.notifyNextAt = update.nextAt;
      if (update.lastError !== undefined) set.notifyLastError = update.lastError;
      if (update.sentAt !== undefined) set.notifySentAt = update.sentAt;
      await approvals.updateOne({ _id: token }, { $set: set });
    },
  };
}

function isDuplicateKey(err: unknown): boolean {
  return typeof err === "object" && err !== null && "code" in err && err.code === 11000;
}
