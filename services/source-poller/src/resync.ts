import type { Logger } from "@sluice/domain";
import { isRpcError } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import type { PipelineDeclaration, PipelineService } from "@sluice/proto";
import type { CursorStore } from "./cursor-store.js";
import { gitSourcesOf } from "./git-sources.js";
import type { ObjectCursorStore } from "./object-cursor-store.js";
import type { StartStore } from "./starts/start-store.js";
import type { SourceActionStore } from "./webhooks/source-actions.js";

/** Runs tasks one after another per pipeline, so a resync and a declaration event never interleave. */
export interface PerPipeline {
  run<T>(pipelineName: string, fn: () => Promise<T>): Promise<T>;
}

/** A per-pipeline promise chain (one process). */
export function createPerPipeline(): PerPipeline {
  const chains = new Map<string, Promise<unknown>>();
  return {
    run(name, fn) {
      const result = (chains.get(name) ?? Promise.resolve()).then(fn, fn);
      const tail = result.catch(() => undefined);
      chains.set(name, tail);
      void tail.then(() => {
        if (chains.get(name) === tail) chains.delete(name);
      });
      return result;
    },
  };
}

/** What follows pipelines' declarations besides the cursors (each optional, for tests). */
export interface DeclarationFollowers {
  /** Every stage-1 source action, for webhooks. */
  sourceActions?: SourceActionStore;
  /** Schedules and event rules. */
  starts?: StartStore;
  /** ObjectStore (AWS S3) sources' cursors. */
  objectSources?: ObjectCursorStore;
}

/** Applies one declaration (undefined: the pipeline is gone) to the cursors and what else follows declarations. */
export async function applyDeclaration(
  store: CursorStore,
  pipelineName: string,
  declaration: PipelineDeclaration | undefined,
  now: number,
  followers: DeclarationFollowers = {},
): Promise<void> {
  if (declaration === undefined) await store.removePipeline(pipelineName);
  else await store.syncPipeline(pipelineName, gitSourcesOf(declaration), now);
  await followers.sourceActions?.syncPipeline(pipelineName, declaration);
  if (declaration === undefined) await followers.starts?.removePipeline(pipelineName);
  else await followers.starts?.syncPipeline(pipelineName, declaration, now);
  await followers.objectSources?.syncPipeline(pipelineName, declaration, now);
}

/**
 * Makes the cursors match the orchestrator's pipelines, read over gRPC (ListPipelines, then
 * GetPipeline each, with the poller's own service token; the poller never reads the
 * orchestrator's database). Declaration events are the fast path; this catches up with any the
 * poller missed (an orchestrator that crashed between storing a declaration and announcing it,
 * an event the poller could not apply). Each pipeline is read and applied inside its
 * `perPipeline` turn, so what is applied is never older than an event applied before it.
 * Returns how many pipelines were synced.
 */
export async function resyncDeclarations(
  pipelines: Client<typeof PipelineService>,
  store: CursorStore,
  perPipeline: PerPipeline,
  logger: Logger,
  now: () => number = Date.now,
  followers: DeclarationFollowers = {},
): Promise<number> {
  const names = new Set<string>();
  let nextToken = "";
  do {
    const page = await pipelines.listPipelines({ nextToken, maxResults: 1000 });
    for (const p of page.pipelines) names.add(p.name);
    nextToken = page.nextToken;
  } while (nextToken !== "");
  // Pipelines with cursors but not listed: deleted, or created after the listing — GetPipeline tells.
  for (const name of await store.pipelineNames()) names.add(name);
  for (const name of (await followers.sourceActions?.pipelineNames()) ?? []) names.add(name);
  for (const name of names) {
    await perPipeline.run(name, async () => {
      let declaration: PipelineDeclaration | undefined;
      try {
        declaration = (await pipelines.getPipeline({ name })).pipeline;
      } catch (err) {
        if (!isRpcError(err, "PipelineNotFoundException")) throw err;
      }
      await applyDeclaration(store, name, declaration, now(), followers);
    });
  }
  logger.debug("declarations resynced", { pipelines: names.size });
  return names.size;
}
