import { performance } from "node:perf_hooks";
import type { Logger, PipelineRuntime } from "@sluice/domain";
import type { KeyedSerial } from "../serial.js";
import type { Archiver } from "./archiver.js";
import type { OutboxEntry } from "./outbox.js";
import type { Revision, RuntimeRepository, StoredRuntime } from "./runtime-repository.js";

/** The document as its next write should store it. */
export interface Compacted {
  state: PipelineRuntime;
  outbox: OutboxEntry[];
  /** Something was dropped. */
  changed: boolean;
}

/**
 * `current` without the outbox entries already settled (published, or failed otherwise) and the
 * executions already archived: what every write stores, so the hot path never spends a write of
 * its own on dropping them.
 */
export function compacted(current: Pick<StoredRuntime, "state" | "outbox">, settled: ReadonlySet<string> | undefined, archived: readonly string[]): Compacted {
  const outbox = settled === undefined || settled.size === 0 ? current.outbox : current.outbox.filter((e) => !settled.has(e.id));
  if (archived.length === 0) return { state: current.state, outbox, changed: outbox.length !== current.outbox.length };
  const executions = { ...current.state.executions };
  for (const id of archived) delete executions[id];
  return { state: { ...current.state, executions, finished: [] }, outbox, changed: true };
}

/** The cached documents the compactor works on (the runtime store's cache). */
export interface CompactorCache {
  get(name: string): StoredRuntime | undefined;
  set(name: string, stored: StoredRuntime): void;
  delete(name: string): void;
}

/** Options of `createCompactor`. */
export interface CompactorOptions {
  repository: RuntimeRepository;
  archiver: Archiver;
  cache: CompactorCache;
  /** Every write of a runtime document goes through it, compactions included. */
  serial: KeyedSerial;
  /** Ids of a pipeline's outbox entries that are settled (published or failed otherwise). */
  settledOf: (name: string) => ReadonlySet<string> | undefined;
  /** Called after each successful write of a document with what it stores now (no state: only the outbox was written). */
  written: (name: string, outbox: readonly OutboxEntry[], state?: PipelineRuntime) => void;
  logger: Logger;
  /** Quiet time before a compaction; `Infinity` never compacts in the background. */
  compactAfterMs: number;
}

/** Drops published entries and archived executions from documents once their pipeline is quiet. */
export interface Compactor {
  /** Notes a write of the document (the quiet time starts again). */
  noteWrite(name: string): void;
  /** Compacts the document once the pipeline has seen no write for `compactAfterMs`. */
  schedule(name: string): void;
  /** Compacts now; the caller runs it in the pipeline's turn of `serial`. */
  compact(name: string): Promise<void>;
  /** Forgets every pending compaction (tests simulate a restart with it). */
  clear(): void;
  /** Runs pending compactions at once and waits for them; nothing is scheduled afterwards. */
  close(): Promise<void>;
}

/** Creates the compactor. */
export function createCompactor(opts: CompactorOptions): Compactor {
  const { repository, archiver, cache, serial, settledOf, written, compactAfterMs } = opts;
  const logger = opts.logger.child({ component: "compactor" });
  /** performance.now() of this process's last write, per pipeline. */
  const lastWriteAt = new Map<string, number>();
  const timers = new Map<string, NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  let closed = false;

  /**
   * Works on the cached copy; without one (a deleted pipeline, or entries the sweeper
   * published) only the stored outbox is trimmed.
   */
  const compact = async (name: string): Promise<void> => {
    const current = cache.get(name);
    if (current !== undefined) {
      await archiver.archive(name, current.state);
      const next = compacted(current, settledOf(name), archiver.archivedIn(name, current.state));
      if (!next.changed) return;
      const revision: Revision | undefined = await repository.write(name, current, { state: next.state, outbox: next.outbox, deleted: current.deleted });
      if (revision === undefined) {
        cache.delete(name);
        return;
      }
      cache.set(name, { ...current, ...revision, state: next.state, outbox: next.outbox });
      written(name, next.outbox, next.state);
      return;
    }
    const settled = settledOf(name);
    if (settled === undefined || settled.size === 0) return;
    const stored = await repository.findOutbox(name);
    if (stored === undefined) return;
    const outbox = stored.outbox.filter((e) => !settled.has(e.id));
    if (outbox.length === stored.outbox.length) return;
    // Conditional like every write: a replica's cached outbox never brings back what this drops.
    if (await repository.writeOutbox(name, stored.rev, outbox)) written(name, outbox);
  };

  const quietFor = (name: string): number => performance.now() - (lastWriteAt.get(name) ?? 0);

  /** Keeps a running compaction for `close` to wait for; a failure is left to the next write. */
  const track = (name: string, work: Promise<void>): void => {
    const run: Promise<void> = work
      .catch((err: unknown) => logger.warn("compacting a runtime document failed; the next write retries", { pipeline: name, error: err instanceof Error ? err.message : String(err) }))
      .finally(() => running.delete(run));
    running.add(run);
  };

  const schedule = (name: string, delayMs = compactAfterMs): void => {
    if (closed || timers.has(name) || !Number.isFinite(delayMs)) return;
    const timer = setTimeout(() => {
      timers.delete(name);
      fire(name);
    }, delayMs);
    timer.unref();
    timers.set(name, timer);
  };

  /** Compacts when the pipeline has been quiet long enough (checked again in turn: an event may have come first). */
  const fire = (name: string): void => {
    if (closed) return;
    if (quietFor(name) < compactAfterMs) {
      schedule(name, compactAfterMs - quietFor(name));
      return;
    }
    track(
      name,
      serial.run(name, async () => {
        if (quietFor(name) < compactAfterMs) schedule(name, compactAfterMs - quietFor(name));
        else await compact(name);
      }),
    );
  };

  return {
    noteWrite(name) {
      lastWriteAt.set(name, performance.now());
    },
    schedule(name) {
      schedule(name);
    },
    compact,
    clear() {
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      lastWriteAt.clear();
    },
    async close() {
      closed = true;
      // Pending compactions run now: what was published must not be published again after a restart.
      for (const [name, timer] of timers) {
        clearTimeout(timer);
        track(name, serial.run(name, () => compact(name)));
      }
      timers.clear();
      await Promise.allSettled([...running]);
    },
  };
}
