import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@sluice/bus";
import { matchGitTrigger, stripUserinfo } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { SourceChangedSchema } from "@sluice/proto";
import { MAX_BACKOFF_MS, backoffMs } from "./backoff.js";
import type { CursorStore, HeldCursor } from "./cursor-store.js";
import type { GitMirrors } from "./git-mirror.js";
import { lsRemoteHead, lsRemoteTags } from "./git-remote.js";

/** Trigger details longer than AWS's triggerDetail (1024) are cut. */
const MAX_DETAIL = 1024;

export interface PollerOptions {
  store: CursorStore;
  bus: Bus;
  logger: Logger;
  intervalMs: number;
  gitTimeoutMs: number;
  /** The environment git starts from (see `SourcePollerConfig.gitHostEnv`). */
  gitHostEnv: Readonly<Record<string, string>>;
  /** Who holds the leases this poller takes: unique per replica. */
  owner: string;
  /** How long a lease lasts: longer than a poll can take, so only a dead holder loses one. */
  leaseMs: number;
  /** Computes changed paths for filePaths filters. */
  mirrors: GitMirrors;
  maxBackoffMs?: number;
  /** Cursors claimed per round. @default 100 */
  batchSize?: number;
  now?: () => number;
}

/**
 * Checks every due Git source this replica can lease, once. A new head is published as
 * SourceChanged before the cursor moves: if the process dies in between, the next poll (here or
 * on another replica once the lease ran out) publishes the same revision again, and the message
 * id `pipeline:action:revision` (and the orchestrator, which ignores a revision it already ran)
 * make that harmless. The first poll of a source only records a baseline: the pipeline's initial
 * execution already covers that commit. Returns how many SourceChanged were published.
 */
export async function pollOnce(o: PollerOptions): Promise<number> {
  const now = (o.now ?? Date.now)();
  const due = await o.store.claimDue(now, o.owner, o.leaseMs, o.batchSize ?? 100);
  const counts = await Promise.all(due.map((cursor) => pollHeld(o, cursor, now)));
  return counts.reduce((a, b) => a + b, 0);
}

async function pollHeld(o: PollerOptions, cursor: HeldCursor, now: number): Promise<number> {
  const log = o.logger.child({ pipeline: cursor.pipelineName, action: cursor.actionName });
  try {
    const published = await pollCursor(o, cursor, log);
    await o.store.release(cursor, (o.now ?? Date.now)(), { ok: true, nextPollAt: now + o.intervalMs });
    return published;
  } catch (err) {
    const error = stripUserinfo(err instanceof Error ? err.message : String(err));
    const failures = (cursor.consecutiveFailures ?? 0) + 1;
    const waitMs = backoffMs(failures, o.intervalMs, o.maxBackoffMs ?? MAX_BACKOFF_MS);
    log.warn("source poll failed; backing off", { error, consecutiveFailures: failures, retryInMs: waitMs });
    await o.store.release(cursor, (o.now ?? Date.now)(), { ok: false, nextPollAt: now + waitMs, error });
    return 0;
  }
}

async function pollCursor(o: PollerOptions, cursor: HeldCursor, log: Logger): Promise<number> {
  const git = { timeoutMs: o.gitTimeoutMs, hostEnv: o.gitHostEnv };
  const trigger = cursor.trigger ?? null;
  const watchesTags = trigger !== null && trigger.push.some((p) => p.tags !== undefined);
  const head = await lsRemoteHead(cursor.repositoryUrl, cursor.branch, git);
  const tags = watchesTags ? await lsRemoteTags(cursor.repositoryUrl, git) : undefined;
  let published = 0;

  if (head !== undefined && head !== cursor.lastRevision) {
    if (cursor.lastRevision === null) {
      await o.store.advance(cursor, null, head);
      log.info("source baseline recorded", { revision: head });
    } else if (trigger === null) {
      await publish(o, cursor, head, cursor.branch, `${stripUserinfo(cursor.repositoryUrl)}#${cursor.branch}`);
      await o.store.advance(cursor, cursor.lastRevision, head);
      log.info("source change detected", { revision: head, previous: cursor.lastRevision });
      published++;
    } else {
      const needsPaths = trigger.push.some((p) => p.branches !== undefined && p.filePaths !== undefined);
      let changedPaths: string[] | undefined;
      if (needsPaths) {
        try {
          changedPaths = await o.mirrors.changedPaths(cursor.repositoryUrl, cursor.branch, cursor.lastRevision, head);
        } catch (err) {
          // Not knowing what changed must not lose a change: the matcher then lets filePaths pass.
          log.warn("changed paths unknown; filePaths filters not applied", { error: stripUserinfo(err instanceof Error ? err.message : String(err)) });
        }
      }
      const match = matchGitTrigger(trigger, { kind: "push", branch: cursor.branch, commit: head, ...(changedPaths === undefined ? {} : { changedPaths }) });
      if (match.matched) {
        await publish(o, cursor, head, cursor.branch, `${stripUserinfo(cursor.repositoryUrl)}#${cursor.branch} ${match.reason}`);
        await o.store.advance(cursor, cursor.lastRevision, head);
        log.info("source change matched the trigger", { revision: head, previous: cursor.lastRevision, reason: match.reason });
        published++;
      } else {
        await o.store.advance(cursor, cursor.lastRevision, head, match.reason);
        log.info("source change does not match the trigger; nothing started", { revision: head, previous: cursor.lastRevision, reason: match.reason });
      }
    }
  }

  if (tags !== undefined && trigger !== null) {
    const seen = [...tags].map(([name, sha]) => `${name} ${sha}`).sort();
    if (cursor.knownTags === null || cursor.knownTags === undefined) {
      log.info("tag baseline recorded", { tags: seen.length });
    } else {
      const known = new Set(cursor.knownTags);
      for (const entry of seen) {
        if (known.has(entry)) continue;
        const [name = "", sha = ""] = entry.split(" ");
        const match = matchGitTrigger(trigger, { kind: "push", tag: name, commit: sha });
        if (!match.matched) {
          log.info("new tag does not match the trigger; nothing started", { tag: name, revision: sha, reason: match.reason });
          continue;
        }
        await publish(o, cursor, sha, cursor.branch, `${stripUserinfo(cursor.repositoryUrl)}#refs/tags/${name} ${match.reason}`);
        log.info("new tag matched the trigger", { tag: name, revision: sha, reason: match.reason });
        published++;
      }
    }
    if (JSON.stringify(seen) !== JSON.stringify(cursor.knownTags)) await o.store.setKnownTags(cursor, seen);
  }
  return published;
}

async function publish(o: PollerOptions, cursor: HeldCursor, revision: string, branch: string, detail: string): Promise<void> {
  const eventId = `${cursor.pipelineName}:${cursor.actionName}:${revision}`;
  const msg = create(SourceChangedSchema, {
    eventId,
    pipelineName: cursor.pipelineName,
    sourceActionName: cursor.actionName,
    revision: { revisionId: revision, branch, created: timestampFromMs(Date.now()) },
    triggerType: "PollForSourceChanges",
    // Credentials in the URL stay with the cursor: the detail is shown to every viewer.
    triggerDetail: detail.slice(0, MAX_DETAIL),
  });
  await o.bus.publish(o.bus.subjects.sourceSubject(cursor.pipelineName), SourceChangedSchema, msg, { msgId: eventId });
}
