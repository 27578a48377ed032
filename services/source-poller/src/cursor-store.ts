import type { Collection, Db, Filter } from "mongodb";
import type { GitTriggerFilters } from "./git-sources.js";

/**
 * Where one Git source action stands: the last revision seen, when to look again, and which
 * replica holds it now. Replicas share the collection: a replica polls a cursor only while it
 * holds the cursor's lease (`leaseOwner` until `leaseUntil`), taken and given back with one
 * conditional write each, which is all FerretDB needs to keep it exclusive (no transactions).
 */
export interface SourceCursor {
  _id: string; // "<pipeline>/<action>"
  pipelineName: string;
  actionName: string;
  repositoryUrl: string;
  branch: string;
  /** The revision already accounted for; null until the first poll sets the baseline. */
  lastRevision: string | null;
  /** The pipeline's trigger for this action; null: every change of the branch starts it. */
  trigger?: GitTriggerFilters | null;
  /** Tags seen at the last poll as "name sha" (tag triggers only); null until a baseline. */
  knownTags?: string[] | null;
  nextPollAt: number;
  /** "" when free. */
  leaseOwner?: string;
  /** 0 when free; a lease past this is free again (its holder crashed or hung). */
  leaseUntil?: number;
  lastPolledAt?: number;
  consecutiveFailures?: number;
  lastError?: string;
  /** Why the last change seen did not start the pipeline. */
  lastSkipReason?: string;
}

export interface GitSource {
  actionName: string;
  repositoryUrl: string;
  branch: string;
  trigger: GitTriggerFilters | null;
}

/** How a poll of a held cursor ended. */
export type PollResult = { ok: true; nextPollAt: number } | { ok: false; nextPollAt: number; error: string };

export class CursorStore {
  private readonly cursors: Collection<SourceCursor>;

  constructor(db: Db) {
    this.cursors = db.collection<SourceCursor>("cursors");
  }

  async ensureIndexes(): Promise<void> {
    await this.cursors.createIndex({ nextPollAt: 1 });
    await this.cursors.createIndex({ pipelineName: 1 });
  }

  /**
   * Makes the pipeline's cursors match its current Git sources. A source whose URL
   * or branch changed starts over (baseline on the next poll); removed ones go; a changed
   * trigger applies from the next poll on.
   */
  async syncPipeline(pipelineName: string, sources: readonly GitSource[], now: number): Promise<void> {
    const keep = sources.map((s) => `${pipelineName}/${s.actionName}`);
    await this.cursors.deleteMany({ pipelineName, _id: { $nin: keep } });
    for (const s of sources) {
      const _id = `${pipelineName}/${s.actionName}`;
      const same = await this.cursors.findOne({ _id, repositoryUrl: s.repositoryUrl, branch: s.branch });
      if (same) {
        if (JSON.stringify(same.trigger ?? null) !== JSON.stringify(s.trigger)) {
          await this.cursors.updateOne({ _id }, { $set: { trigger: s.trigger } });
        }
        continue;
      }
      await this.cursors.replaceOne(
        { _id },
        {
          pipelineName,
          actionName: s.actionName,
          repositoryUrl: s.repositoryUrl,
          branch: s.branch,
          trigger: s.trigger,
          lastRevision: null,
          knownTags: null,
          nextPollAt: now,
          leaseOwner: "",
          leaseUntil: 0,
          consecutiveFailures: 0,
        },
        { upsert: true },
      );
    }
  }

  /** Every pipeline that has a cursor. */
  async pipelineNames(): Promise<string[]> {
    const docs = await this.cursors.find({}, { projection: { pipelineName: 1 } }).toArray();
    return [...new Set(docs.map((d) => d.pipelineName))];
  }

  async removePipeline(pipelineName: string): Promise<void> {
    await this.cursors.deleteMany({ pipelineName });
  }

  /**
   * Takes the lease of up to `limit` cursors that are due and free (never leased, given back,
   * or held past their lease). Each is taken with a write conditional on the lease it was read
   * with, so of two replicas racing for one cursor exactly one gets it.
   */
  async claimDue(now: number, owner: string, leaseMs: number, limit: number): Promise<SourceCursor[]> {
    const free: Filter<SourceCursor> = { $or: [{ leaseUntil: { $lte: now } }, { leaseUntil: { $exists: false } }] };
    const due = await this.cursors.find({ nextPollAt: { $lte: now }, ...free }).sort({ nextPollAt: 1 }).limit(limit).toArray();
    const claimed: SourceCursor[] = [];
    for (const c of due) {
      const held: Filter<SourceCursor> = c.leaseUntil === undefined ? { leaseUntil: { $exists: false } } : { leaseUntil: c.leaseUntil };
      const r = await this.cursors.findOneAndUpdate(
        { _id: c._id, nextPollAt: c.nextPollAt, ...held },
        { $set: { leaseOwner: owner, leaseUntil: now + leaseMs } },
        { returnDocument: "after" },
      );
      if (r) claimed.push(r);
    }
    return claimed;
  }

  /**
   * Moves the cursor from `from` to `to` while `owner` holds it; false when it lost the
   * lease or someone reset the cursor (a changed declaration) in the meantime.
   */
  async advance(id: string, owner: string, from: string | null, to: string, skipReason?: string): Promise<boolean> {
    const update = skipReason === undefined ? { $set: { lastRevision: to }, $unset: { lastSkipReason: "" as const } } : { $set: { lastRevision: to, lastSkipReason: skipReason } };
    const r = await this.cursors.updateOne({ _id: id, leaseOwner: owner, lastRevision: from }, update);
    return r.modifiedCount === 1;
  }

  /** Records the tags seen (tag triggers), while `owner` holds the cursor. */
  async setKnownTags(id: string, owner: string, tags: string[]): Promise<boolean> {
    const r = await this.cursors.updateOne({ _id: id, leaseOwner: owner }, { $set: { knownTags: tags } });
    return r.matchedCount === 1;
  }

  /**
   * Gives the lease back with the poll's outcome: the next poll time, and the failure count
   * and error (reset by a success). A no-op when `owner` no longer holds it.
   */
  async release(id: string, owner: string, now: number, result: PollResult): Promise<void> {
    const free = { leaseOwner: "", leaseUntil: 0, nextPollAt: result.nextPollAt, lastPolledAt: now };
    if (result.ok) {
      await this.cursors.updateOne({ _id: id, leaseOwner: owner }, { $set: { ...free, consecutiveFailures: 0 }, $unset: { lastError: "" } });
    } else {
      await this.cursors.updateOne({ _id: id, leaseOwner: owner }, { $set: { ...free, lastError: result.error }, $inc: { consecutiveFailures: 1 } });
    }
  }

  /** Cursors in `_id` order after `after`, optionally of one pipeline. */
  async list(pipelineName: string, after: string, limit: number): Promise<SourceCursor[]> {
    const filter: Filter<SourceCursor> = {};
    if (pipelineName !== "") filter.pipelineName = pipelineName;
    if (after !== "") filter._id = { $gt: after };
    return this.cursors.find(filter).sort({ _id: 1 }).limit(limit).toArray();
  }

  async get(id: string): Promise<SourceCursor | null> {
    return this.cursors.findOne({ _id: id });
  }
}
