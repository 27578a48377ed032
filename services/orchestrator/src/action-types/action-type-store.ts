import { DomainError, MAX_CUSTOM_ACTION_TYPES, customActionTypeKey, customActionTypeSpec } from "@sluice/domain";
import type { CustomActionType, ProviderSpec } from "@sluice/domain";
import type { ActionDeclaration } from "@sluice/proto";
import { MongoServerError } from "mongodb";
import type { Db } from "mongodb";
import type { StoredTag } from "../pipelines/pipeline-store.js";

/** One custom action type in the `action_types` collection; deleted ones stay (AWS revives them only identical). */
export interface StoredActionType {
  /** `Custom/<Category>/<Provider>/<Version>`. */
  _id: string;
  definition: CustomActionType;
  tags: StoredTag[];
  deleted: boolean;
  created: Date;
  updated: Date;
}

/** What CreateCustomActionType did. */
export type CreateOutcome = "created" | "existing" | "revived";

type Id = { readonly category: string; readonly provider: string; readonly version: string };

/**
 * The declared custom action types, read from MongoDB into memory so validation, masking and job
 * routing can ask synchronously. Every write through this store refreshes it, and readers that
 * need another replica's writes call `refresh` (or `refreshIfOlder`) first.
 */
export interface ActionTypeCatalog {
  ensureIndexes(): Promise<void>;
  /** Reads the collection again. */
  refresh(): Promise<void>;
  /** Refreshes when the last read is older than `ms`. */
  refreshIfOlder(ms: number): Promise<void>;
  /** The validation spec of a declared, not deleted type. */
  readonly lookup: (id: Id) => ProviderSpec | undefined;
  /** A type as stored (deleted or not). */
  find(id: Id): StoredActionType | undefined;
  /** Types not deleted, ordered by key. */
  listed(): StoredActionType[];
  /** The secret configuration keys of a type, deleted or not: what stays masked in its pipelines. */
  readonly secretKeys: (id: Id) => readonly string[];
  /** The secret values in a declaration's custom actions' configuration. */
  secretValues(actions: readonly ActionDeclaration[]): string[];
  create(definition: CustomActionType, tags: readonly StoredTag[], now: Date): Promise<{ stored: StoredActionType; outcome: CreateOutcome }>;
  /** Replaces a declared type's definition. Throws ActionTypeNotFoundException. */
  update(definition: CustomActionType, now: Date): Promise<StoredActionType>;
  /** Marks a type deleted; false when it was unknown or already deleted. */
  delete(id: Id, now: Date): Promise<boolean>;
}

/** The parts CreateCustomActionType sets: two creates agree when these agree. */
function createShape(d: CustomActionType): string {
  return JSON.stringify([d.category, d.provider, d.version, d.settings, d.configurationProperties, d.inputArtifactDetails, d.outputArtifactDetails]);
}

export function createActionTypeCatalog(db: Db): ActionTypeCatalog {
  const collection = db.collection<StoredActionType>("action_types");
  let byKey = new Map<string, StoredActionType>();
  let readAt = 0;

  const catalog: ActionTypeCatalog = {
    async ensureIndexes() {
      await collection.createIndex({ deleted: 1 });
    },

    async refresh() {
      const started = Date.now();
      const docs = await collection.find({}).toArray();
      byKey = new Map(docs.map((d) => [d._id, d]));
      readAt = started;
    },

    async refreshIfOlder(ms) {
      if (Date.now() - readAt > ms) await catalog.refresh();
    },

    lookup(id) {
      const stored = byKey.get(customActionTypeKey(id));
      return stored === undefined || stored.deleted ? undefined : customActionTypeSpec(stored.definition);
    },

    find(id) {
      return byKey.get(customActionTypeKey(id));
    },

    listed() {
      return [...byKey.values()].filter((t) => !t.deleted).sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
    },

    secretKeys(id) {
      return byKey.get(customActionTypeKey(id))?.definition.configurationProperties.filter((p) => p.secret).map((p) => p.name) ?? [];
    },

    secretValues(actions) {
      const values: string[] = [];
      for (const action of actions) {
        const type = action.actionTypeId;
        if (type?.owner !== "Custom") continue;
        for (const key of catalog.secretKeys(type)) {
          const value = action.configuration[key];
          if (value !== undefined && value !== "") values.push(value);
        }
      }
      return values;
    },

    async create(definition, tags, now) {
      const key = customActionTypeKey(definition);
      const existing = (await collection.findOne({ _id: key })) ?? undefined;
      if (existing !== undefined) {
        const same = createShape(existing.definition) === createShape(definition);
        if (!existing.deleted) {
          if (!same) throw conflict(key, "already exists with another definition: change it with UpdateActionType, or declare a new version");
          return { stored: existing, outcome: "existing" };
        }
        if (!same) throw conflict(key, "was deleted; a deleted version is revived only with its identical definition: declare a new version");
        await checkQuota();
        const revived = await collection.findOneAndUpdate({ _id: key, deleted: true }, { $set: { deleted: false, updated: now, tags: [...tags] } }, { returnDocument: "after" });
        await catalog.refresh();
        if (revived === null) return catalog.create(definition, tags, now);
        return { stored: revived, outcome: "revived" };
      }
      await checkQuota();
      const doc: StoredActionType = { _id: key, definition, tags: [...tags], deleted: false, created: now, updated: now };
      try {
        await collection.insertOne(doc);
      } catch (err) {
        // Another create of the same type won the race: answer as if it came first.
        if (err instanceof MongoServerError && err.code === 11000) return catalog.create(definition, tags, now);
        throw err;
      }
      await catalog.refresh();
      return { stored: doc, outcome: "created" };
    },

    async update(definition, now) {
      const key = customActionTypeKey(definition);
      const updated = await collection.findOneAndUpdate({ _id: key, deleted: false }, { $set: { definition, updated: now } }, { returnDocument: "after" });
      await catalog.refresh();
      if (updated === null) throw notFound(definition);
      return updated;
    },

    async delete(id, now) {
      const r = await collection.updateOne({ _id: customActionTypeKey(id), deleted: false }, { $set: { deleted: true, updated: now } });
      await catalog.refresh();
      return r.modifiedCount === 1;
    },
  };

  async function checkQuota(): Promise<void> {
    const declared = await collection.countDocuments({ deleted: false });
    if (declared >= MAX_CUSTOM_ACTION_TYPES) {
      throw new DomainError("LimitExceededException", `there are already ${declared} custom action types, the most allowed (${MAX_CUSTOM_ACTION_TYPES}); delete one first`);
    }
  }

  return catalog;
}

function conflict(key: string, why: string): DomainError {
  return new DomainError("ValidationException", `version: ${key} ${why}`, [{ field: "version", message: `${key} ${why}` }]);
}

/** ActionTypeNotFoundException for a type that is not declared (or was deleted). */
export function notFound(id: { readonly category: string; readonly owner?: string; readonly provider: string; readonly version: string }): DomainError {
  const owner = id.owner ?? "Custom";
  const key = `${owner}/${id.category}/${id.provider}/${id.version}`;
  return new DomainError("ActionTypeNotFoundException", `action type ${key} does not exist${owner === "Custom" ? " (or was deleted)" : ""}`, [
    { field: "actionTypeId", message: `${key} does not exist` },
  ]);
}
