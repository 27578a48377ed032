import type { Collection, Db, Filter } from "mongodb";
import type { GitTriggerFilters } from "./git-sources.js";
import { LeaseTerms } from "./lease-terms.js";
import type { LeaseTermDoc } from "./lease-terms.js";

/**
 * Where one Git source action stands: the last revision seen, when to look again, and which
 * replica holds it now (`leaseOwner`/`leaseUntil` are shown to people; the `leases` collection
 * decides).
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
  /**
   * Branch heads seen at the last poll as "branch sha" (triggers with branch filters, which
   * watch every branch they match, as AWS does); null until a baseline.
   */
  knownHeads?: string[] | null;
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
  /** The first Git source action of the first stage: its branch changes carry `.sluice/pipeline.json`. */
  carriesDefinition?: boolean;
}

export interface GitSource {
  actionName: string;
  repositoryUrl: string;
  branch: string;
  trigger: GitTriggerFilters | null;
  /** See SourceCursor.carriesDefinition. */
  carriesDefinition?: boolean;
}

// Lease terms of the cursors, in `leases` keyed `<cursor>#<term>`: see lease-terms.ts for why a
// unique-key insert, not a conditional update, decides who holds a cursor.

/** A cursor this replica holds, with the term that says so. */
export interface HeldCursor extends SourceCursor {
  readonly leaseTerm: number;
  readonly leaseHolder: string;
}

/** What `recordRefs` may set. */
export type RefFields = Partial<Pick<SourceCursor, "knownTags" | "knownHeads" | "lastRevision" | "lastSkipReason">>;

/** How a poll of a held cursor ended. */
export type PollResult = { ok: true; nextPollAt: number } | { ok: false; nextPollAt: number; error: string };

export class CursorStore {
  private readonly cursors: Collection<SourceCursor>;
  private readonly leases: Collection<LeaseTermDoc>;
  private readonly terms: LeaseTerms;

  constructor(db: Db) {
    this.cursors = db.collection<SourceCursor>("cursors");
    this.leases = db.collection<LeaseTermDoc>("leases");
    this.terms = new LeaseTerms(this.leases);
  }

  async ensureIndexes(): Promise<void> {
    await this.cursors.createIndex({ nextPollAt: 1 });
    await this.cursors.createIndex({ pipelineName: 1 });
    await this.terms.ensureIndexes();
  }

