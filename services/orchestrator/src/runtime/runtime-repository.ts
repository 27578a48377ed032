import { nextDeadline } from "@sluice/domain";
import type { PipelineRuntime } from "@sluice/domain";
import type { Binary, Db } from "mongodb";
import { MongoServerError } from "mongodb";
import { NO_PARTS, PART_FIELDS, SEPARATE_PARTS, decodeOutbox, decodeState, encodeOutbox, encodePart, encodeState, partMark, partMarksOf } from "./runtime-codec.js";
import type { PartMarks } from "./runtime-codec.js";
import type { OutboxEntry } from "./outbox.js";

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
   * The `PipelineRuntime` without its separate parts, as JSON text, deflated (raw deflate,
   * level 1). Nothing queries inside it, and an opaque value is far cheaper to write than the
   * same data as nested fields: FerretDB's update cost grows with the number of fields of the
   * document (measured on a 40 KB runtime: 43 ms as fields, 5 ms as text), and MongoDB's BSON
   * encoding too. Deflated, because FerretDB's update cost also grows with the bytes written
   * (measured: a 20 KB runtime, 6.5 ms as text; deflated to 2 KB in 0.15 ms, about 2 ms).
   */
  stateZ?: Binary;
  /** The `PipelineRuntime` as plain JSON text: documents written before `stateZ`; read, never written. */
  stateJson?: string;
  /**
   * `PipelineRuntime.requestTokens`, deflated JSON like `stateZ`; set by the writes that change
   * it, absent when there are none. Documents written before it keep the tokens inside `stateZ`.
   */
  requestTokensZ?: Binary;
  /** `PipelineRuntime.rollbackTargets`, stored as `requestTokensZ` is. */
  rollbackTargetsZ?: Binary;
  /**
   * Messages written with the state and not yet known to be published, each an opaque binary
   * (see `encodeOutbox`; JSON text in documents written before). The writer publishes them right
   * after its write; published entries leave the outbox with the next write of the document (or
   * a compaction once the pipeline is quiet); the sweeper re-publishes entries left by a crash.
   */
  outbox: Array<Binary | string>;
  /** Earliest due deadline (epoch ms, grace included) of an in-flight action; null when none. */
  nextDeadline: number | null;
  /** The pipeline was deleted; the document only keeps its outbox until it is published. */
  deleted: boolean;
}

/** Which version of a document a write starts from. */
export interface Revision {
  rev: number;
  /** What the document's separate-part fields hold: a write sets only the parts that differ. */
  marks: PartMarks;
}

/** A runtime document, decoded. */
export interface StoredRuntime extends Revision {
  state: PipelineRuntime;
  outbox: OutboxEntry[];
  /** The stored document is marked deleted. */
  deleted: boolean;
}

/** What one write stores. */
export interface RuntimeChange {
  state: PipelineRuntime;
  outbox: readonly OutboxEntry[];
  deleted: boolean;
}

/** The stored outbox of a document, decoded. */
export interface StoredOutbox {
  name: string;
  rev: number;
  outbox: OutboxEntry[];
}

/** Reads and writes runtime documents; every change is the one conditional write `updateOne({_id, rev})`. */
export interface RuntimeRepository {
  ensureIndexes(): Promise<void>;
  /** The stored document, or undefined when there is none. */
  find(name: string): Promise<StoredRuntime | undefined>;
  /** Just the state (no outbox), or undefined for no document or a deleted pipeline. */
  findState(name: string): Promise<PipelineRuntime | undefined>;
  /** Creates a document at revision `rev`; undefined when one exists already (another writer was first). */
  insert(name: string, rev: number, change: RuntimeChange): Promise<StoredRuntime | undefined>;
  /** Stores `change` when the document is still at `from.rev`; the new revision, or undefined when another writer changed it. */
  write(name: string, from: Revision, change: RuntimeChange): Promise<Revision | undefined>;
  /** Stores just a new outbox when the document is still at `rev`; false when another writer changed it. */
  writeOutbox(name: string, rev: number, outbox: readonly OutboxEntry[]): Promise<boolean>;
  /** The outbox of a document, or undefined when there is none. */
  findOutbox(name: string): Promise<StoredOutbox | undefined>;
  /** Every document with an outbox entry. */
  findOutboxes(): Promise<StoredOutbox[]>;
  /** Names of pipelines whose next deadline is at or before `now`. */
  findDue(now: number): Promise<string[]>;
}

