import type { Collection, Db } from "mongodb";
import { MongoServerError } from "mongodb";

interface DeliveryDoc {
  _id: string; // "<provider>:<delivery id>"
  seenAt: Date;
}

/**
 * The delivery ids already taken (collection `webhook_deliveries`), so a replayed delivery
 * starts nothing. Kept in MongoDB, not memory, so a restart or another replica sees them too;
 * a TTL index forgets them after `ttlSeconds`.
 */
export class DeliveryGuard {
  private readonly deliveries: Collection<DeliveryDoc>;

  constructor(
    db: Db,
    private readonly ttlSeconds: number,
  ) {
    this.deliveries = db.collection<DeliveryDoc>("webhook_deliveries");
  }

  async ensureIndexes(): Promise<void> {
    await this.deliveries.createIndex({ seenAt: 1 }, { expireAfterSeconds: this.ttlSeconds });
  }

  /** True for the first claim of an id; false when it was seen before (the insert decides races). */
  async claim(provider: string, deliveryId: string, now: Date): Promise<boolean> {
    try {
      await this.deliveries.insertOne({ _id: `${provider}:${deliveryId}`, seenAt: now });
      return true;
    } catch (err) {
      if (err instanceof MongoServerError && err.code === 11000) return false;
      throw err;
    }
  }

  /** Gives an id back when handling it failed, so the host's retry of that delivery is taken. */
  async release(provider: string, deliveryId: string): Promise<void> {
    await this.deliveries.deleteOne({ _id: `${provider}:${deliveryId}` });
  }
}
