import type { Collection, Db } from "mongodb";
import { MongoServerError } from "mongodb";

interface DeliveryDoc {
  _id: string; // "<provider>:<delivery id>"
  seenAt: Date;
  expiresAt: Date;
}

/** How often expired ids are deleted where the server has no TTL indexes (FerretDB). */
const PRUNE_EVERY_MS = 60_000;

/**
 * The delivery ids already taken (collection `webhook_deliveries`), so a replayed delivery
 * starts nothing. Kept in MongoDB, not memory, so a restart or another replica sees them too.
 * Ids are forgotten after `ttlSeconds`: by a TTL index on MongoDB; FerretDB has none, so an
 * expired id also counts as unseen and the guard deletes expired ids now and then itself.
 */
export class DeliveryGuard {
  private readonly deliveries: Collection<DeliveryDoc>;
  private lastPruneMs = 0;

  constructor(
    db: Db,
    private readonly ttlSeconds: number,
  ) {
    this.deliveries = db.collection<DeliveryDoc>("webhook_deliveries");
  }

  async ensureIndexes(): Promise<void> {
    try {
      await this.deliveries.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0 });
    } catch (err) {
      if (!(err instanceof MongoServerError)) throw err;
      await this.deliveries.createIndex({ expiresAt: 1 });
    }
  }

  /** True for the first claim of an id (or of one expired); false when seen before. The write decides races. */
  async claim(provider: string, deliveryId: string, now: Date): Promise<boolean> {
    const _id = `${provider}:${deliveryId}`;
    const expiresAt = new Date(now.getTime() + this.ttlSeconds * 1000);
    this.pruneNowAndThen(now);
    try {
      await this.deliveries.insertOne({ _id, seenAt: now, expiresAt });
      return true;
    } catch (err) {
      if (!(err instanceof MongoServerError && err.code === 11000)) throw err;
    }
    const renewed = await this.deliveries.updateOne({ _id, expiresAt: { $lte: now } }, { $set: { seenAt: now, expiresAt } });
    return renewed.modifiedCount === 1;
  }

  /** Gives an id back when handling it failed, so the host's retry of that delivery is taken. */
  async release(provider: string, deliveryId: string): Promise<void> {
    await this.deliveries.deleteOne({ _id: `${provider}:${deliveryId}` });
  }

  private pruneNowAndThen(now: Date): void {
    if (now.getTime() - this.lastPruneMs < PRUNE_EVERY_MS) return;
    this.lastPruneMs = now.getTime();
    // Best effort: an id left behind only costs a document; it already counts as unseen.
    void this.deliveries.deleteMany({ expiresAt: { $lte: now } }).catch(() => undefined);
  }
}
