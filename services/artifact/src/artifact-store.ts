import type { Collection, Db } from "mongodb";

/** PENDING: a PUT grant was issued, bytes not confirmed. STORED: committed with its SHA-256 and size. */
export type ArtifactStatus = "PENDING" | "STORED";

/** One artifact as kept in `sluice_artifacts.artifacts`. */
export interface ArtifactDoc {
  /** `<actionExecutionId>/<name>`. */
  _id: string;
  name: string;
  pipelineName: string;
  pipelineExecutionId: string;
  stageName: string;
  actionName: string;
  actionExecutionId: string;
  bucket: string;
  key: string;
  /** Hex SHA-256; empty while PENDING. */
  sha256: string;
  /** Size in bytes; 0 while PENDING. */
  sizeBytes: number;
  status: ArtifactStatus;
  created: Date;
  storedAt?: Date;
}

/** The fields of an output artifact known when its PUT grant is issued. */
export type PendingArtifact = Omit<ArtifactDoc, "sha256" | "sizeBytes" | "status" | "created" | "storedAt">;

/** Artifact metadata persistence. Every write is a single-document operation, so retries are safe. */
export interface ArtifactStore {
  ensureIndexes(): Promise<void>;
  get(id: string): Promise<ArtifactDoc | null>;
  getMany(ids: readonly string[]): Promise<Map<string, ArtifactDoc>>;
  /**
   * Registers an output as PENDING, or leaves an existing record alone: a
   * re-issue for the same id (a redelivered dispatch, a renewed grant) must not
   * reset a STORED artifact or move its creation time. Returns the record.
   */
  upsertPending(artifact: PendingArtifact, now: Date): Promise<ArtifactDoc>;
  /** PENDING → STORED; returns null when the record was not PENDING any more (a concurrent commit won). */
  markStored(id: string, sha256: string, sizeBytes: number, now: Date): Promise<ArtifactDoc | null>;
  listByExecution(pipelineName: string, pipelineExecutionId: string): Promise<ArtifactDoc[]>;
}

/** The store over `db.artifacts`. */
export function createArtifactStore(db: Db): ArtifactStore {
  const artifacts: Collection<ArtifactDoc> = db.collection<ArtifactDoc>("artifacts");
  return {
    async ensureIndexes() {
      // ListArtifacts reads one execution's artifacts in creation order.
      await artifacts.createIndex({ pipelineName: 1, pipelineExecutionId: 1, created: 1 }, { name: "by_execution" });
    },

    get(id) {
      return artifacts.findOne({ _id: id });
    },

    async getMany(ids) {
      const docs = await artifacts.find({ _id: { $in: [...ids] } }).toArray();
      return new Map(docs.map((d) => [d._id, d]));
    },

    async upsertPending(artifact, now) {
      const { _id, ...fields } = artifact;
      // $setOnInsert only: an existing record (PENDING or STORED) keeps every
      // field, so a STORED artifact is never reset by a re-issue.
      const update = { $setOnInsert: { ...fields, sha256: "", sizeBytes: 0, status: "PENDING" as const, created: now } };
      try {
        const doc = await artifacts.findOneAndUpdate({ _id }, update, { upsert: true, returnDocument: "after" });
        if (doc !== null) return doc;
      } catch (err) {
        // Two concurrent upserts of one id: the loser gets a duplicate key
        // error (not every server retries it); the winner's record is the answer.
        if (!isDuplicateKey(err)) throw err;
      }
      const doc = await artifacts.findOne({ _id });
      if (doc === null) throw new Error(`artifact ${_id} vanished during upsert`);
      return doc;
    },

    markStored(id, sha256, sizeBytes, now) {
      return artifacts.findOneAndUpdate(
        { _id: id, status: "PENDING" },
        { $set: { status: "STORED", sha256, sizeBytes, storedAt: now } },
        { returnDocument: "after" },
      );
    },

    listByExecution(pipelineName, pipelineExecutionId) {
      return artifacts.find({ pipelineName, pipelineExecutionId }).sort({ created: 1, _id: 1 }).toArray();
    },
  };
}

function isDuplicateKey(err: unknown): boolean {
  return typeof err === "object" && err !== null && "code" in err && err.code === 11000;
}
