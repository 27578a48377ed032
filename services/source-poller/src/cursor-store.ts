import type { Collection, Db } from "mongodb";

/** Where one Git source action stands: the last revision seen and when to look again. */
export interface SourceCursor {
  _id: string; // "<pipeline>/<action>"
  pipelineName: string;
  actionName: string;
  repositoryUrl: string;
  branch: string;
  /** The revision already accounted for; null until the first poll sets the baseline. */
  lastRevision: string | null;
  nextPollAt: number;
  lastError?: string;
}

export interface GitSource {
  actionName: string;
  repositoryUrl: string;
  branch: string;
}

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
   * or branch changed starts over (baseline on the next poll); removed ones go.
   */
  async syncPipeline(pipelineName: string, sources: readonly GitSource[], now: number): Promise<void> {
    const keep = sources.map((s) => `${pipelineName}/${s.actionName}`);
    await this.cursors.deleteMany({ pipelineName, _id: { $nin: keep } });
    for (const s of sources) {
      const _id = `${pipelineName}/${s.actionName}`;
      const same = await this.cursors.findOne({ _id, repositoryUrl: s.repositoryUrl, branch: s.branch });
      if (same) continue;
      await this.cursors.replaceOne(
        { _id },
        { pipelineName, actionName: s.actionName, repositoryUrl: s.repositoryUrl, branch: s.branch, lastRevision: null, nextPollAt: now },
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
   * Claims the cursors due now by pushing their next poll time forward in one
   * conditional write each, so replicas never poll the same source twice per interval.
   */
  async claimDue(now: number, intervalMs: number, limit: number): Promise<SourceCursor[]> {
    const due = await this.cursors.find({ nextPollAt: { $lte: now } }).sort({ nextPollAt: 1 }).limit(limit).toArray();
    const claimed: SourceCursor[] = [];
    for (const c of due) {
      const r = await this.cursors.findOneAndUpdate(
        { _id: c._id, nextPollAt: c.nextPollAt },
        { $set: { nextPollAt: now + intervalMs } },
        { returnDocument: "after" },
      );
      if (r) claimed.push(r);
    }
    return claimed;
  }

  /** Moves the cursor from `from` to `to`; false when another poller got there first. */
  async advance(id: string, from: string | null, to: string): Promise<boolean> {
    const r = await this.cursors.updateOne({ _id: id, lastRevision: from }, { $set: { lastRevision: to }, $unset: { lastError: "" } });
    return r.modifiedCount === 1;
  }

  async recordError(id: string, message: string): Promise<void> {
    await this.cursors.updateOne({ _id: id }, { $set: { lastError: message } });
  }

  async get(id: string): Promise<SourceCursor | null> {
    return this.cursors.findOne({ _id: id });
  }
}