const DUPLICATE_KEY = 11000;

/** Creates the repository over the `runtime` collection of `db`. */
export function createRuntimeRepository(db: Db): RuntimeRepository {
  const runtime = db.collection<RuntimeDoc>("runtime");

  /** THE conditional write: every change of a runtime document goes through it. */
  const update = async (name: string, rev: number, set: Partial<RuntimeDoc>, unset: ReadonlyArray<keyof RuntimeDoc>): Promise<boolean> => {
    const result = await runtime.updateOne(
      { _id: name, rev },
      { $set: { ...set, rev: rev + 1 }, ...(unset.length === 0 ? {} : { $unset: Object.fromEntries(unset.map((f) => [f, ""])) }) },
    );
    return result.matchedCount === 1;
  };

  return {
    async ensureIndexes() {
      await runtime.createIndex({ nextDeadline: 1 });
    },

    async find(name) {
      const doc = await runtime.findOne({ _id: name });
      if (doc === null) return undefined;
      const { state, marks } = await decodeState(doc);
      return { rev: doc.rev, marks, state, outbox: decodeOutbox(doc), deleted: doc.deleted };
    },

    async findState(name) {
      const doc = await runtime.findOne({ _id: name }, { projection: { outbox: 0 } });
      return doc === null || doc.deleted ? undefined : (await decodeState(doc)).state;
    },

    async insert(name, rev, change) {
      const doc: RuntimeDoc = { _id: name, rev, stateZ: await encodeState(change.state), outbox: encodeOutbox(change.outbox), nextDeadline: deadlineOf(change), deleted: change.deleted };
      for (const part of SEPARATE_PARTS) if (change.state[part] !== undefined) doc[PART_FIELDS[part]] = await encodePart(change.state, part);
      try {
        await runtime.insertOne(doc);
      } catch (err) {
        if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) return undefined;
        throw err;
      }
      return { rev, marks: partMarksOf(change.state), state: change.state, outbox: [...change.outbox], deleted: change.deleted };
    },

    async write(name, from, change) {
      const set: Partial<RuntimeDoc> = { stateZ: await encodeState(change.state), outbox: encodeOutbox(change.outbox), nextDeadline: deadlineOf(change), deleted: change.deleted };
      const unset: Array<keyof RuntimeDoc> = ["stateJson"];
      const marks = { ...NO_PARTS };
      for (const part of SEPARATE_PARTS) {
        marks[part] = partMark(change.state, part);
        if (marks[part] === from.marks[part]) continue;
        // In the same write as the state that goes with it, so a crash never splits them.
        if (change.state[part] === undefined) unset.push(PART_FIELDS[part]);
        else set[PART_FIELDS[part]] = await encodePart(change.state, part);
      }
      return (await update(name, from.rev, set, unset)) ? { rev: from.rev + 1, marks } : undefined;
    },

    writeOutbox(name, rev, outbox) {
      return update(name, rev, { outbox: encodeOutbox(outbox) }, []);
    },

    async findOutbox(name) {
      const doc = await runtime.findOne({ _id: name }, { projection: { rev: 1, outbox: 1 } });
      return doc === null ? undefined : { name, rev: doc.rev, outbox: decodeOutbox(doc) };
    },

    async findOutboxes() {
      const docs = await runtime.find({ "outbox.0": { $exists: true } }, { projection: { rev: 1, outbox: 1 } }).toArray();
      return docs.map((doc) => ({ name: doc._id, rev: doc.rev, outbox: decodeOutbox(doc) }));
    },

    async findDue(now) {
      const docs = await runtime.find({ nextDeadline: { $ne: null, $lte: now } }, { projection: { _id: 1 } }).toArray();
      return docs.map((doc) => doc._id);
    },
  };
}

function deadlineOf(change: RuntimeChange): number | null {
  return change.deleted ? null : (nextDeadline(change.state) ?? null);
}
