import { randomUUID } from "node:crypto";
import type { Subjects } from "@sluice/bus";
import { DomainError, decide, initialRuntime, isTerminal, nextDeadline } from "@sluice/domain";
import type { Decision, ExecutionEvent, ExecutionRuntime, JobOutcome, Logger, PipelineRuntime, PipelineSpec } from "@sluice/domain";
import type { Collection, Db } from "mongodb";
import { MongoServerError } from "mongodb";
import { pipelineNotFound } from "../pipelines/pipeline-store.js";
import { createKeyedSerial } from "../serial.js";
import { adoptSpec } from "./adopt-spec.js";
import { eventEntry, jobEntry } from "./outbox.js";
import type { OutboxEntry } from "./outbox.js";
import type { OutboxPublisher } from "./publisher.js";

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
  state: PipelineRuntime;
  outbox: OutboxEntry[];
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
  /** The pipeline's new current version: adopted before the event is decided. */
  spec?: PipelineSpec;
}

/** What one `apply` did. */
export interface ApplyResult {
  /** The decision on the event (absent when no event was given). */
  decision?: Decision;
  /** The state as written (or as it stays when nothing changed). */
  state: PipelineRuntime;
}

/** Loads, decides, writes and publishes: the orchestrator's only path to change runtime state. */
export interface RuntimeStore {
  ensureIndexes(): Promise<void>;
  /**
   * Applies one event (or, without one, only `opts.spec`/`opts.extra`) to a
   * pipeline's runtime: serialised per pipeline in this process, decided on
   * the cached state, written with one conditional write (re-read and
   * re-decided when another writer won), archived, then published. Throws
   * PipelineNotFoundException when the pipeline does not exist and
   * ConcurrentModificationException when the write keeps losing.
   */
  apply(pipelineName: string, event: ExecutionEvent | undefined, opts?: ApplyOptions): Promise<ApplyResult>;
  /**
   * The pipeline is being deleted: cancels what runs (PipelineDeleted),
   * archives it, marks the document deleted and publishes `extra` with the
   * decision's events. `spec` (the deleted version) is needed only when no
   * runtime document exists yet.
   */
  remove(pipelineName: string, spec: PipelineSpec | undefined, extra: readonly OutboxEntry[]): Promise<void>;
  /** The stored runtime (not the cache), or undefined for none or a deleted pipeline. */
  read(pipelineName: string): Promise<PipelineRuntime | undefined>;
  /** Re-publishes outbox entries at least `minAgeMs` old; returns how many were published. */
  sweepOutbox(minAgeMs: number): Promise<number>;
  /** Sends TimerFired to every pipeline with a due deadline; returns how many. */
  sweepTimers(): Promise<number>;
  /** Drops every cached document (tests simulate a restart with it). */
  clearCache(): void;
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
}

/** A cached runtime: what this process last wrote or read. */
interface Cached {
  rev: number;
  state: PipelineRuntime;
  /** The stored document is marked deleted (the pipeline was recreated since). */
  deleted: boolean;
  /**
   * The pipeline's current spec when it is newer than the stored one: a crash
   * came between a pipeline update and its runtime write. Adopted on the next apply.
   */
  newerSpec?: PipelineSpec;
}

const MAX_ATTEMPTS = 8;
const DUPLICATE_KEY = 11000;

