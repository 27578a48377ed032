import type { JobOutcome, Logger } from "@sluice/domain";
import type { Job } from "@sluice/proto";
import { failedOutcome } from "./failed-outcome.js";
import { parseJob } from "./outbox.js";
import type { OutboxEntry } from "./outbox.js";
import type { OutboxPublisher } from "./publisher.js";
import type { RuntimeRepository } from "./runtime-repository.js";

/**
 * Where the failed result of a job that will not be dispatched goes: the path results from
 * runners take (the orchestrator wires it to the same apply), so it is decided like any result.
 */
export type UndispatchedSink = (pipelineName: string, result: JobOutcome) => Promise<unknown>;

/** Publishes outbox entries and remembers which ones are settled, for the next write to drop them. */
export interface OutboxRelay {
  /**
   * Publishes entries concurrently. A job whose grants were refused for good is settled and its
   * failed result handed to the sink.
   */
  publish(name: string, entries: readonly OutboxEntry[]): Promise<number>;
  /**
   * Re-publishes the outbox entries of every document that are at least `minAgeMs` old and not
   * settled yet, then calls `swept` for the document; returns how many were published. Job entries
   * it must not re-publish (see `republishWithinMs`) are failed instead.
   */
  sweep(minAgeMs: number, swept: (name: string) => Promise<void>): Promise<number>;
  /** Ids of a pipeline's entries that are settled (published, or failed otherwise). */
  settledOf(name: string): ReadonlySet<string> | undefined;
  /** Forgets entries the stored outbox no longer has (it was written without them). */
  prune(name: string, outbox: readonly OutboxEntry[]): void;
  /** Forgets everything (tests simulate a restart with it). */
  clear(): void;
}

/** Options of `createOutboxRelay`. */
export interface OutboxRelayOptions {
  publisher: OutboxPublisher;
  repository: RuntimeRepository;
  undispatched: UndispatchedSink;
  logger: Logger;
  clock: () => number;
  /**
   * How old (by `OutboxEntry.at`) a job entry may be for the sweeper to re-publish it when this
   * process never tried to publish it itself (see RuntimeStoreOptions.republishWithinMs).
   */
  republishWithinMs: number;
  /**
   * Runs `work` in the pipeline's turn of the runtime store's serial (every write of its document
   * goes through it): the sweeper reads an outbox and the books in one turn, so a write that drops
   * an entry and forgets it cannot fall between the two.
   */
  turn: <T>(name: string, work: () => Promise<T>) => Promise<T>;
}

/** What this process knows of a pipeline's outbox beyond its content. */
interface Book {
  /** Ids of entries published (or settled otherwise): drop them from the outbox. */
  readonly settled: Set<string>;
  /** Ids of entries this process has tried to publish (whatever came of it). */
  readonly tried: Set<string>;
}

/** Creates the relay. */
export function createOutboxRelay(opts: OutboxRelayOptions): OutboxRelay {
  const { publisher, repository, undispatched, clock, republishWithinMs, turn } = opts;
  const logger = opts.logger.child({ component: "outbox-relay" });
  const books = new Map<string, Book>();

  const bookOf = (name: string): Book => {
    let book = books.get(name);
    if (book === undefined) {
      book = { settled: new Set(), tried: new Set() };
      books.set(name, book);
    }
    return book;
  };

  /** Hands the failed result of a job that will not be dispatched to the sink; a failure there is logged. */
  const fail = async (name: string, job: Job, reason: string): Promise<void> => {
    logger.warn("job not dispatched; failing its action", { pipeline: name, jobId: job.jobId, reason });
    try {
      await undispatched(name, failedOutcome(job, reason));
    } catch (err) {
      logger.warn("failing an undispatchable job failed", { pipeline: name, jobId: job.jobId, error: err instanceof Error ? err.message : String(err) });
    }
  };

  const publish = async (name: string, entries: readonly OutboxEntry[]): Promise<number> => {
    if (entries.length === 0) return 0;
    const book = bookOf(name);
    for (const entry of entries) book.tried.add(entry.id);
    const outcomes = await Promise.all(entries.map(async (entry) => ({ entry, outcome: await publisher.publish(entry) })));
    let settledCount = 0;
    for (const { entry, outcome } of outcomes) {
      if (outcome.kind === "retry") continue;
      if (outcome.kind === "rejected") await fail(name, outcome.job, outcome.reason);
      book.settled.add(entry.id);
      settledCount++;
    }
    return settledCount;
  };

  /**
   * The pipeline's due entries not settled yet, split into those to publish again and the job
   * entries the sweeper must not re-publish: older than `republishWithinMs` and never tried by this
   * process. Those are settled here (the next write drops them); the caller fails their actions
   * (decide() ignores that when a result came first). Read in the pipeline's turn: the listing the
   * sweep started from may predate a write that dropped an entry and forgot it, and an entry
   * forgotten but read back would look never tried.
   */
  const dueOf = (name: string, minAgeMs: number): Promise<{ unpublished: OutboxEntry[]; ambiguous: OutboxEntry[] }> =>
    turn(name, async () => {
      const stored = await repository.findOutbox(name);
      const now = clock();
      const book = books.get(name);
      const due = (stored?.outbox ?? []).filter((e) => e.at <= now - minAgeMs && book?.settled.has(e.id) !== true);
      const ambiguous = due.filter((e) => e.type === "job" && now - e.at > republishWithinMs && book?.tried.has(e.id) !== true);
      for (const entry of ambiguous) bookOf(name).settled.add(entry.id);
      return { unpublished: due.filter((e) => !ambiguous.includes(e)), ambiguous };
    });

  return {
    publish,

    async sweep(minAgeMs, swept) {
      const cutoff = clock() - minAgeMs;
      let published = 0;
      for (const { name, outbox } of await repository.findOutboxes()) {
        // Entries this process published already only wait for a write to drop them.
        const settled = books.get(name)?.settled;
        if (!outbox.some((e) => e.at <= cutoff && settled?.has(e.id) !== true)) continue;
        const { unpublished, ambiguous } = await dueOf(name, minAgeMs);
        for (const entry of ambiguous) {
          const ageS = Math.round((clock() - entry.at) / 1000);
          await fail(
            name,
            parseJob(entry),
            `the orchestrator restarted and found this job written ${ageS} s ago without a record of its publication; it may have reached a runner, and publishing it again could run it twice, so the action fails instead: retry it`,
          );
        }
        if (unpublished.length > 0) {
          logger.info("re-publishing outbox entries", { pipeline: name, count: unpublished.length });
          published += await publish(name, unpublished);
        }
        await swept(name);
      }
      return published;
    },

    settledOf(name) {
      return books.get(name)?.settled;
    },

    prune(name, outbox) {
      const book = books.get(name);
      if (book === undefined || (book.settled.size === 0 && book.tried.size === 0)) return;
      const ids = new Set(outbox.map((e) => e.id));
      for (const id of book.settled) if (!ids.has(id)) book.settled.delete(id);
      for (const id of book.tried) if (!ids.has(id)) book.tried.delete(id);
    },

    clear() {
      books.clear();
    },
  };
}
