import type { Subjects } from "@sluice/bus";
import { DomainError, assertValidPipeline, checkDeclarationSize, declarationSizeBytes, normalizePipeline } from "@sluice/domain";
import type { PipelineSpec } from "@sluice/domain";
import type { PipelineDeclaration } from "@sluice/proto";
import type { ActionTypeCatalog } from "../action-types/action-type-store.js";
import { eventDeclaration } from "../api/views.js";
import { declarationEntry } from "../runtime/outbox.js";
import type { RuntimeStore } from "../runtime/runtime-store.js";
import type { PipelineStore, StoredPipeline } from "./pipeline-store.js";

/**
 * What UpdatePipeline does with a declaration, shared with the pipeline definitions read from
 * repositories (definition-update.ts) so both apply the same rules and the same write.
 */
export interface DeclarationUpdates {
  /** Size check, defaults, then every structural rule; returns the declaration to store. Throws ValidationException. */
  prepare(declaration: PipelineDeclaration | undefined): PipelineDeclaration;
  /**
   * Stores a prepared declaration as the next version and moves the runtime onto it
   * (PipelineUpdated), the declaration change going out in the same runtime write.
   */
  store(declaration: PipelineDeclaration, now: Date): Promise<StoredPipeline>;
}

export interface DeclarationUpdateDeps {
  pipelines: PipelineStore;
  runtime: RuntimeStore;
  subjects: Subjects;
  specOf: (declaration: PipelineDeclaration) => PipelineSpec;
  actionTypes: ActionTypeCatalog;
  defaultArtifactBucket: string;
}

export function declarationUpdates(deps: DeclarationUpdateDeps): DeclarationUpdates {
  const { pipelines, runtime, subjects, specOf, actionTypes, defaultArtifactBucket } = deps;
  return {
    prepare(declaration) {
      if (declaration === undefined) throw new DomainError("ValidationException", "pipeline: is required", [{ field: "pipeline", message: "is required" }]);
      checkDeclarationSize(declarationSizeBytes(declaration));
      const normalized = normalizePipeline(declaration, defaultArtifactBucket);
      assertValidPipeline(normalized, { customActionType: actionTypes.lookup });
      // Also rejects what validation accepts but execution cannot run (e.g. an unsupported mode).
      specOf(normalized);
      return normalized;
    },

    async store(declaration, now) {
      const stored = await pipelines.update(declaration, now);
      // The state machine applies AWS's rules: new executions run the new version;
      // waiting executions are cancelled at once; executions inside a stage start
      // nothing new and end Cancelled once their running actions finish.
      await runtime.apply(
        stored.name,
        { type: "PipelineUpdated", spec: specOf(stored.declaration) },
        { extra: [declarationEntry(subjects, stored.name, "UPDATED", stored.version, eventDeclaration(stored.declaration), now.getTime())] },
      );
      return stored;
    },
  };
}
