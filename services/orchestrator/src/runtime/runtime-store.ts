import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { DUPLICATE_WINDOW_MS } from "@sluice/bus";
import type { Subjects } from "@sluice/bus";
import { DomainError, decide, initialRuntime, isTerminal, nextDeadline } from "@sluice/domain";
import type { Decision, ExecutionEvent, ExecutionRuntime, JobOutcome, Logger, PipelineRuntime, PipelineSpec } from "@sluice/domain";
import { createMetrics } from "@sluice/service-kit";
import type { Collection, Db } from "mongodb";
import { Binary, MongoServerError } from "mongodb";
import { pipelineNotFound } from "../pipelines/pipeline-store.js";
import { createKeyedSerial } from "../serial.js";
import { commandEntry, eventEntry, parseJob } from "./outbox.js";
import type { OutboxEntry } from "./outbox.js";
import type { OutboxPublisher } from "./publisher.js";
import type { Job } from "@sluice/proto";

const metrics = createMetrics("@sluice/orchestrator");

/**
 * The per-pipeline runtime document (collection `runtime`). `rev` guards every
 * change (one conditional write per event); `rev` of a new document starts at
 * the creation time in ms, so a document recreated after a delete never
 * repeats a revision a stale cache still holds.
 *
 * Replicas: MongoDB applies `updateOne({_id, rev}, …)` atomically, so
 * overlapping replicas lose nothing. FerretDB 1.x (the test server when no
 * mongod is installed) does not: its updates are read-modify-write without
 * isolation (measured: 8 concurrent writers, 240 "matched" updates, 41
 * increments). One process is still safe there, because all its writes of a
 * document are serialised; running several orchestrator replicas needs MongoDB.
 */
export interface RuntimeDoc {
  _id: string;
  rev: number;
  /**
   * The `PipelineRuntime` as JSON text, deflated (raw deflate, level 1). Nothing
   * queries inside it, and an opaque value is far cheaper to write than the
   * same data as nested fields: FerretDB's update cost grows with the number of
   * fields of the document (measured on a 40 KB runtime: 43 ms as fields, 5 ms
   * as text), and MongoDB's BSON encoding too. Deflated, because FerretDB's
   * update cost also grows with the bytes written (measured: a 20 KB runtime,
   * 6.5 ms as text; deflated to 2 KB in 0.15 ms, about 2 ms).
   */
  stateZ?: Binary;
  /** The `PipelineRuntime` as plain JSON text: documents written before `stateZ`; read, never written. */
  stateJson?: string;
  /**
   * Messages written with the state and not yet known to be published, each an
   * `OutboxEntry` as JSON text (opaque, for the reason given at `stateZ`). The writer
   * publishes them right after its write; published entries leave the outbox
   * with the next write of the document (or a compaction once the pipeline is
   * quiet); the sweeper re-publishes entries left by a crash.
   */
  outbox: string[];
  /** Earliest due deadline (epoch ms, grace included) of an in-flight action; null when none. */
  nextDeadline: number | null;
  /** The pipeline was deleted; the document only keeps its outbox until it is published. */
  deleted: boolean;
}

/** An archived (finished) execution: collection `executions`, `_id` = execution id. */
export type ArchivedExecution = ExecutionRuntime & { _id: string; pipelineName: string };

/** Options of one `apply`. */
export interface ApplyOptions {
  /** Entries written with the decision (declaration changes). */
  extra?: readonly OutboxEntry[];
  /**
   * Checked on the very state the event is decided on (cached or freshly read, so it costs no
   * extra read): an error it returns refuses the event — thrown, nothing written.
   */
  refuse?: (state: PipelineRuntime) => Error | undefined;
}

/** What one `apply` did. */
export interface ApplyResult {
  /** The decision on the event. */
  decision: Decision;
  /** The state as written (or as it stays when nothing changed). */
  state: PipelineRuntime;
}