  /**
   * Makes the pipeline's cursors match its current Git sources. A source whose URL
   * or branch changed starts over (baseline on the next poll); removed ones go; a changed
   * trigger applies from the next poll on.
   */
  async syncPipeline(pipelineName: string, sources: readonly GitSource[], now: number): Promise<void> {
    const keep = sources.map((s) => `${pipelineName}/${s.actionName}`);
    const gone = (await this.cursors.find({ pipelineName, _id: { $nin: keep } }, { projection: { _id: 1 } }).toArray()).map((c) => c._id);
    if (gone.length > 0) {
      await this.cursors.deleteMany({ _id: { $in: gone } });
      await this.leases.deleteMany({ cursor: { $in: gone } });
    }
    for (const s of sources) {
      const _id = `${pipelineName}/${s.actionName}`;
      const same = await this.cursors.findOne({ _id, repositoryUrl: s.repositoryUrl, branch: s.branch });
      if (same) {
        if (JSON.stringify(same.trigger ?? null) !== JSON.stringify(s.trigger) || (same.carriesDefinition ?? false) !== (s.carriesDefinition ?? false)) {
          await this.cursors.updateOne({ _id }, { $set: { trigger: s.trigger, carriesDefinition: s.carriesDefinition ?? false } });
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
          carriesDefinition: s.carriesDefinition ?? false,
          lastRevision: null,
          knownTags: null,
          knownHeads: null,
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
    const ids = (await this.cursors.find({ pipelineName }, { projection: { _id: 1 } }).toArray()).map((c) => c._id);
    await this.cursors.deleteMany({ pipelineName });
    if (ids.length > 0) await this.leases.deleteMany({ cursor: { $in: ids } });
  }

  /**
   * Takes the lease of up to `limit` due cursors whose newest lease term has run out (or that
   * never had one). A replica that crashed holding a cursor loses it when its term expires.
   */
  async claimDue(now: number, owner: string, leaseMs: number, limit: number): Promise<HeldCursor[]> {
    const due = await this.cursors.find({ nextPollAt: { $lte: now } }).sort({ nextPollAt: 1 }).limit(limit).toArray();
    const claimed: HeldCursor[] = [];
    for (const c of due) {
      const term = await this.claim(c._id, now, owner, leaseMs);
      if (term === undefined) continue;
      // Read again now that the cursor is ours: the listing may predate the previous holder's
      // release, which moved nextPollAt on.
      const fresh = await this.cursors.findOne({ _id: c._id });
      if (fresh === null || fresh.nextPollAt > now) {
        await this.terms.giveBack(c._id, term, owner, now);
        continue;
      }
      await this.cursors.updateOne({ _id: c._id }, { $set: { leaseOwner: owner, leaseUntil: now + leaseMs } });
      claimed.push({ ...fresh, leaseOwner: owner, leaseUntil: now + leaseMs, leaseTerm: term, leaseHolder: owner });
    }
    return claimed;
  }

  /** When the next cursor comes due (epoch ms); undefined when there is none. */
  async nextDueAt(): Promise<number | undefined> {
    const first = await this.cursors.find({}, { projection: { nextPollAt: 1 } }).sort({ nextPollAt: 1 }).limit(1).next();
    return first?.nextPollAt;
  }

  /** Inserts the next lease term of a cursor; undefined when its newest term is still held or another replica won. */
  private claim(cursor: string, now: number, owner: string, leaseMs: number): Promise<number | undefined> {
    return this.terms.claim(cursor, now, owner, leaseMs);
  }

  /**
   * Whether `held` is still this replica's: no later term was taken since. A holder slower
   * than its lease keeps the cursor until another replica takes it over.
   */
  async stillHeld(held: HeldCursor): Promise<boolean> {
    return this.terms.stillHeld(held._id, held.leaseTerm, held.leaseHolder);
  }

  /**
   * Moves the held cursor from `from` to `to`; false when the lease was lost or someone reset
   * the cursor (a changed declaration) in the meantime.
   */
  async advance(held: HeldCursor, from: string | null, to: string, skipReason?: string): Promise<boolean> {
    if (!(await this.stillHeld(held))) return false;
    const update = skipReason === undefined ? { $set: { lastRevision: to }, $unset: { lastSkipReason: "" as const } } : { $set: { lastRevision: to, lastSkipReason: skipReason } };
    const r = await this.cursors.updateOne({ _id: held._id, lastRevision: from }, update);
    return r.modifiedCount === 1;
  }

  /** Records the refs seen (triggers), and what the last change did, while the lease is held. */
  async recordRefs(held: HeldCursor, fields: RefFields): Promise<boolean> {
    if (!(await this.stillHeld(held))) return false;
    const r = await this.cursors.updateOne({ _id: held._id }, { $set: fields });
    return r.matchedCount === 1;
  }

  /**
   * Gives the lease back with the poll's outcome: the next poll time, and the failure count
   * and error (reset by a success). A no-op when the lease was lost.
   */
  async release(held: HeldCursor, now: number, result: PollResult): Promise<void> {
    if (!(await this.stillHeld(held))) return;
    const free = { leaseOwner: "", leaseUntil: 0, nextPollAt: result.nextPollAt, lastPolledAt: now };
    if (result.ok) {
      await this.cursors.updateOne({ _id: held._id }, { $set: { ...free, consecutiveFailures: 0 }, $unset: { lastError: "" } });
    } else {
      await this.cursors.updateOne({ _id: held._id }, { $set: { ...free, lastError: result.error }, $inc: { consecutiveFailures: 1 } });
    }
    await this.terms.giveBack(held._id, held.leaseTerm, held.leaseHolder, now);
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
