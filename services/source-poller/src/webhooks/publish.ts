import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@sluice/bus";
import { SourceChangedSchema } from "@sluice/proto";
import type { DefinitionFile } from "../definition-file.js";

/** One revision a webhook call asks a pipeline to run. */
export interface WebhookSourceChange {
  pipelineName: string;
  actionName: string;
  commit: string;
  branch: string;
  /** `Webhook` (AWS webhooks) or `WebhookV2` (native push events). */
  triggerType: "Webhook" | "WebhookV2";
  triggerDetail: string;
  /** `.sluice/pipeline.json` at the commit (see definition-file.ts); undefined: not looked at or absent. */
  definition?: DefinitionFile | undefined;
}

/**
 * Publishes SourceChanged with the poller's message id `pipeline:action:revision`: the same push
 * seen by a webhook and by the next poll, or delivered twice, is one message to JetStream within
 * its duplicate window, and the orchestrator starts nothing for a revision it already ran.
 */
export async function publishSourceChange(bus: Bus, change: WebhookSourceChange): Promise<string> {
  const eventId = `${change.pipelineName}:${change.actionName}:${change.commit}`;
  const msg = create(SourceChangedSchema, {
    eventId,
    pipelineName: change.pipelineName,
    sourceActionName: change.actionName,
    revision: { revisionId: change.commit, branch: change.branch, created: timestampFromMs(Date.now()) },
    triggerType: change.triggerType,
    triggerDetail: change.triggerDetail.slice(0, 1024),
    ...(change.definition === undefined ? {} : { definition: change.definition }),
  });
  await bus.publish(bus.subjects.sourceSubject(change.pipelineName), SourceChangedSchema, msg, { msgId: eventId });
  return eventId;
}
