// Defaults, the validity gate and the size limit of a declaration, as used by
// CreatePipeline/UpdatePipeline: check the size of what arrived, normalize,
// then assert validity (validation answers the same before and after
// normalization, so the order of the last two does not matter).

import { clone, create, toJsonString } from "@bufbuild/protobuf";
import { ArtifactStoreSchema, PipelineDeclarationSchema } from "@sluice/proto";
import type { PipelineDeclaration } from "@sluice/proto";
import { invalid } from "../errors.js";
import { MAX_DECLARATION_BYTES } from "../limits.js";
import { validatePipeline } from "./validate.js";
import type { ValidationOptions } from "./validate.js";

/** Bucket used when a declaration names no artifact store (the orchestrator's DEFAULT_ARTIFACT_BUCKET default). */
export const DEFAULT_ARTIFACT_BUCKET = "sluice-artifacts";

/**
 * A copy of `decl` with Sluice's defaults filled in; the input is not changed
 * and the result is what GetPipeline returns. Fills: pipeline `version` 1 (when
 * unset; the server sets the real value), `executionMode` SUPERSEDED,
 * `pipelineType` V1, each action's `runOrder` 1, environment variable `type`
 * PLAINTEXT, artifact store `type` S3, and — when neither `artifactStore` nor
 * `artifactStores` is given — `artifactStore {type: "S3", location: defaultBucket}`.
 *
 * AWS requires an artifact store because every account brings its own S3
 * bucket; a Sluice cluster has one object store with a bucket the operator
 * configured, so requiring users to repeat that name in every file would only
 * make files harder to share. Writing the default into the stored declaration
 * keeps executions on the bucket they started with if the operator's default
 * changes later. Configuration values are never rewritten: GetPipeline returns
 * them as written (providers apply their own defaults, e.g. BranchName main).
 * Never throws; idempotent.
 */
export function normalizePipeline(decl: PipelineDeclaration, defaultBucket: string = DEFAULT_ARTIFACT_BUCKET): PipelineDeclaration {
  const out = clone(PipelineDeclarationSchema, decl);
  if (out.version === 0) out.version = 1;
  if (out.executionMode === "") out.executionMode = "SUPERSEDED";
  if (out.pipelineType === "") out.pipelineType = "V1";
  if (out.artifactStore === undefined && Object.keys(out.artifactStores).length === 0) {
    out.artifactStore = create(ArtifactStoreSchema, { type: "S3", location: defaultBucket });
  }
  if (out.artifactStore !== undefined && out.artifactStore.type === "") out.artifactStore.type = "S3";
  for (const store of Object.values(out.artifactStores)) {
    if (store.type === "") store.type = "S3";
  }
  for (const stage of out.stages) {
    for (const action of stage.actions) {
      action.runOrder ??= 1;
      for (const env of action.environmentVariables) {
        if (env.type === "") env.type = "PLAINTEXT";
      }
    }
  }
  return out;
}

/**
 * Throws `InvalidStructureException` listing every violation when the
 * declaration is not valid (see `validatePipeline`); returns otherwise.
 */
export function assertValidPipeline(decl: PipelineDeclaration, options: ValidationOptions = {}): void {
  const violations = validatePipeline(decl, options);
  if (violations.length > 0) throw invalid("InvalidStructureException", violations);
}

/**
 * Throws `LimitExceededException` when a declaration of `bytes` bytes is
 * larger than MAX_DECLARATION_BYTES. Call it with the size of the request as
 * received, before any other work on it.
 */
export function checkDeclarationSize(bytes: number): void {
  if (bytes > MAX_DECLARATION_BYTES) {
    throw invalid("LimitExceededException", [
      { field: "pipeline", message: `the declaration is ${bytes} bytes; the limit is ${MAX_DECLARATION_BYTES} bytes` },
    ]);
  }
}

/** Size of a declaration's JSON form in UTF-8 bytes: what `checkDeclarationSize` measures for a decoded message. */
export function declarationSizeBytes(decl: PipelineDeclaration): number {
  return new TextEncoder().encode(toJsonString(PipelineDeclarationSchema, decl)).length;
}
