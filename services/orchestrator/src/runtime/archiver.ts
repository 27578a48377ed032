import { isTerminal } from "@sluice/domain";
import type { ExecutionRuntime, Logger, PipelineRuntime } from "@sluice/domain";
import type { Db } from "mongodb";

/** An archived (finished) execution: collection `executions`, `_id` = execution id. */
export type ArchivedExecution = ExecutionRuntime & { _id: string; pipelineName: string };

/**
 * Copies terminal executions into `executions` and remembers which copies this process made, so
 * that a later write can drop them from the runtime document. A crash between the copy and that
 * write leaves an execution in both places, never in neither.
 */
export interface Archiver {
  ensureIndexes(): Promise<void>;
  /**
   * Copies the terminal executions of `state` not archived yet (replace by id: idempotent). A
   * failure is logged; the next call tries again.
   */
  archive(name: string, state: PipelineRuntime): Promise<void>;
  /** Ids of the executions of `state` whose current form is archived: the runtime may drop them. */
  archivedIn(name: string, state: PipelineRuntime): string[];
  /** Forgets archived executions `state` no longer has (it was written without them). */
  prune(name: string, state: PipelineRuntime): void;
  /** Forgets every execution of a pipeline (deleted: a recreated pipeline starts afresh). */
  forget(name: string): void;
  /** Forgets everything (tests simulate a restart with it). */
  clear(): void;
}

/** Creates the archiver over the `executions` collection of `db`. */
export function createArchiver(db: Db, parentLogger: Logger): Archiver {
  const archive = db.collection<ArchivedExecution>("executions");
  const logger = parentLogger.child({ component: "archive" });
  /**
   * Per pipeline: archived executions by id, with the fingerprint (`archiveKey`) of the copy. A
   * retried execution (decide() keeps its own copy while it is retryable) that ends again
   * differs from its copy and is archived again.
   */
  const archived = new Map<string, Map<string, string>>();

  return {
    async ensureIndexes() {
      await archive.createIndex({ pipelineName: 1, startTime: -1 });
    },

    async archive(name, state) {
      const copies = archived.get(name);
      const todo = Object.values(state.executions).filter((e) => isTerminal(e.status) && copies?.get(e.id) !== archiveKey(e));
      if (todo.length === 0) return;
      try {
        await archive.bulkWrite(
          todo.map((e) => ({ replaceOne: { filter: { _id: e.id }, replacement: { ...e, _id: e.id, pipelineName: name }, upsert: true } })),
          { ordered: false },
        );
        const done = copies ?? new Map<string, string>();
        for (const e of todo) done.set(e.id, archiveKey(e));
        archived.set(name, done);
      } catch (err) {
        logger.warn("archiving finished executions failed; retried after the next write", { pipeline: name, error: err instanceof Error ? err.message : String(err) });
      }
    },

    archivedIn(name, state) {
      const copies = archived.get(name);
      if (copies === undefined) return [];
      return Object.values(state.executions)
        .filter((e) => copies.get(e.id) === archiveKey(e))
        .map((e) => e.id);
    },

    prune(name, state) {
      const copies = archived.get(name);
      if (copies === undefined) return;
      for (const id of copies.keys()) if (!Object.hasOwn(state.executions, id)) copies.delete(id);
    },

    forget(name) {
      archived.delete(name);
    },

    clear() {
      archived.clear();
    },
  };
}

/** What identifies one archived copy of an execution: a retry that ends again changes it. */
function archiveKey(exec: ExecutionRuntime): string {
  return `${exec.status}:${exec.lastUpdateTime}:${exec.executionAttempt ?? 1}`;
}
