import type { Collection, Db } from "mongodb";

/** How a webhook authenticates calls (AWS WebhookAuthenticationType). */
export type WebhookAuthentication = "GITHUB_HMAC" | "IP" | "UNAUTHENTICATED";

/** One stored webhook (collection `webhooks`, `_id` = name). */
export interface WebhookDoc {
  _id: string;
  targetPipeline: string;
  targetAction: string;
  filters: { jsonPath: string; matchEquals: string }[];
  authentication: WebhookAuthentication;
  /** GITHUB_HMAC's key; never returned by the API. */
  secretToken: string;
  allowedIpRange: string;
  /** The random part of the URL; a new one on every PutWebhook. */
  urlToken: string;
  tags: { key: string; value: string }[];
  registeredWithThirdParty: boolean;
  lastTriggered: Date | null;
  errorMessage: string;
  errorCode: string;
  created: Date;
}

/** The `webhooks` collection. */
export class WebhookStore {
  private readonly webhooks: Collection<WebhookDoc>;

  constructor(db: Db) {
    this.webhooks = db.collection<WebhookDoc>("webhooks");
  }

  async ensureIndexes(): Promise<void> {
    await this.webhooks.createIndex({ urlToken: 1 }, { unique: true });
  }

  async get(name: string): Promise<WebhookDoc | null> {
    return this.webhooks.findOne({ _id: name });
  }

  async byUrlToken(urlToken: string): Promise<WebhookDoc | null> {
    return this.webhooks.findOne({ urlToken });
  }

  async count(): Promise<number> {
    return this.webhooks.countDocuments({});
  }

  /** Creates or replaces by name. */
  async put(doc: WebhookDoc): Promise<void> {
    await this.webhooks.replaceOne({ _id: doc._id }, doc, { upsert: true });
  }

  async delete(name: string): Promise<void> {
    await this.webhooks.deleteOne({ _id: name });
  }

  /** Names after `after`, in order, at most `limit`. */
  async list(after: string, limit: number): Promise<WebhookDoc[]> {
    return this.webhooks
      .find(after === "" ? {} : { _id: { $gt: after } })
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
  }

  /** False when the webhook does not exist. */
  async setRegistered(name: string, registered: boolean): Promise<boolean> {
    const r = await this.webhooks.updateOne({ _id: name }, { $set: { registeredWithThirdParty: registered } });
    return r.matchedCount === 1;
  }

  /** A call started the pipeline. Matched by URL token, so a call racing a PutWebhook never marks the new definition. */
  async recordTriggered(urlToken: string, at: Date): Promise<void> {
    await this.webhooks.updateOne({ urlToken }, { $set: { lastTriggered: at, errorMessage: "", errorCode: "" } });
  }

  /** A call passed authentication and filters but could not start the pipeline. */
  async recordError(urlToken: string, errorCode: string, errorMessage: string): Promise<void> {
    await this.webhooks.updateOne({ urlToken }, { $set: { errorCode, errorMessage: errorMessage.slice(0, 1000) } });
  }
}
