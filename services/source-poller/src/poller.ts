import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@sluice/bus";
import { matchGitTrigger, stripUserinfo } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { SourceChangedSchema } from "@sluice/proto";
import type { CursorStore, HeldCursor } from "./cursor-store.js";
import { readDefinition } from "./definition-file.js";
import type { DefinitionFile } from "./definition-file.js";
import type { GitMirrors } from "./git-mirror.js";
import { lsRemoteHead, lsRemoteHeads, lsRemoteTags } from "./git-remote.js";
import type { LsRemoteOptions } from "./git-remote.js";
import type { GitTriggerFilters } from "./git-sources.js";
import { pollLeasedRound } from "./leased-round.js";
import type { LeasedRoundOptions } from "./leased-round.js";

/** Trigger details longer than AWS's triggerDetail (1024) are cut. */
const MAX_DETAIL = 1024;

export interface PollerOptions extends LeasedRoundOptions {
  store: CursorStore;
  bus: Bus;
  gitTimeoutMs: number;
  /** The environment git starts from (see `SourcePollerConfig.gitHostEnv`). */
  gitHostEnv: Readonly<Record<string, string>>;
  /** Computes changed paths for filePaths filters. */
  mirrors: GitMirrors;
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
  return pollLeasedRound(o, o.store, "source", (cursor, log) => pollCursor(o, cursor, log));
}

async function pollCursor(o: PollerOptions, cursor: HeldCursor, log: Logger): Promise<number> {
  const trigger = cursor.trigger ?? null;
  if (trigger === null) return pollBranch(o, cursor, log);
  // As AWS: branch filters replace BranchName (every matching branch is watched); a trigger
  // with tag or pull-request filters only ignores branch pushes altogether.
  let published = 0;
  if (trigger.push.some((p) => p.branches !== undefined)) published += await pollBranches(o, cursor, trigger, log);
  else await pollBranch(o, cursor, log, "the trigger filters no branch pushes");
  if (trigger.push.some((p) => p.tags !== undefined)) published += await pollTags(o, cursor, trigger, log);
  return published;
}

function gitOptions(o: PollerOptions): LsRemoteOptions {
  return { timeoutMs: o.gitTimeoutMs, hostEnv: o.gitHostEnv };
}

/**
 * BranchName only, without a trigger (every new head starts the pipeline) or, with `skipping`,
 * a trigger that takes no branch pushes (the head is followed so the state stays current).
 */
async function pollBranch(o: PollerOptions, cursor: HeldCursor, log: Logger, skipping?: string): Promise<number> {
  const head = await lsRemoteHead(cursor.repositoryUrl, cursor.branch, gitOptions(o));
  if (head === undefined || head === cursor.lastRevision) return 0;
  if (cursor.lastRevision === null) {
    await o.store.advance(cursor, null, head);
    log.info("source baseline recorded", { revision: head });
    return 0;
  }
  if (skipping !== undefined) {
    await o.store.advance(cursor, cursor.lastRevision, head, skipping);
    log.info("source change does not match the trigger; nothing started", { revision: head, previous: cursor.lastRevision, reason: skipping });
    return 0;
  }
  const definition = cursor.carriesDefinition === true ? await readDefinition(o.mirrors, cursor.repositoryUrl, cursor.branch, head) : undefined;
  await publish(o, cursor, head, cursor.branch, `${stripUserinfo(cursor.repositoryUrl)}#${cursor.branch}`, definition);
  await o.store.advance(cursor, cursor.lastRevision, head);
  log.info("source change detected", { revision: head, previous: cursor.lastRevision });
  return 1;
}

