import { MongoServerError } from "mongodb";
import type { Collection } from "mongodb";

/**
 * One lease term of a cursor (Git or ObjectStore source), keyed `<cursor>#<term>`. A replica
 * takes a cursor by inserting the term after the newest one, once that one has run out: a
 * unique-key insert has one winner on MongoDB and on FerretDB 1.x alike, whereas FerretDB does
 * not make a filtered update a compare-and-set (its updates are read-modify-write without
 * isolation), so two replicas could both "win" a conditional update of the cursor. Only the
 * holder ever writes its term (to give it back early), so nothing races on a lease document.
 */
export interface LeaseTermDoc {
  _id: string;
  cursor: string;
  term: number;
  owner: string;
  /** Free from this moment on: the expiry, or the moment it was given back. */
  until: number;
}

/** Expired terms older than this many lease lengths are deleted when a new term is taken. */
const LEASE_HISTORY = 10;

export class LeaseTerms {
  constructor(private readonly leases: Collection<LeaseTermDoc>) {}

  async ensureIndexes(): Promise<void> {
    await this.leases.createIndex({ cursor: 1, term: -1 });
  }

  /** Inserts the next term of `cursor`; undefined when its newest term is still held or another replica won. */
  async claim(cursor: string, now: number, owner: string, leaseMs: number): Promise<number | undefined> {
    const newest = await this.leases.find({ cursor }).sort({ term: -1 }).limit(1).next();
    if (newest !== null && newest.until > now) return undefined;
    const term = (newest?.term ?? 0) + 1;
    try {
      await this.leases.insertOne({ _id: `${cursor}#${term}`, cursor, term, owner, until: now + leaseMs });
    } catch (err) {
      if (err instanceof MongoServerError && err.code === 11000) return undefined;
      throw err;
    }
    // Old terms only tell history. Those long expired go: a claimer reads the newest term and
    // inserts the next within milliseconds, so it never sees a term this old as the newest.
    // Every LEASE_HISTORY-th term is enough to keep them few, and spares a round trip per poll.
    if (term % LEASE_HISTORY === 0) await this.leases.deleteMany({ cursor, term: { $lt: term }, until: { $lt: now - LEASE_HISTORY * leaseMs } });
    return term;
  }

  /** Whether term `term` of `cursor` is still `owner`'s: no later term was taken since. */
  async stillHeld(cursor: string, term: number, owner: string): Promise<boolean> {
    const [own, later] = await Promise.all([this.leases.findOne({ _id: `${cursor}#${term}` }), this.leases.findOne({ cursor, term: { $gt: term } })]);
    return own !== null && own.owner === owner && later === null;
  }

  /** Gives a held term back early. */
  async giveBack(cursor: string, term: number, owner: string, now: number): Promise<void> {
    await this.leases.updateOne({ _id: `${cursor}#${term}`, owner }, { $set: { until: now } });
  }

  /** Forgets every term of the given cursors (they were removed). */
  async forget(cursors: readonly string[]): Promise<void> {
    if (cursors.length > 0) await this.leases.deleteMany({ cursor: { $in: [...cursors] } });
  }
}
