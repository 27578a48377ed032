import { randomUUID } from "node:crypto";
import { DUPLICATE_WINDOW_MS } from "@sluice/bus";
import type { Subjects } from "@sluice/bus";
import { DomainError, decide, initialRuntime, queuedJobsOf } from "@sluice/domain";
import type { Decision, ExecutionEvent, Logger, PipelineRuntime, PipelineSpec } from "@sluice/domain";
import { createMetrics } from "@sluice/service-kit";
import type { QueuedJobs } from "@sluice/service-kit";
import type { Db } from "mongodb";
import { pipelineNotFound } from "../pipelines/pipeline-store.js";
import { createKeyedSerial } from "../serial.js";
import { createArchiver } from "./archiver.js";
import { compacted, createCompactor } from "./compactor.js";
import { createOutboxRelay } from "./outbox-relay.js";
import type { UndispatchedSink } from "./outbox-relay.js";
import { commandEntry, eventEntry } from "./outbox.js";
import type { OutboxEntry } from "./outbox.js";
import type { OutboxPublisher } from "./publisher.js";
import { createRuntimeRepository } from "./runtime-repository.js";
import type { StoredRuntime } from "./runtime-repository.js";

export type { ArchivedExecution } from "./archiver.js";
export type { RuntimeDoc } from "./runtime-repository.js";

const metrics = createMetrics("@sluice/orchestrator");

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
  /**
   * Jobs dispatched to a runner pool that no runner reported started, by pool, in the runtimes
   * this process holds (for the `sluice.jobs.queued` gauges). With several replicas each counts
   * the pipelines it applied events to: take the maximum over replicas, not the sum.
   */
  queuedJobs(): QueuedJobs[];
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
  /**
   * Where the failed result of a job that will not be dispatched (grants refused, or an
   * ambiguous entry the sweeper must not re-publish) goes: the path of runners' results.
   */
  undispatched: UndispatchedSink;
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
interface Cached extends StoredRuntime {
  /**
   * The pipeline's current spec when it is newer than the stored one: a crash
   * came between a pipeline update and its runtime write. Adopted on the next apply.
   */
  newerSpec?: PipelineSpec;
}

const MAX_ATTEMPTS = 8;