/** Loads, decides, writes and publishes: the orchestrator's only path to change runtime state. */
export interface RuntimeStore {
  ensureIndexes(): Promise<void>;
  /**
   * Applies one event to a pipeline's runtime: serialised per pipeline in this
   * process, decided on the cached state, written with one conditional write
   * (re-read and re-decided when another writer won), then published. A
   * version of the pipeline newer than the runtime's (an update interrupted
   * by a crash) is adopted first, as a PipelineUpdated in the same write.
   * Throws PipelineNotFoundException when the pipeline does not exist and
   * ConcurrentModificationException when the write keeps losing.
   */
  apply(pipelineName: string, event: ExecutionEvent, opts?: ApplyOptions): Promise<ApplyResult>;
  /**
   * The pipeline is being deleted: cancels what runs (PipelineDeleted),
   * archives it, marks the document deleted and publishes `extra` with the
   * decision's events. `spec` (the deleted version) is needed only when no
   * runtime document exists yet.
   */
  remove(pipelineName: string, spec: PipelineSpec | undefined, extra: readonly OutboxEntry[]): Promise<void>;
  /** The stored runtime (not the cache), or undefined for none or a deleted pipeline. */
  read(pipelineName: string): Promise<PipelineRuntime | undefined>;
  /** Re-publishes outbox entries at least `minAgeMs` old and drops published ones; returns how many were published. */
  sweepOutbox(minAgeMs: number): Promise<number>;
  /** Sends TimerFired to every pipeline with a due deadline; returns how many. */
  sweepTimers(): Promise<number>;
  /** Drops every cached document and what this process remembers of them (tests simulate a restart with it). */
  clearCache(): void;
  /** Runs pending compactions at once and waits for them; the store must not be used afterwards. */
  close(): Promise<void>;
}

/** Options of `createRuntimeStore`. */
export interface RuntimeStoreOptions {
  db: Db;
  subjects: Subjects;
  publisher: OutboxPublisher;
  logger: Logger;
  /** The spec of a pipeline's current version, or undefined when it does not exist. */
  loadSpec: (pipelineName: string) => Promise<PipelineSpec | undefined>;
  /** @default Date.now */
  clock?: () => number;
  /** @default crypto.randomUUID */
  newId?: () => string;
  /**
   * How long a pipeline must see no write before a compaction drops its
   * published entries and archived executions; `Infinity` leaves that to the
   * next write and the outbox sweeper. @default 250
   */
  compactAfterMs?: number;
  /**
   * How old (by `OutboxEntry.at`) a job entry may be for the sweeper to re-publish it when this
   * process never tried to publish it itself (it restarted since). Older, JetStream may no longer
   * drop the repeat, and the entry may have been published just before a crash that lost the
   * mark: the sweeper fails the action instead of risking a second run. Below the 2-minute
   * duplicate window with a margin for clock drift. @default DUPLICATE_WINDOW_MS - 30 000
   */
  republishWithinMs?: number;
}

/** A cached runtime document: what this process last wrote or read. */
interface Cached {
  rev: number;
  state: PipelineRuntime;
  /** The stored outbox. */
  outbox: OutboxEntry[];
  /** The stored document is marked deleted (the pipeline was recreated since). */
  deleted: boolean;
  /**
   * The pipeline's current spec when it is newer than the stored one: a crash
   * came between a pipeline update and its runtime write. Adopted on the next apply.
   */
  newerSpec?: PipelineSpec;
}

/**
 * What this process knows about a pipeline's document beyond its content:
 * which outbox entries it has published and which terminal executions it has
 * archived. Both are dropped from the document by its next write, so the hot
 * path never spends a write of its own on them.
 */
interface Book {
  /** Ids of outbox entries published (or settled otherwise): drop them from the outbox. */
  readonly settled: Set<string>;
  /**
   * Terminal executions copied into `executions`, by id, with the fingerprint
   * (`archiveKey`) of the copy; they are dropped from the runtime. A retried
   * execution (decide() keeps its own copy while it is retryable) that ends
   * again differs from its copy and is archived again.
   */
  readonly archived: Map<string, string>;
  /** Ids of outbox entries this process has tried to publish (whatever came of it). */
  readonly tried: Set<string>;
  /** performance.now() of this process's last write of the document. */
  lastWriteAt: number;
  /** The pending compaction. */
  timer: NodeJS.Timeout | undefined;
}

