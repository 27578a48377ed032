import { randomUUID } from "node:crypto";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { JobSchema } from "@sluice/proto";
import type { ActionTypeId, Job } from "@sluice/proto";
import { Binary, MongoServerError } from "mongodb";
import type { Db } from "mongodb";

/**
 * AWS JobStatus. Sluice stores a job when it reaches the bus, so a stored job starts Queued
 * (Created is the outbox's, before publication); a poll hands it out (Dispatched), the worker's
 * AcknowledgeJob takes it (InProgress), its result or its deadline ends it.
 */
export type JobStatus = "Created" | "Queued" | "Dispatched" | "InProgress" | "TimedOut" | "Succeeded" | "Failed";

/** One custom action job in the `jobs` collection. */
export interface StoredJob {
  /** The job id (`Job.job_id`). */
  _id: string;
  status: JobStatus;
  /** `actionTypeKey` of the job's action type: what polls filter on. */
  actionType: string;
  /** The configuration as `JSON.stringify([key, value])` entries, so queryParam filters need no dotted field paths. */
  query: string[];
  /** The Job bus message as published (without grants: they are issued per hand-out). */
  job: Binary;
  /** Epoch ms: stored; polls hand out the oldest first. */
  queuedAt: number;
  /** Epoch ms: the action's deadline; the job is TimedOut after it. */
  deadline: number;
  /** Bumped by every hand-out: a poll takes a job only with the count it read. */
  handouts: number;
  /** The nonce of the latest hand-out. */
  nonce?: string;
  /** Epoch ms of the latest hand-out. */
  handedOutAt?: number;
  /** Who acknowledged it. */
  acknowledgedBy?: string;
  /** Why a result for it was not applied (the action had ended). */
  refusedReason?: string;
}

/** The key polls filter on: `<category>/<owner>/<provider>/<version>`. */
export function actionTypeKey(id: Pick<ActionTypeId, "category" | "owner" | "provider" | "version">): string {
  return [id.category, id.owner, id.provider, id.version].join("/");
}

/** One `StoredJob.query` entry. */
export function queryEntry(key: string, value: string): string {
  return JSON.stringify([key, value]);
}

/** The Job message of a stored job. */
export function jobOf(stored: StoredJob): Job {
  return fromBinary(JobSchema, stored.job.buffer);
}

/** A job that another hand-out, acknowledgement or result changed first. */
export type Claim<T> = { ok: true; value: T } | { ok: false; current: StoredJob | undefined };

/** The `jobs` collection: custom action jobs from the bus until a worker's result ends them. */
export interface JobStore {
  ensureIndexes(): Promise<void>;
  /**
   * Stores a job from the bus as Queued; a job already stored (a redelivery) is left as it is.
   * `InProgress` stores a job that is worked already and answered through JobService by any
   * worker (an Http invoke job, whose endpoint may answer 202 and report later).
   */
  insert(job: Job, now: number, status?: "Queued" | "InProgress"): Promise<void>;
  find(jobId: string): Promise<StoredJob | undefined>;
  /**
   * Hands out up to `max` jobs of an action type, oldest first: Queued ones, and Dispatched ones
   * whose hand-out is older than `handoutMs` (the worker never acknowledged). Each gets a fresh
   * nonce. Jobs past their deadline are marked TimedOut instead.
   */
  handOut(actionType: string, query: readonly string[], max: number, now: number, handoutMs: number): Promise<StoredJob[]>;
  /** Dispatched → InProgress for the holder of `nonce`. */
  acknowledge(jobId: string, nonce: string, by: string): Promise<Claim<StoredJob>>;
  /** Moves a job from `from` to `to` when it is still in `from`. */
  transition(jobId: string, from: JobStatus, to: JobStatus, extra?: Pick<StoredJob, "refusedReason">): Promise<boolean>;
}

/** Creates the store over the `jobs` collection. */
export function createJobStore(db: Db): JobStore {
  const jobs = db.collection<StoredJob>("jobs");

  return {
    async ensureIndexes() {
      await jobs.createIndex({ actionType: 1, status: 1, queuedAt: 1 });
    },

    async insert(job, now, status = "Queued") {
      const id = job.actionTypeId ?? { category: "", owner: "", provider: "", version: "" };
      const doc: StoredJob = {
        _id: job.jobId,
        status,
        actionType: actionTypeKey(id),
        query: Object.entries(job.configuration).map(([k, v]) => queryEntry(k, v)),
        // No bearer URLs at rest: grants are issued afresh for every hand-out.
        job: new Binary(toBinary(JobSchema, { ...job, inputs: job.inputs.map((i) => ({ ...i, grant: undefined })), outputs: job.outputs.map((o) => ({ ...o, grant: undefined })) })),
        queuedAt: now,
        deadline: job.deadline === undefined ? Number.MAX_SAFE_INTEGER : timestampMs(job.deadline),
        handouts: 0,
      };
      try {
        await jobs.insertOne(doc);
      } catch (err) {
        if (err instanceof MongoServerError && err.code === 11000) return;
        throw err;
      }
    },

    async find(jobId) {
      return (await jobs.findOne({ _id: jobId })) ?? undefined;
    },

    async handOut(actionType, query, max, now, handoutMs) {
      await jobs.updateMany(
        { actionType, status: { $in: ["Queued", "Dispatched", "InProgress"] }, deadline: { $lt: now } },
        { $set: { status: "TimedOut" } },
      );
      const candidates = await jobs
        .find({
          actionType,
          deadline: { $gte: now },
          $or: [{ status: "Queued" }, { status: "Dispatched", handedOutAt: { $lte: now - handoutMs } }],
          ...(query.length === 0 ? {} : { $and: query.map((q) => ({ query: q })) }),
        })
        .sort({ queuedAt: 1, _id: 1 })
        .limit(max)
        .toArray();
      const out: StoredJob[] = [];
      for (const candidate of candidates) {
        const nonce = randomUUID();
        const taken = await jobs.updateOne(
          { _id: candidate._id, status: candidate.status, handouts: candidate.handouts },
          { $set: { status: "Dispatched", nonce, handedOutAt: now }, $inc: { handouts: 1 } },
        );
        // Another poller took it between the read and the write: it is theirs.
        if (taken.modifiedCount === 1) out.push({ ...candidate, status: "Dispatched", nonce, handedOutAt: now, handouts: candidate.handouts + 1 });
      }
      return out;
    },

    async acknowledge(jobId, nonce, by) {
      const taken = await jobs.updateOne({ _id: jobId, status: "Dispatched", nonce }, { $set: { status: "InProgress", acknowledgedBy: by } });
      const current = (await jobs.findOne({ _id: jobId })) ?? undefined;
      if (taken.modifiedCount === 1 && current !== undefined) return { ok: true, value: current };
      return { ok: false, current };
    },

    async transition(jobId, from, to, extra = {}) {
      const r = await jobs.updateOne({ _id: jobId, status: from }, { $set: { status: to, ...extra } });
      return r.modifiedCount === 1;
    },
  };
}
