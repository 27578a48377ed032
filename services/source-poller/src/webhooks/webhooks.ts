import type { Bus } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import type { Db } from "mongodb";
import { DeliveryGuard } from "./delivery-guard.js";
import type { GitMirrors } from "../git-mirror.js";
import { startWebhookReceiver } from "./receiver.js";
import type { WebhookReceiver, WebhookReceiverConfig } from "./receiver.js";
import { SourceActionStore } from "./source-actions.js";
import { createWebhookApi } from "./webhook-api.js";
import type { WebhookApi } from "./webhook-api.js";
import { WebhookStore } from "./webhook-store.js";

/** The defaults of WEBHOOK_* (see config.ts). */
export const DEFAULT_WEBHOOK_CONFIG: WebhookReceiverConfig = {
  host: "127.0.0.1",
  port: 0,
  publicUrl: "",
  maxBodyBytes: 1024 * 1024,
  maxJsonDepth: 64,
  githubSecret: "",
  gitlabToken: "",
  giteaSecret: "",
  deliveryTtlSeconds: 7 * 24 * 3600,
};

/** The webhook part of the source poller, started. */
export interface Webhooks {
  /** Kept in step with declarations by resync.ts's applyDeclaration. */
  readonly sourceActions: SourceActionStore;
  readonly receiver: WebhookReceiver;
  readonly api: WebhookApi;
}

/** Creates the collections' indexes, starts the HTTP receiver and builds the SourceService API. */
export async function startWebhooks(opts: {
  db: Db;
  bus: Bus;
  logger: Logger;
  config: Partial<WebhookReceiverConfig> | undefined;
  gitTimeoutMs: number;
  gitHostEnv: Readonly<Record<string, string>>;
  /** Reads `.sluice/pipeline.json` for pushes to the definition's source (the poller's mirrors). */
  mirrors?: GitMirrors;
}): Promise<Webhooks> {
  const config = { ...DEFAULT_WEBHOOK_CONFIG, ...opts.config };
  const sourceActions = new SourceActionStore(opts.db);
  const webhooks = new WebhookStore(opts.db);
  const deliveries = new DeliveryGuard(opts.db, config.deliveryTtlSeconds);
  await Promise.all([sourceActions.ensureIndexes(), webhooks.ensureIndexes(), deliveries.ensureIndexes()]);
  const logger = opts.logger.child({ component: "webhooks" });
  const receiver = await startWebhookReceiver({ config, webhooks, sourceActions, deliveries, bus: opts.bus, logger, gitTimeoutMs: opts.gitTimeoutMs, gitHostEnv: opts.gitHostEnv, mirrors: opts.mirrors });
  const api = createWebhookApi({ webhooks, sourceActions, logger, urlOf: (t) => receiver.urlOf(t) });
  return { sourceActions, receiver, api };
}