const MAX_ATTEMPTS = 8;
const DUPLICATE_KEY = 11000;

/** Creates the runtime store over one database. */
export function createRuntimeStore(opts: RuntimeStoreOptions): RuntimeStore {
  const { db, subjects, publisher, loadSpec } = opts;
  const logger = opts.logger.child({ component: "runtime" });
  const clock = opts.clock ?? Date.now;
  const newId = opts.newId ?? randomUUID;
  const compactAfterMs = opts.compactAfterMs ?? 250;
  const republishWithinMs = opts.republishWithinMs ?? DUPLICATE_WINDOW_MS - 30_000;
  const runtime: Collection<RuntimeDoc> = db.collection<RuntimeDoc>("runtime");
  const archive: Collection<ArchivedExecution> = db.collection<ArchivedExecution>("executions");
  const cache = new Map<string, Cached>();
  const books = new Map<string, Book>();
  const compacting = new Set<Promise<void>>();
  let closed = false;

  // Every write of a runtime document goes through this, compactions included.
  const serial = createKeyedSerial();

  const bookOf = (name: string): Book => {
    let book = books.get(name);
    if (book === undefined) {
      book = { settled: new Set(), archived: new Map(), tried: new Set(), lastWriteAt: 0, timer: undefined };
      books.set(name, book);
    }
    return book;
  };

  /** Forgets settled entries the stored outbox no longer has. */
  const pruneSettled = (name: string, outbox: readonly OutboxEntry[]): void => {
    const book = books.get(name);
    if (book === undefined || (book.settled.size === 0 && book.tried.size === 0)) return;
    const ids = new Set(outbox.map((e) => e.id));
    for (const id of book.settled) if (!ids.has(id)) book.settled.delete(id);
    for (const id of book.tried) if (!ids.has(id)) book.tried.delete(id);
  };

  /** Forgets archived executions the stored runtime no longer has. */
  const pruneArchived = (name: string, state: PipelineRuntime): void => {
    const book = books.get(name);
    if (book === undefined) return;
    for (const id of book.archived.keys()) if (!Object.hasOwn(state.executions, id)) book.archived.delete(id);
  };

  const load = async (name: string): Promise<Cached> => {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const doc = await runtime.findOne({ _id: name });
      const spec = await loadSpec(name);
      if (spec === undefined) throw pipelineNotFound(name, "pipelineName");
      if (doc !== null && !doc.deleted) {
        const state = decodeState(doc);
        const outbox = decodeOutbox(doc);
        pruneSettled(name, outbox);
        pruneArchived(name, state);
        return { rev: doc.rev, state, outbox, deleted: false, ...(spec.version > state.spec.version ? { newerSpec: spec } : {}) };
      }
      if (doc !== null) {
        // Recreated after a delete: start afresh, keeping what the old outbox still has to publish.
        const state = initialRuntime(spec);
        const outbox = decodeOutbox(doc);
        pruneSettled(name, outbox);
        pruneArchived(name, state);
        return { rev: doc.rev, state, outbox, deleted: true };
      }
      const state = initialRuntime(spec);
      const fresh: RuntimeDoc = { _id: name, rev: clock(), stateZ: encodeState(state), outbox: [], nextDeadline: null, deleted: false };
      try {
        await runtime.insertOne(fresh);
        return { rev: fresh.rev, state, outbox: [], deleted: false };
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        // Another writer created it first: read theirs.
      }
    }
    throw concurrentModification(name);
  };

  /** One conditional write of the whole document; false when another writer changed it since `rev`. */
  const write = async (name: string, rev: number, state: PipelineRuntime, outbox: readonly OutboxEntry[], deleted: boolean): Promise<boolean> => {
    const result = await runtime.updateOne(
      { _id: name, rev },
      {
        $set: { stateZ: encodeState(state), rev: rev + 1, outbox: encodeOutbox(outbox), nextDeadline: deleted ? null : (nextDeadline(state) ?? null), deleted },
        $unset: { stateJson: "" },
      },
    );
    if (result.matchedCount !== 1) return false;
    const book = bookOf(name);
    book.lastWriteAt = performance.now();
    pruneSettled(name, outbox);
    pruneArchived(name, state);
    return true;
  };

  /**
   * The document as its next write should store it: without the entries
   * already published and the executions already archived.
   */
  const compacted = (name: string, current: Cached): { state: PipelineRuntime; outbox: OutboxEntry[]; changed: boolean } => {
    const book = books.get(name);
    if (book === undefined) return { state: current.state, outbox: current.outbox, changed: false };
    const outbox = current.outbox.filter((e) => !book.settled.has(e.id));
    const state = current.state;
    const gone = Object.values(state.executions)
      .filter((e) => book.archived.get(e.id) === archiveKey(e))
      .map((e) => e.id);
    if (gone.length === 0) return { state: current.state, outbox, changed: outbox.length !== current.outbox.length };
    const executions = { ...current.state.executions };
    for (const id of gone) delete executions[id];
    return { state: { ...current.state, executions, finished: [] }, outbox, changed: true };
  };

  /**
   * Copies terminal executions not archived yet into `executions` (replace by
   * id: idempotent). They leave the runtime with a later write, so a crash in
   * between leaves a copy in both places, never in neither. A failure is
   * logged and retried after the next write.
   */
  const archiveTerminal = async (name: string, state: PipelineRuntime): Promise<void> => {
    const book = bookOf(name);
    const todo = Object.values(state.executions).filter((e) => isTerminal(e.status) && book.archived.get(e.id) !== archiveKey(e));
    if (todo.length === 0) return;
    try {
      await archive.bulkWrite(
        todo.map((e) => ({ replaceOne: { filter: { _id: e.id }, replacement: { ...e, _id: e.id, pipelineName: name }, upsert: true } })),
        { ordered: false },
      );
      for (const e of todo) book.archived.set(e.id, archiveKey(e));
    } catch (err) {
      logger.warn("archiving finished executions failed; retried after the next write", { pipeline: name, error: errorText(err) });
    }
  };

  const entriesOf = (decision: Pick<Decision, "commands" | "events">, now: number): OutboxEntry[] => [
    ...decision.commands.map((c) => commandEntry(subjects, c, now)),
    ...decision.events.map((e) => eventEntry(subjects, e, now)),
  ];

  const applyLocked = async (name: string, event: ExecutionEvent, options: ApplyOptions): Promise<{ result: ApplyResult; entries: OutboxEntry[] }> => {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const cached = cache.get(name);
      const current = cached ?? (await load(name));
      const now = clock();
      const base = compacted(name, current);
      const ctx = { now, newId };
      // An update the runtime missed (crash after storing the declaration) goes first.
      const adoption = current.newerSpec === undefined ? undefined : decide(base.state, { type: "PipelineUpdated", spec: current.newerSpec }, ctx);
      const before = adoption?.state ?? base.state;
      const refusal = options.refuse?.(before);
      if (refusal !== undefined) throw refusal;
      const decision = decide(before, event, ctx);
      const state = decision.state;
      const entries = [...(adoption === undefined ? [] : entriesOf(adoption, now)), ...entriesOf(decision, now), ...(options.extra ?? [])];
      // A timer with nothing due to fail changes nothing worth a write.
      const noop = event.type === "TimerFired" && decision.commands.length === 0 && decision.events.length === 0;
      if ((state === base.state || noop) && entries.length === 0 && !current.deleted) {
        // Another replica may have written since we cached: an event our copy ignores
        // (a result for a job it never saw dispatched) is decided again on a fresh read.
        if (decision.ignored !== undefined && cached !== undefined) {
          cache.delete(name);
          continue;
        }
        if (decision.ignored !== undefined) logger.debug("event ignored", { pipeline: name, event: event.type, reason: decision.ignored });
        return { result: { decision, state: current.state }, entries: [] };
      }
      const outbox = [...base.outbox, ...entries];
      if (!(await write(name, current.rev, state, outbox, false))) {
        cache.delete(name);
        continue;
      }
      cache.set(name, { rev: current.rev + 1, state, outbox, deleted: false });
      // Counted once, by the write that ended them (`finished` lists only this decision's).
      for (const id of state.finished) {
        const ended = state.executions[id];
        if (ended) metrics.executions.add(1, { status: ended.status, trigger: ended.trigger.triggerType });
      }
      await archiveTerminal(name, state);
      return { result: { decision, state }, entries };
    }
    throw concurrentModification(name);
  };

  /**
   * Drops published entries and archived executions from a quiet document.
   * Works on the cached copy; without one (a deleted pipeline, or entries the
   * sweeper published) only the stored outbox is trimmed.
   */
  const compact = async (name: string): Promise<void> => {
    const current = cache.get(name);
    if (current !== undefined) {
      await archiveTerminal(name, current.state);
      const next = compacted(name, current);
      if (!next.changed) return;
      if (await write(name, current.rev, next.state, next.outbox, current.deleted)) {
        cache.set(name, { ...current, rev: current.rev + 1, state: next.state, outbox: next.outbox });
      } else {
        cache.delete(name);
      }
      return;
    }
    const settled = books.get(name)?.settled;
    if (settled === undefined || settled.size === 0) return;
    const doc = await runtime.findOne({ _id: name }, { projection: { rev: 1, outbox: 1 } });
    if (doc === null) return;
    const stored = decodeOutbox(doc);
    const outbox = stored.filter((e) => !settled.has(e.id));
    if (outbox.length === stored.length) return;
    // Conditional like every write: a replica's cached outbox never brings back what this drops.
    const result = await runtime.updateOne({ _id: name, rev: doc.rev }, { $set: { outbox: encodeOutbox(outbox), rev: doc.rev + 1 } });
    if (result.matchedCount === 1) pruneSettled(name, outbox);
  };

  /** Compacts when the pipeline has been quiet long enough (checked again in turn: an event may have come first). */
  const runCompaction = (name: string): void => {
    if (closed) return;
    const quietFor = (): number => performance.now() - bookOf(name).lastWriteAt;
    if (quietFor() < compactAfterMs) {
      scheduleCompaction(name, compactAfterMs - quietFor());
      return;
    }
    track(
      name,
      serial.run(name, async () => {
        if (quietFor() < compactAfterMs) scheduleCompaction(name, compactAfterMs - quietFor());
        else await compact(name);
      }),
    );
  };

  /** Keeps a running compaction for `close` to wait for; a failure is left to the next write. */
  const track = (name: string, work: Promise<void>): void => {
    const run: Promise<void> = work
      .catch((err: unknown) => logger.warn("compacting a runtime document failed; the next write retries", { pipeline: name, error: errorText(err) }))
      .finally(() => compacting.delete(run));
    compacting.add(run);
  };

  /** Compacts the document once the pipeline has seen no write for `compactAfterMs`. */
  const scheduleCompaction = (name: string, delayMs = compactAfterMs): void => {
    const book = bookOf(name);
    if (closed || book.timer !== undefined || !Number.isFinite(delayMs)) return;
    book.timer = setTimeout(() => {
      book.timer = undefined;
      runCompaction(name);
    }, delayMs);
    book.timer.unref();
  };

  /** Fails the action of a job that will not be dispatched, with `reason` as its error. */
  const failUndispatched = async (name: string, job: Job, reason: string): Promise<void> => {
    const result: JobOutcome = {
      jobId: job.jobId,
      actionExecutionId: job.actionExecutionId,
      attempt: job.attempt,
      pipelineName: job.pipelineName,
      pipelineExecutionId: job.pipelineExecutionId,
      stageName: job.stageName,
      actionName: job.actionName,
      status: "Failed",
      errorDetails: { code: "JobFailed", message: reason },
      outputArtifacts: [],
      outputVariables: {},
      updatedBy: "orchestrator",
    };
    logger.warn("job not dispatched; failing its action", { pipeline: name, jobId: job.jobId, reason });
    try {
      await store.apply(name, { type: "JobCompleted", result });
    } catch (err) {
      logger.warn("failing an undispatchable job failed", { pipeline: name, jobId: job.jobId, error: errorText(err) });
    }
  };

  /**
   * Job entries the sweeper must not re-publish: older than `republishWithinMs` and never tried
   * by this process. Each fails its action (decide() ignores that when a result came first) and
   * is settled, so the next write drops it.
   */
  const settleAmbiguous = async (name: string, entries: readonly OutboxEntry[]): Promise<OutboxEntry[]> => {
    const now = clock();
    const tried = books.get(name)?.tried;
    const ambiguous = entries.filter((e) => e.type === "job" && now - e.at > republishWithinMs && tried?.has(e.id) !== true);
    for (const entry of ambiguous) {
      const ageS = Math.round((now - entry.at) / 1000);
      await failUndispatched(
        name,
        parseJob(entry),
        `the orchestrator restarted and found this job written ${ageS} s ago without a record of its publication; it may have reached a runner, and publishing it again could run it twice, so the action fails instead: retry it`,
      );
      bookOf(name).settled.add(entry.id);
    }
    return entries.filter((e) => !ambiguous.includes(e));
  };

  /**
   * Publishes entries concurrently and fails jobs whose grants were refused;
   * what is settled is remembered, for the next write to drop from the outbox.
   */
  const publishAll = async (name: string, entries: readonly OutboxEntry[]): Promise<number> => {
    if (entries.length === 0) return 0;
    for (const entry of entries) bookOf(name).tried.add(entry.id);
    const outcomes = await Promise.all(entries.map(async (entry) => ({ entry, outcome: await publisher.publish(entry) })));
    let settledCount = 0;
    for (const { entry, outcome } of outcomes) {
      if (outcome.kind === "retry") continue;
      if (outcome.kind === "rejected") await failUndispatched(name, outcome.job, outcome.reason);
      bookOf(name).settled.add(entry.id);
      settledCount++;
    }
    return settledCount;
  };

  const store: RuntimeStore = {
    async ensureIndexes() {
      await runtime.createIndex({ nextDeadline: 1 });
      await archive.createIndex({ pipelineName: 1, startTime: -1 });
    },

    async apply(name, event, options = {}) {
      const { result, entries } = await serial.run(name, () => applyLocked(name, event, options));
      await publishAll(name, entries);
      scheduleCompaction(name);
      return result;
    },

    async remove(name, spec, extra) {
      const entries = await serial.run(name, async () => {
        cache.delete(name);
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
          const doc = await runtime.findOne({ _id: name });
          if (doc === null) {
            if (spec === undefined) return [];
            const fresh: RuntimeDoc = { _id: name, rev: clock(), stateZ: encodeState(initialRuntime(spec)), outbox: encodeOutbox(extra), nextDeadline: null, deleted: true };
            try {
              await runtime.insertOne(fresh);
              return [...extra];
            } catch (err) {
              if (!isDuplicateKey(err)) throw err;
              continue;
            }
          }
          // Already deleted (a repeated delete): announced the first time.
          if (doc.deleted) return [];
          const now = clock();
          const decision = decide(decodeState(doc), { type: "PipelineDeleted" }, { now, newId });
          const all = [...entriesOf(decision, now), ...extra];
          const settled = books.get(name)?.settled;
          const outbox = [...decodeOutbox(doc).filter((e) => settled?.has(e.id) !== true), ...all];
          if (!(await write(name, doc.rev, decision.state, outbox, true))) continue;
          // Before returning: the caller drops the pipeline's history next.
          await archiveTerminal(name, decision.state);
          // Nothing reads a deleted runtime again; a recreated pipeline starts afresh.
          books.get(name)?.archived.clear();
          return all;
        }
        throw concurrentModification(name);
      });
      await publishAll(name, entries);
      scheduleCompaction(name);
    },

    async read(name) {
      const doc = await runtime.findOne({ _id: name }, { projection: { outbox: 0 } });
      return doc === null || doc.deleted ? undefined : decodeState(doc);
    },

    async sweepOutbox(minAgeMs) {
      const cutoff = clock() - minAgeMs;
      const docs = await runtime.find({ "outbox.0": { $exists: true } }, { projection: { outbox: 1 } }).toArray();
      let published = 0;
      for (const doc of docs) {
        const due = decodeOutbox(doc).filter((e) => e.at <= cutoff);
        if (due.length === 0) continue;
        // Entries this process published already only wait for a write to drop them.
        const settled = books.get(doc._id)?.settled;
        const unpublished = await settleAmbiguous(
          doc._id,
          due.filter((e) => settled?.has(e.id) !== true),
        );
        if (unpublished.length > 0) {
          logger.info("re-publishing outbox entries", { pipeline: doc._id, count: unpublished.length });
          published += await publishAll(doc._id, unpublished);
        }
        await serial.run(doc._id, () => compact(doc._id));
      }
      return published;
    },

    async sweepTimers() {
      const docs = await runtime.find({ nextDeadline: { $ne: null, $lte: clock() } }, { projection: { _id: 1 } }).toArray();
      for (const doc of docs) {
        try {
          await store.apply(doc._id, { type: "TimerFired" });
        } catch (err) {
          logger.warn("timer sweep failed for a pipeline", { pipeline: doc._id, error: errorText(err) });
        }
      }
      return docs.length;
    },

    clearCache() {
      cache.clear();
      for (const book of books.values()) clearTimeout(book.timer);
      books.clear();
    },

    async close() {
      closed = true;
      // Pending compactions run now: what was published must not be published again after a restart.
      for (const [name, book] of books) {
        if (book.timer === undefined) continue;
        clearTimeout(book.timer);
        book.timer = undefined;
        track(name, serial.run(name, () => compact(name)));
      }
      await Promise.allSettled([...compacting]);
    },
  };
  return store;
}

