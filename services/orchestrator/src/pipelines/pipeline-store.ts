import { clone, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { DomainError } from "@sluice/domain";
import { PipelineDeclarationSchema } from "@sluice/proto";
import type { PipelineDeclaration } from "@sluice/proto";
import type { Collection, Db } from "mongodb";
import { MongoServerError } from "mongodb";
import { decodeToken, encodeToken } from "../paging.js";
import { createKeyedSerial } from "../serial.js";

/** A stored tag (AWS Tag). */
export interface StoredTag {
  key: string;
  value: string;
}

/** A pipeline as the store returns it. */
export interface StoredPipeline {
  name: string;
  version: number;
  /** The declaration of `version` (its `version` field set). */
  declaration: PipelineDeclaration;
  created: Date;
  updated: Date;
  tags: StoredTag[];
}

/** One page of `list`. */
export interface PipelinePage {
  pipelines: StoredPipeline[];
  /** Empty on the last page. */
  nextToken: string;
}

/** Pipelines and their version history (collections `pipelines` and `pipeline_versions`). */
export interface PipelineStore {
  /** Creates the indexes the store's queries need; called at service start. */
  ensureIndexes(): Promise<void>;
  /** Stores version 1. Throws PipelineNameInUseException when the name is taken. */
  create(declaration: PipelineDeclaration, tags: readonly StoredTag[], now: Date): Promise<StoredPipeline>;
  /**
   * Replaces the declaration and increments the version. Throws
   * PipelineNotFoundException for an unknown name and ConcurrentModificationException
   * when concurrent updates keep winning the race.
   */
  update(declaration: PipelineDeclaration, now: Date): Promise<StoredPipeline>;
  /** Removes the pipeline and its history; false when it did not exist. */
  delete(name: string): Promise<boolean>;
  /**
   * The current declaration, or the given version. Throws PipelineNotFoundException /
   * PipelineVersionNotFoundException.
   */
  get(name: string, version?: number): Promise<StoredPipeline>;
  /** The current declaration, or undefined. */
  find(name: string): Promise<StoredPipeline | undefined>;
  /** Pipelines ordered by name. Throws InvalidNextTokenException for a token it did not issue. */
  list(opts: { nextToken: string; maxResults: number }): Promise<PipelinePage>;
}

/** Document of `pipelines`. */
interface PipelineDoc {
  _id: string;
  /**
   * Protobuf JSON of the declaration, as text: user-chosen map keys
   * (configuration keys, artifactStores regions) may contain `.` or start
   * with `$`, which MongoDB-compatible servers refuse or mangle as field names.
   */
  declaration: string;
  version: number;
  created: Date;
  updated: Date;
  tags: StoredTag[];
}

/** Document of `pipeline_versions`: `_id` = `<name>@<version>`. */
interface PipelineVersionDoc {
  _id: string;
  name: string;
  version: number;
  declaration: string;
  created: Date;
}

const MAX_UPDATE_ATTEMPTS = 5;
const DUPLICATE_KEY = 11000;

/** The store over one database. */
export function createPipelineStore(db: Db): PipelineStore {
  const pipelines: Collection<PipelineDoc> = db.collection<PipelineDoc>("pipelines");
  const versions: Collection<PipelineVersionDoc> = db.collection<PipelineVersionDoc>("pipeline_versions");

  // Updates of one pipeline are serialised in this process (see createKeyedSerial).
  const serial = createKeyedSerial();

  const toStored = (doc: PipelineDoc): StoredPipeline => ({
    name: doc._id,
    version: doc.version,
    declaration: parseDeclaration(doc.declaration),
    created: doc.created,
    updated: doc.updated,
    tags: doc.tags.map((t) => ({ key: t.key, value: t.value })),
  });

  // The history entry is written before the pipeline document points at it, so
  // every current version always has its history entry. A stray entry left by
  // a lost update race is above the current version, never served (see get),
  // and overwritten by the next successful update.
  const writeVersion = async (name: string, version: number, text: string, now: Date): Promise<void> => {
    await versions.replaceOne({ _id: versionId(name, version) }, { name, version, declaration: text, created: now }, { upsert: true });
  };

  return {
    async ensureIndexes() {
      await versions.createIndex({ name: 1, version: 1 });
    },

    async create(declaration, tags, now) {
      const decl = withVersion(declaration, 1);
      const text = toJsonString(PipelineDeclarationSchema, decl);
      const doc: PipelineDoc = { _id: decl.name, declaration: text, version: 1, created: now, updated: now, tags: tags.map((t) => ({ key: t.key, value: t.value })) };
      try {
        await pipelines.insertOne(doc);
      } catch (err) {
        if (isDuplicateKey(err)) {
          throw new DomainError("PipelineNameInUseException", `pipeline "${decl.name}" already exists`, [{ field: "pipeline.name", message: `"${decl.name}" is already in use` }]);
        }
        throw err;
      }
      await writeVersion(decl.name, 1, text, now);
      return toStored(doc);
    },

    update(declaration, now) {
      const name = declaration.name;
      return serial.run(name, async () => {
        for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
          const current = await pipelines.findOne({ _id: name });
          if (current === null) throw pipelineNotFound(name, "pipeline.name");
          const version = current.version + 1;
          const decl = withVersion(declaration, version);
          const text = toJsonString(PipelineDeclarationSchema, decl);
          await writeVersion(name, version, text, now);
          const updated = await pipelines.findOneAndUpdate(
            { _id: name, version: current.version },
            { $set: { declaration: text, version, updated: now } },
            { returnDocument: "after" },
          );
          if (updated !== null) return toStored(updated);
        }
        throw new DomainError("ConcurrentModificationException", `pipeline "${name}" was changed concurrently; retry the update`, [], true);
      });
    },

    async delete(name) {
      const result = await pipelines.deleteOne({ _id: name });
      await versions.deleteMany({ name });
      return result.deletedCount > 0;
    },

    async get(name, version) {
      const current = await pipelines.findOne({ _id: name });
      if (current === null) throw pipelineNotFound(name);
      if (version === undefined || version === current.version) return toStored(current);
      const old = version < current.version ? await versions.findOne({ _id: versionId(name, version) }) : null;
      if (old === null) {
        throw new DomainError("PipelineVersionNotFoundException", `pipeline "${name}" has no version ${version}`, [{ field: "version", message: `${version} does not exist (latest is ${current.version})` }]);
      }
      return { ...toStored(current), version: old.version, declaration: parseDeclaration(old.declaration) };
    },

    async find(name) {
      const doc = await pipelines.findOne({ _id: name });
      return doc === null ? undefined : toStored(doc);
    },

    async list({ nextToken, maxResults }) {
      const after = nextToken === "" ? undefined : decodeToken(nextToken, "nextToken", isNameCursor).n;
      const docs = await pipelines
        .find(after === undefined ? {} : { _id: { $gt: after } })
        .sort({ _id: 1 })
        .limit(maxResults + 1)
        .toArray();
      const page = docs.slice(0, maxResults);
      const last = page.at(-1);
      return {
        pipelines: page.map(toStored),
        nextToken: docs.length > maxResults && last !== undefined ? encodeToken({ n: last._id }) : "",
      };
    },
  };
}

/** PipelineNotFoundException naming the pipeline. */
export function pipelineNotFound(name: string, field = "name"): DomainError {
  return new DomainError("PipelineNotFoundException", `pipeline "${name}" does not exist`, [{ field, message: `pipeline "${name}" does not exist` }]);
}

/** Protobuf JSON text → declaration (unknown fields ignored: older writers, newer readers). */
export function parseDeclaration(text: string): PipelineDeclaration {
  return fromJsonString(PipelineDeclarationSchema, text, { ignoreUnknownFields: true });
}

function withVersion(declaration: PipelineDeclaration, version: number): PipelineDeclaration {
  const decl = clone(PipelineDeclarationSchema, declaration);
  decl.version = version;
  return decl;
}

function versionId(name: string, version: number): string {
  return `${name}@${version}`;
}

function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY;
}

function isNameCursor(value: unknown): value is { n: string } {
  return typeof value === "object" && value !== null && typeof (value as { n?: unknown }).n === "string";
}
