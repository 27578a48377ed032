import { stripUserinfo } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { MAX_BACKOFF_MS, backoffMs } from "./backoff.js";
import type { PollResult } from "./cursor-store.js";

/** What a poll round needs of a cursor store (Git cursors, object cursors). */
export interface LeasedCursors<C> {
  claimDue: (now: number, owner: string, leaseMs: number, limit: number) => Promise<C[]>;
  release: (held: C, now: number, result: PollResult) => Promise<void>;
}

/** The settings a poll round shares with every kind of source. */
export interface LeasedRoundOptions {
  logger: Logger;
  intervalMs: number;
  /** Who holds the leases this poller takes: unique per replica. */
  owner: string;
  /** How long a lease lasts: longer than a poll can take, so only a dead holder loses one. */
  leaseMs: number;
  maxBackoffMs?: number;
  /** Cursors claimed per round. @default 100 */
  batchSize?: number;
  now?: () => number;
}

/**
 * One round over the due cursors this replica can lease: each is polled by `poll`, then given
 * back with its next poll time — the interval after a success, the backoff after a failure (its
 * error, credentials stripped, shows in ListSourceStates). Returns how many SourceChanged the
 * polls published.
 */
export async function pollLeasedRound<C extends { pipelineName: string; actionName: string; consecutiveFailures?: number }>(
  o: LeasedRoundOptions,
  store: LeasedCursors<C>,
  kind: string,
  poll: (cursor: C, log: Logger) => Promise<number>,
): Promise<number> {
  const clock = o.now ?? Date.now;
  const now = clock();
  const due = await store.claimDue(now, o.owner, o.leaseMs, o.batchSize ?? 100);
  const counts = await Promise.all(
    due.map(async (cursor) => {
      const log = o.logger.child({ pipeline: cursor.pipelineName, action: cursor.actionName });
      try {
        const published = await poll(cursor, log);
        await store.release(cursor, clock(), { ok: true, nextPollAt: now + o.intervalMs });
        return published;
      } catch (err) {
        const error = stripUserinfo(err instanceof Error ? err.message : String(err));
        const failures = (cursor.consecutiveFailures ?? 0) + 1;
        const waitMs = backoffMs(failures, o.intervalMs, o.maxBackoffMs ?? MAX_BACKOFF_MS);
        log.warn(`${kind} poll failed; backing off`, { error, consecutiveFailures: failures, retryInMs: waitMs });
        await store.release(cursor, clock(), { ok: false, nextPollAt: now + waitMs, error });
        return 0;
      }
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}