/** What identifies one archived copy of an execution: a retry that ends again changes it. */
function archiveKey(exec: ExecutionRuntime): string {
  return `${exec.status}:${exec.lastUpdateTime}:${exec.executionAttempt ?? 1}`;
}

/** Outbox entries as stored. */
function encodeOutbox(entries: readonly OutboxEntry[]): string[] {
  return entries.map((e) => JSON.stringify(e));
}

/** The outbox entries of a document. */
function decodeOutbox(doc: Pick<RuntimeDoc, "outbox">): OutboxEntry[] {
  return doc.outbox.map((text) => JSON.parse(text) as OutboxEntry);
}

/** A runtime as stored: its JSON text, deflated. */
function encodeState(state: PipelineRuntime): Binary {
  return new Binary(deflateRawSync(JSON.stringify(state), { level: 1 }));
}

/** The runtime stored in a document (deflated, or plain JSON text from before). */
function decodeState(doc: Pick<RuntimeDoc, "_id" | "stateZ" | "stateJson">): PipelineRuntime {
  if (doc.stateZ instanceof Binary) {
    const bytes = doc.stateZ.buffer.subarray(0, doc.stateZ.position);
    return JSON.parse(inflateRawSync(bytes).toString("utf8")) as PipelineRuntime;
  }
  if (typeof doc.stateJson !== "string") throw new Error(`runtime document ${doc._id}: stateZ and stateJson are missing`);
  return JSON.parse(doc.stateJson) as PipelineRuntime;
}

function concurrentModification(name: string): DomainError {
  return new DomainError("ConcurrentModificationException", `pipeline "${name}" is being changed concurrently; retry`, [], true);
}

function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
