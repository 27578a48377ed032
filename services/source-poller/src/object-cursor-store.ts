import type { Collection, Db } from "mongodb";
import type { PipelineDeclaration } from "@sluice/proto";
import type { PollResult } from "./cursor-store.js";
import { LeaseTerms } from "./lease-terms.js";
import type { LeaseTermDoc } from "./lease-terms.js";
import { objectSourcesOf } from "./object-sources.js";
import type { ObjectSource } from "./object-sources.js";

/**
 * Where one ObjectStore source stands: the revision already accounted for (VersionId on a
 * versioned bucket, else ETag), when to look again. Kept apart from the Git cursors (their own
 * collection and lease terms), so neither store's sync removes the other's sources.
 */
export interface ObjectCursor {
  _id: string; // "<pipeline>/<action>"
  pipelineName: string;
  actionName: string;
  bucket: string;
  objectKey: string;
  /** null until the first poll sets the baseline (also while the object does not exist). */
  lastRevision: string | null;
  nextPollAt: number;
  lastPolledAt?: number;
  consecutiveFailures?: number;
  lastError?: string;
}

/** A cursor this replica holds, with the lease term that says so. */
export interface HeldObjectCursor extends ObjectCursor {
  readonly leaseTerm: number;
  readonly leaseHolder: string;
}

export class ObjectCursorStore {
  private readonly cursors: Collection<ObjectCursor>;
  private readonly leases: LeaseTerms;

  constructor(db: Db) {
    this.cursors = db.collection<ObjectCursor>("object_cursors");
    this.leases = new LeaseTerms(db.collection<LeaseTermDoc>("object_leases"));
  }

  async ensureIndexes(): Promise<void> {
    await this.cursors.createIndex({ nextPollAt: 1 });
    await this.cursors.createIndex({ pipelineName: 1 });
    await this.leases.ensureIndexes();
  }

  /** Follows one declaration (undefined: the pipeline is gone); a source whose bucket or key changed starts over. */
  async syncPipeline(pipelineName: string, declaration: PipelineDeclaration | undefined, now: number): Promise<void> {
    const sources: ObjectSource[] = declaration === undefined ? [] : objectSourcesOf(declaration);
    const keep = sources.map((s) => `${pipelineName}/${s.actionName}`);
    const gone = (await this.cursors.find({ pipelineName, _id: { $nin: keep } }, { projection: { _id: 1 } }).toArray()).map((c) => c._id);
    if (gone.length > 0) {
      await this.cursors.deleteMany({ _id: { $in: gone } });
      await this.leases.forget(gone);
    }
    for (const s of sources) {
      const _id = `${pipelineName}/${s.actionName}`;
      if (await this.cursors.findOne({ _id, bucket: s.bucket, objectKey: s.objectKey })) continue;
      await this.cursors.replaceOne(
        { _id },
        { pipelineName, actionName: s.actionName, bucket: s.bucket, objectKey: s.objectKey, lastRevision: null, nextPollAt: now, consecutiveFailures: 0 },
        { upsert: true },
      );
    }
  }

  /** When the next object cursor comes due (epoch ms); undefined when there is none. */
  async nextDueAt(): Promise<number | undefined> {
    const first = await this.cursors.find({}, { projection: { nextPollAt: 1 } }).sort({ nextPollAt: 1 }).limit(1).next();
    return first?.nextPollAt;
  }

  /** Leases up to `limit` due cursors (see LeaseTerms). */
  async claimDue(now: number, owner: string, leaseMs: number, limit: number): Promise<HeldObjectCursor[]> {
    const due = await this.cursors.find({ nextPollAt: { $lte: now } }).sort({ nextPollAt: 1 }).limit(limit).toArray();
    const claimed: HeldObjectCursor[] = [];
    for (const c of due) {
      const term = await this.leases.claim(c._id, now, owner, leaseMs);
      if (term === undefined) continue;
      // Read again now that it is ours: the listing may predate the previous holder's release.
      const fresh = await this.cursors.findOne({ _id: c._id });
      if (fresh === null || fresh.nextPollAt > now) {
        await this.leases.giveBack(c._id, term, owner, now);
        continue;
      }
      claimed.push({ ...fresh, leaseTerm: term, leaseHolder: owner });
    }
    return claimed;
  }

  /** Moves the held cursor from `from` to `to`; false when the lease was lost or the cursor was reset meanwhile. */
  async advance(held: HeldObjectCursor, from: string | null, to: string): Promise<boolean> {
    if (!(await this.leases.stillHeld(held._id, held.leaseTerm, held.leaseHolder))) return false;
    const r = await this.cursors.updateOne({ _id: held._id, lastRevision: from, bucket: held.bucket, objectKey: held.objectKey }, { $set: { lastRevision: to } });
    return r.modifiedCount === 1;
  }

  /** Gives the lease back with the poll's outcome. A no-op when the lease was lost. */
  async release(held: HeldObjectCursor, now: number, result: PollResult): Promise<void> {
    if (!(await this.leases.stillHeld(held._id, held.leaseTerm, held.leaseHolder))) return;
    const free = { nextPollAt: result.nextPollAt, lastPolledAt: now };
    if (result.ok) await this.cursors.updateOne({ _id: held._id }, { $set: { ...free, consecutiveFailures: 0 }, $unset: { lastError: "" } });
    else await this.cursors.updateOne({ _id: held._id }, { $set: { ...free, lastError: result.error }, $inc: { consecutiveFailures: 1 } });
    await this.leases.giveBack(held._id, held.leaseTerm, held.leaseHolder, now);
  }

  async get(id: string): Promise<ObjectCursor | null> {
    return this.cursors.findOne({ _id: id });
  }
}