/** Creates the runtime store over one database. */
export function createRuntimeStore(opts: RuntimeStoreOptions): RuntimeStore {
  const { db, subjects, publisher, loadSpec } = opts;
  const logger = opts.logger.child({ component: "runtime" });
  const clock = opts.clock ?? Date.now;
  const newId = opts.newId ?? randomUUID;
  const runtime: Collection<RuntimeDoc> = db.collection<RuntimeDoc>("runtime");
  const archive: Collection<ArchivedExecution> = db.collection<ArchivedExecution>("executions");
  const cache = new Map<string, Cached>();

  // Every write of a runtime document goes through this, including the outbox pulls.
  const serial = createKeyedSerial();

  const load = async (name: string): Promise<Cached> => {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const doc = await runtime.findOne({ _id: name }, { projection: { outbox: 0 } });
      const spec = await loadSpec(name);
      if (spec === undefined) throw pipelineNotFound(name, "pipelineName");
      if (doc !== null && !doc.deleted) {
        return { rev: doc.rev, state: doc.state, deleted: false, ...(spec.version > doc.state.spec.version ? { newerSpec: spec } : {}) };
      }
      if (doc !== null) return { rev: doc.rev, state: initialRuntime(spec), deleted: true };
      const fresh: RuntimeDoc = { _id: name, rev: clock(), state: initialRuntime(spec), outbox: [], nextDeadline: null, deleted: false };
      try {
        await runtime.insertOne(fresh);
        return { rev: fresh.rev, state: fresh.state, deleted: false };
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        // Another writer created it first: read theirs.
      }
    }
    throw concurrentModification(name);
  };

  /** One conditional write; false when another writer changed the document since `rev`. */
  const write = async (name: string, rev: number, state: PipelineRuntime, entries: readonly OutboxEntry[], deleted: boolean): Promise<boolean> => {
    const result = await runtime.updateOne(
      { _id: name, rev },
      {
        $set: { state, rev: rev + 1, nextDeadline: deleted ? null : (nextDeadline(state) ?? null), deleted },
        ...(entries.length > 0 ? { $push: { outbox: { $each: [...entries] } } } : {}),
      },
    );
    return result.matchedCount === 1;
  };

  /**
   * Copies terminal executions into `executions`, then removes them from the
   * runtime (insert first: a crash in between leaves a copy in both, never in
   * neither; the replace makes the copy idempotent).
   */
  const archiveFinished = async (name: string, current: Cached): Promise<Cached> => {
    const finished = Object.values(current.state.executions).filter((e) => isTerminal(e.status));
    if (finished.length === 0) return current;
    await archive.bulkWrite(
      finished.map((e) => ({ replaceOne: { filter: { _id: e.id }, replacement: { ...e, _id: e.id, pipelineName: name }, upsert: true } })),
      { ordered: false },
    );
    const executions = Object.fromEntries(Object.entries(current.state.executions).filter(([, e]) => !isTerminal(e.status)));
    const state: PipelineRuntime = { ...current.state, executions, finished: [] };
    if (await write(name, current.rev, state, [], current.deleted)) return { rev: current.rev + 1, state, deleted: current.deleted };
    // Lost to another writer: it archives (and removes) them on its next write, or we do on ours.
    cache.delete(name);
    return current;
  };

  const entriesOf = (decision: Pick<Decision, "commands" | "events">, now: number): OutboxEntry[] => [
    ...decision.commands.map((c) => jobEntry(subjects, c.job, now)),
    ...decision.events.map((e) => eventEntry(subjects, e, now)),
  ];

  const applyLocked = async (name: string, event: ExecutionEvent | undefined, options: ApplyOptions): Promise<{ result: ApplyResult; entries: OutboxEntry[] }> => {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const cached = cache.get(name);
      const current = cached ?? (await load(name));
      const now = clock();
      let base = current.state;
      const adoptedEvents: Decision["events"] = [];
      const target = options.spec ?? current.newerSpec;
      // Only forward: an update that lost a race to a newer one must not downgrade.
      if (target !== undefined && target.version > base.spec.version) {
        const adoption = adoptSpec(base, target, now);
        base = adoption.state;
        adoptedEvents.push(...adoption.events);
      }
      const decision = event === undefined ? undefined : decide(base, event, { now, newId });
      const state = decision?.state ?? base;
      const entries = [
        ...entriesOf({ commands: [], events: adoptedEvents }, now),
        ...(decision === undefined ? [] : entriesOf(decision, now)),
        ...(options.extra ?? []),
      ];
      // A timer with nothing due to fail changes nothing worth a write.
      const noop = event?.type === "TimerFired" && decision !== undefined && decision.commands.length === 0 && decision.events.length === 0;
      if ((state === current.state || noop) && entries.length === 0 && !current.deleted) {
        // Another replica may have written since we cached: an event our copy ignores
        // (a result for a job it never saw dispatched) is decided again on a fresh read.
        if (decision?.ignored !== undefined && cached !== undefined) {
          cache.delete(name);
          continue;
        }
        if (decision?.ignored !== undefined) logger.debug("event ignored", { pipeline: name, event: event?.type, reason: decision.ignored });
        return { result: { ...(decision === undefined ? {} : { decision }), state: current.state }, entries: [] };
      }
      if (!(await write(name, current.rev, state, entries, false))) {
        cache.delete(name);
        continue;
      }
      let written: Cached = { rev: current.rev + 1, state, deleted: false };
      cache.set(name, written);
      written = await archiveFinished(name, written);
      if (cache.has(name)) cache.set(name, written);
      return { result: { ...(decision === undefined ? {} : { decision }), state }, entries };
    }
    throw concurrentModification(name);
  };

  /** Publishes entries concurrently, fails jobs whose grants were refused, then pulls what is done. */
  const publishAll = async (name: string, entries: readonly OutboxEntry[]): Promise<number> => {
    if (entries.length === 0) return 0;
    const outcomes = await Promise.all(entries.map(async (entry) => ({ entry, outcome: await publisher.publish(entry) })));
    const done: OutboxEntry[] = [];
    for (const { entry, outcome } of outcomes) {
      if (outcome.kind === "published") {
        done.push(entry);
      } else if (outcome.kind === "rejected") {
        const job = outcome.job;
        const result: JobOutcome = {
          jobId: job.jobId,
          actionExecutionId: job.actionExecutionId,
          attempt: job.attempt,
          pipelineName: job.pipelineName,
          pipelineExecutionId: job.pipelineExecutionId,
          stageName: job.stageName,
          actionName: job.actionName,
          status: "Failed",
          errorDetails: { code: "JobFailed", message: outcome.reason },
          outputArtifacts: [],
          outputVariables: {},
          updatedBy: "orchestrator",
        };
        logger.warn("job not dispatched; failing its action", { pipeline: name, jobId: job.jobId, reason: outcome.reason });
        try {
          await store.apply(name, { type: "JobCompleted", result });
        } catch (err) {
          logger.warn("failing an undispatchable job failed", { pipeline: name, jobId: job.jobId, error: errorText(err) });
        }
        done.push(entry);
      }
    }
    // $pullAll removes exactly these entries (they are the objects written or read back,
    // so they compare equal); FerretDB ignores $pull with a condition.
    if (done.length > 0) {
      try {
        await serial.run(name, () => runtime.updateOne({ _id: name }, { $pullAll: { outbox: done } }));
      } catch (err) {
        // Published already; the sweeper re-publishes (deduplicated by id) and pulls them later.
        logger.warn("removing published outbox entries failed", { pipeline: name, error: errorText(err) });
      }
    }
    return done.length;
  };

  const store: RuntimeStore = {
    async ensureIndexes() {
      await runtime.createIndex({ nextDeadline: 1 });
      await archive.createIndex({ pipelineName: 1, startTime: -1 });
    },

    async apply(name, event, options = {}) {
      const { result, entries } = await serial.run(name, () => applyLocked(name, event, options));
      await publishAll(name, entries);
      return result;
    },

    async remove(name, spec, extra) {
      const entries = await serial.run(name, async () => {
        cache.delete(name);
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
          const doc = await runtime.findOne({ _id: name }, { projection: { outbox: 0 } });
          if (doc === null) {
            if (spec === undefined) return [];
            const fresh: RuntimeDoc = { _id: name, rev: clock(), state: initialRuntime(spec), outbox: [...extra], nextDeadline: null, deleted: true };
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
          const decision = decide(doc.state, { type: "PipelineDeleted" }, { now, newId });
          const state = decision.state;
          const all = [...entriesOf(decision, now), ...extra];
          if (!(await write(name, doc.rev, state, all, true))) continue;
          await archiveFinished(name, { rev: doc.rev + 1, state, deleted: true });
          cache.delete(name);
          return all;
        }
        throw concurrentModification(name);
      });
      await publishAll(name, entries);
    },

    async read(name) {
      const doc = await runtime.findOne({ _id: name }, { projection: { outbox: 0 } });
      return doc === null || doc.deleted ? undefined : doc.state;
    },

    async sweepOutbox(minAgeMs) {
      const cutoff = clock() - minAgeMs;
      const docs = await runtime.find({ "outbox.0": { $exists: true } }, { projection: { outbox: 1 } }).toArray();
      let published = 0;
      for (const doc of docs) {
        const due = doc.outbox.filter((e) => e.at <= cutoff);
        if (due.length === 0) continue;
        logger.info("re-publishing outbox entries", { pipeline: doc._id, count: due.length });
        published += await publishAll(doc._id, due);
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
    },
  };
  return store;
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