/** Creates the runtime store over one database. */
export function createRuntimeStore(opts: RuntimeStoreOptions): RuntimeStore {
  const { db, subjects, publisher, loadSpec } = opts;
  const logger = opts.logger.child({ component: "runtime" });
  const clock = opts.clock ?? Date.now;
  const newId = opts.newId ?? randomUUID;
  const repository = createRuntimeRepository(db);
  const archiver = createArchiver(db, logger);
  // Every write of a runtime document goes through this, compactions included.
  const serial = createKeyedSerial();
  const relay = createOutboxRelay({
    publisher,
    repository,
    undispatched: opts.undispatched,
    logger,
    clock,
    republishWithinMs: opts.republishWithinMs ?? DUPLICATE_WINDOW_MS - 30_000,
    turn: (name, work) => serial.run(name, work),
  });
  const cache = new Map<string, Cached>();
  /** Pools that had queued jobs once (see queuedJobs). */
  const queuedPools = new Set<string>();

  /** What every successful write is followed by: the books forget what the document dropped. */
  const written = (name: string, outbox: readonly OutboxEntry[], state?: PipelineRuntime): void => {
    relay.prune(name, outbox);
    if (state === undefined) return;
    compactor.noteWrite(name);
    archiver.prune(name, state);
  };

  const compactor = createCompactor({
    repository,
    archiver,
    cache,
    serial,
    settledOf: (name) => relay.settledOf(name),
    written,
    logger,
    compactAfterMs: opts.compactAfterMs ?? 250,
  });

  const load = async (name: string): Promise<Cached> => {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const stored = await repository.find(name);
      const spec = await loadSpec(name);
      if (spec === undefined) throw pipelineNotFound(name, "pipelineName");
      if (stored !== undefined && !stored.deleted) {
        relay.prune(name, stored.outbox);
        archiver.prune(name, stored.state);
        return { ...stored, ...(spec.version > stored.state.spec.version ? { newerSpec: spec } : {}) };
      }
      if (stored !== undefined) {
        // Recreated after a delete: start afresh, keeping what the old outbox still has to publish.
        const state = initialRuntime(spec);
        relay.prune(name, stored.outbox);
        archiver.prune(name, state);
        return { ...stored, state };
      }
      const fresh = await repository.insert(name, clock(), { state: initialRuntime(spec), outbox: [], deleted: false });
      if (fresh !== undefined) return fresh;
      // Another writer created it first: read theirs.
    }
    throw concurrentModification(name);
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
      const base = compacted(current, relay.settledOf(name), archiver.archivedIn(name, current.state));
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
      const revision = await repository.write(name, current, { state, outbox, deleted: false });
      if (revision === undefined) {
        cache.delete(name);
        continue;
      }
      written(name, outbox, state);
      cache.set(name, { ...revision, state, outbox, deleted: false });
      // Counted once, by the write that ended them (`finished` lists only this decision's).
      for (const id of state.finished) {
        const ended = state.executions[id];
        if (ended) metrics.executions.add(1, { status: ended.status, trigger: ended.trigger.triggerType });
      }
      await archiver.archive(name, state);
      return { result: { decision, state }, entries };
    }
    throw concurrentModification(name);
  };

  const removeLocked = async (name: string, spec: PipelineSpec | undefined, extra: readonly OutboxEntry[]): Promise<OutboxEntry[]> => {
    cache.delete(name);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const stored = await repository.find(name);
      if (stored === undefined) {
        if (spec === undefined) return [];
        const fresh = await repository.insert(name, clock(), { state: initialRuntime(spec), outbox: extra, deleted: true });
        if (fresh === undefined) continue;
        return [...extra];
      }
      // Already deleted (a repeated delete): announced the first time.
      if (stored.deleted) return [];
      const now = clock();
      const decision = decide(stored.state, { type: "PipelineDeleted" }, { now, newId });
      const all = [...entriesOf(decision, now), ...extra];
      const settled = relay.settledOf(name);
      const outbox = [...stored.outbox.filter((e) => settled?.has(e.id) !== true), ...all];
      if ((await repository.write(name, stored, { state: decision.state, outbox, deleted: true })) === undefined) continue;
      written(name, outbox, decision.state);
      // Before returning: the caller drops the pipeline's history next.
      await archiver.archive(name, decision.state);
      // Nothing reads a deleted runtime again; a recreated pipeline starts afresh.
      archiver.forget(name);
      return all;
    }
    throw concurrentModification(name);
  };

  const store: RuntimeStore = {
    async ensureIndexes() {
      await repository.ensureIndexes();
      await archiver.ensureIndexes();
    },

    async apply(name, event, options = {}) {
      const { result, entries } = await serial.run(name, () => applyLocked(name, event, options));
      await relay.publish(name, entries);
      compactor.schedule(name);
      return result;
    },

    async remove(name, spec, extra) {
      const entries = await serial.run(name, () => removeLocked(name, spec, extra));
      await relay.publish(name, entries);
      compactor.schedule(name);
    },

    read(name) {
      return repository.findState(name);
    },

    sweepOutbox(minAgeMs) {
      return relay.sweep(minAgeMs, (name) => serial.run(name, () => compactor.compact(name)));
    },

    async sweepTimers() {
      const due = await repository.findDue(clock());
      for (const name of due) {
        try {
          await store.apply(name, { type: "TimerFired" });
        } catch (err) {
          logger.warn("timer sweep failed for a pipeline", { pipeline: name, error: err instanceof Error ? err.message : String(err) });
        }
      }
      return due.length;
    },

    queuedJobs() {
      const now = clock();
      const pools = new Map<string, { count: number; oldest: number }>();
      // A pool whose queue emptied reports 0 rather than vanishing (a gauge keeps its last value).
      for (const pool of queuedPools) pools.set(pool, { count: 0, oldest: now });
      for (const { state, deleted } of cache.values()) {
        if (deleted) continue;
        for (const job of queuedJobsOf(state)) {
          const pool = pools.get(job.pool) ?? { count: 0, oldest: job.since };
          pools.set(job.pool, { count: pool.count + 1, oldest: Math.min(pool.oldest, job.since) });
        }
      }
      for (const pool of pools.keys()) queuedPools.add(pool);
      return [...pools].map(([pool, { count, oldest }]) => ({ pool, count, oldestAgeSeconds: Math.max(0, Math.floor((now - oldest) / 1000)) }));
    },

    clearCache() {
      cache.clear();
      compactor.clear();
      relay.clear();
      archiver.clear();
    },

    close() {
      return compactor.close();
    },
  };
  return store;
}

function concurrentModification(name: string): DomainError {
  return new DomainError("ConcurrentModificationException", `pipeline "${name}" is being changed concurrently; retry`, [], true);
}
