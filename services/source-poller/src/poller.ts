import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@sluice/bus";
import { stripUserinfo } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { SourceChangedSchema } from "@sluice/proto";
import type { CursorStore, SourceCursor } from "./cursor-store.js";
import { lsRemoteHead } from "./git-remote.js";

export interface PollerOptions {
  store: CursorStore;
  bus: Bus;
  logger: Logger;
  intervalMs: number;
  gitTimeoutMs: number;
  /** The environment git starts from (see `SourcePollerConfig.gitHostEnv`). */
  gitHostEnv: Readonly<Record<string, string>>;
  now?: () => number;
}

/**
 * Checks every due Git source once. A new head is published as SourceChanged
 * before the cursor moves: if the process dies in between, the next poll publishes
 * the same revision again, and the message id (and the orchestrator, which ignores
 * a revision it already ran) make that harmless. The first poll of a source only
 * records a baseline: the pipeline's initial execution already covers that commit.
 */
export async function pollOnce(o: PollerOptions): Promise<number> {
  const now = (o.now ?? Date.now)();
  const due = await o.store.claimDue(now, o.intervalMs, 100);
  let published = 0;
  await Promise.all(
    due.map(async (cursor) => {
      if (await pollCursor(o, cursor)) published++;
    }),
  );
  return published;
}

async function pollCursor(o: PollerOptions, cursor: SourceCursor): Promise<boolean> {
  const log = o.logger.child({ pipeline: cursor.pipelineName, action: cursor.actionName });
  let head: string | undefined;
  try {
    head = await lsRemoteHead(cursor.repositoryUrl, cursor.branch, { timeoutMs: o.gitTimeoutMs, hostEnv: o.gitHostEnv });
  } catch (err) {
    const message = stripUserinfo(err instanceof Error ? err.message : String(err));
    log.warn("git ls-remote failed", { error: message });
    await o.store.recordError(cursor._id, message);
    return false;
  }
  if (!head || head === cursor.lastRevision) return false;
  if (cursor.lastRevision === null) {
    await o.store.advance(cursor._id, null, head);
    log.info("source baseline recorded", { revision: head });
    return false;
  }
  const eventId = `${cursor.pipelineName}:${cursor.actionName}:${head}`;
  const msg = create(SourceChangedSchema, {
    eventId,
    pipelineName: cursor.pipelineName,
    sourceActionName: cursor.actionName,
    revision: { revisionId: head, branch: cursor.branch, created: timestampFromMs(Date.now()) },
    triggerType: "PollForSourceChanges",
    // Credentials in the URL stay with the cursor: the detail is shown to every viewer.
    triggerDetail: `${stripUserinfo(cursor.repositoryUrl)}#${cursor.branch}`,
  });
  await o.bus.publish(o.bus.subjects.sourceSubject(cursor.pipelineName), SourceChangedSchema, msg, { msgId: eventId });
  await o.store.advance(cursor._id, cursor.lastRevision, head);
  log.info("source change detected", { revision: head, previous: cursor.lastRevision });
  return true;
}
