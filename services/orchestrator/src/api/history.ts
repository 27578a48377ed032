// Paged history: executions newest first from the runtime (in flight, and
// finished ones still retryable) merged with the archive, for
// ListPipelineExecutions and ListActionExecutions.

import type { ExecutionRuntime } from "@sluice/domain";
import type { Collection, Filter } from "mongodb";
import type { ArchivedExecution } from "../runtime/runtime-store.js";

/** Where a page of executions starts: after (or at, `inclusive`) execution `i` started at `t`. */
export interface ExecutionCursor {
  /** Start time (epoch ms) of the execution the previous page ended with. */
  t: number;
  /** Its id. */
  i: string;
  /** Start at that execution itself (its remaining actions), not after it. */
  inclusive?: boolean;
}

/** Newest first: start time descending, then id descending. */
function executionOrder(a: ExecutionRuntime, b: ExecutionRuntime): number {
  return b.startTime - a.startTime || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** True when `e` comes after the cursor in newest-first order (or is the cursor's execution, when inclusive). */
function afterCursor(e: { startTime: number; id: string }, cursor: ExecutionCursor | undefined): boolean {
  if (cursor === undefined) return true;
  if (e.startTime !== cursor.t) return e.startTime < cursor.t;
  return cursor.inclusive === true ? e.id <= cursor.i : e.id < cursor.i;
}

/** An archived document without its storage fields. */
export function plainExecution(doc: ExecutionRuntime | ArchivedExecution): ExecutionRuntime {
  if (!("_id" in doc)) return doc;
  const { _id: _ignoredId, pipelineName: _ignoredName, ...exec } = doc;
  return exec;
}

/**
 * A pipeline's executions newest first, from `cursor` on: the runtime's
 * (`live`) merged with the archive's, read lazily in batches so a caller that
 * stops early (a full page) reads no further. An execution in both places
 * (finished, archived, still retryable) is taken from the runtime.
 */
export async function* executionsNewestFirst(
  live: readonly ExecutionRuntime[],
  archive: Collection<ArchivedExecution>,
  pipelineName: string,
  cursor: ExecutionCursor | undefined,
): AsyncGenerator<ExecutionRuntime> {
  const liveIds = new Set(live.map((e) => e.id));
  const fresh = live.filter((e) => afterCursor(e, cursor)).sort(executionOrder);
  const filter: Filter<ArchivedExecution> =
    cursor === undefined
      ? { pipelineName }
      : { pipelineName, $or: [{ startTime: { $lt: cursor.t } }, { startTime: cursor.t, _id: cursor.inclusive === true ? { $lte: cursor.i } : { $lt: cursor.i } }] };
  const stored = archive.find(filter).sort({ startTime: -1, _id: -1 }).batchSize(50);
  try {
    let next = 0;
    for await (const doc of stored) {
      if (liveIds.has(doc._id)) continue;
      const archived = plainExecution(doc);
      while (next < fresh.length && executionOrder(fresh[next] as ExecutionRuntime, archived) < 0) yield fresh[next++] as ExecutionRuntime;
      yield archived;
    }
    while (next < fresh.length) yield fresh[next++] as ExecutionRuntime;
  } finally {
    await stored.close();
  }
}

/** An execution that succeeded in `stageName` (its latest run of the stage). */
export function succeededIn(exec: ExecutionRuntime, stageName: string): boolean {
  return exec.stages.some((s) => s.name === stageName && s.status === "Succeeded");
}