/** Every branch head, judged by the trigger; a branch's changed paths come from the mirror. */
async function pollBranches(o: PollerOptions, cursor: HeldCursor, trigger: GitTriggerFilters, log: Logger): Promise<number> {
  const heads = await lsRemoteHeads(cursor.repositoryUrl, gitOptions(o));
  const seen = [...heads].map(([name, sha]) => `${name} ${sha}`).sort();
  const lastRevision = heads.get(cursor.branch) ?? cursor.lastRevision;
  if (cursor.knownHeads === null || cursor.knownHeads === undefined) {
    await o.store.recordRefs(cursor, { knownHeads: seen, lastRevision });
    log.info("source baseline recorded", { branches: heads.size, revision: lastRevision });
    return 0;
  }
  const known = new Map(cursor.knownHeads.map((entry) => entry.split(" ") as [string, string]));
  const needsPaths = trigger.push.some((p) => p.branches !== undefined && p.filePaths !== undefined);
  let published = 0;
  let skipReason: string | undefined;
  for (const [branch, sha] of heads) {
    const from = known.get(branch);
    if (from === sha) continue;
    let changedPaths: string[] | undefined;
    // A new branch has no previous head to diff with: its paths are unknown, so filePaths lets it through.
    if (needsPaths && from !== undefined) {
      try {
        changedPaths = await o.mirrors.changedPaths(cursor.repositoryUrl, branch, from, sha);
      } catch (err) {
        // Not knowing what changed must not lose a change: the matcher then lets filePaths pass.
        log.warn("changed paths unknown; filePaths filters not applied", { branch, error: stripUserinfo(err instanceof Error ? err.message : String(err)) });
      }
    }
    const match = matchGitTrigger(trigger, { kind: "push", branch, commit: sha, ...(changedPaths === undefined ? {} : { changedPaths }) });
    if (!match.matched) {
      skipReason = `${branch}: ${match.reason}`;
      log.info("source change does not match the trigger; nothing started", { branch, revision: sha, previous: from, reason: match.reason });
      continue;
    }
    // Only the configured branch declares the pipeline: a feature branch's file is not the pipeline's.
    const definition = cursor.carriesDefinition === true && branch === cursor.branch ? await readDefinition(o.mirrors, cursor.repositoryUrl, branch, sha) : undefined;
    await publish(o, cursor, sha, branch, `${stripUserinfo(cursor.repositoryUrl)}#${branch} ${match.reason}`, definition);
    log.info("source change matched the trigger", { branch, revision: sha, previous: from, reason: match.reason });
    published++;
  }
  // Recorded after publishing: a crash in between publishes the same revisions again (same message ids).
  await o.store.recordRefs(cursor, { knownHeads: seen, lastRevision, ...(skipReason === undefined ? {} : { lastSkipReason: skipReason }) });
  return published;
}

/** New tags (or tags moved to another commit) judged by the trigger; the first poll is a baseline. */
async function pollTags(o: PollerOptions, cursor: HeldCursor, trigger: GitTriggerFilters, log: Logger): Promise<number> {
  const tags = await lsRemoteTags(cursor.repositoryUrl, gitOptions(o));
  const seen = [...tags].map(([name, sha]) => `${name} ${sha}`).sort();
  if (cursor.knownTags === null || cursor.knownTags === undefined) {
    await o.store.recordRefs(cursor, { knownTags: seen });
    log.info("tag baseline recorded", { tags: seen.length });
    return 0;
  }
  const known = new Set(cursor.knownTags);
  let published = 0;
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
  if (JSON.stringify(seen) !== JSON.stringify(cursor.knownTags)) await o.store.recordRefs(cursor, { knownTags: seen });
  return published;
}

async function publish(o: PollerOptions, cursor: HeldCursor, revision: string, branch: string, detail: string, definition?: DefinitionFile): Promise<void> {
  const eventId = `${cursor.pipelineName}:${cursor.actionName}:${revision}`;
  const msg = create(SourceChangedSchema, {
    eventId,
    pipelineName: cursor.pipelineName,
    sourceActionName: cursor.actionName,
    revision: { revisionId: revision, branch, created: timestampFromMs(Date.now()) },
    triggerType: "PollForSourceChanges",
    // Credentials in the URL stay with the cursor: the detail is shown to every viewer.
    triggerDetail: detail.slice(0, MAX_DETAIL),
    ...(definition === undefined ? {} : { definition }),
  });
  await o.bus.publish(o.bus.subjects.sourceSubject(cursor.pipelineName), SourceChangedSchema, msg, { msgId: eventId });
}
