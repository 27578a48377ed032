import { clone, equals } from "@bufbuild/protobuf";
import { invalid, isDomainError, readPipelineJson } from "@sluice/domain";
import type { FieldViolation, Logger, PipelineRuntime, SourceRevisionRef } from "@sluice/domain";
import { PipelineDeclarationSchema } from "@sluice/proto";
import type { PipelineDeclaration, PipelineDefinitionFile } from "@sluice/proto";
import type { ActionTypeCatalog } from "../action-types/action-type-store.js";
import { answerMasker, declarationSecrets, restoreMaskedValues } from "../api/views.js";
import type { RuntimeStore } from "../runtime/runtime-store.js";
import type { DeclarationUpdates } from "./declaration-update.js";
import { pipelineNotFound } from "./pipeline-store.js";
import type { PipelineStore } from "./pipeline-store.js";

/** What became of a revision's `.sluice/pipeline.json`. */
export type DefinitionOutcome =
  | { kind: "updated"; version: number }
  | { kind: "unchanged" }
  | { kind: "rejected"; violations: FieldViolation[] };

export interface DefinitionUpdateDeps {
  pipelines: PipelineStore;
  runtime: RuntimeStore;
  actionTypes: ActionTypeCatalog;
  updates: DeclarationUpdates;
  logger: Logger;
  clock: () => number;
}

/**
 * Applies the pipeline definition a source change carries, before its execution starts: the
 * file goes through UpdatePipeline's rules and, when it differs from the stored declaration,
 * becomes the next version. A revision already started is not looked at again (a redelivery
 * must not undo an UpdatePipeline made since). Errors other than the file's own (an outage)
 * are thrown, so the message is retried.
 */
export async function applyDefinition(
  deps: DefinitionUpdateDeps,
  pipelineName: string,
  revision: SourceRevisionRef,
  file: PipelineDefinitionFile,
): Promise<DefinitionOutcome> {
  const state = await deps.runtime.read(pipelineName);
  if (state !== undefined && revisionSeen(state, revision)) return { kind: "unchanged" };
  const current = await deps.pipelines.find(pipelineName);
  if (current === undefined) throw pipelineNotFound(pipelineName, "pipelineName");
  const violations: FieldViolation[] = [];
  let prepared: PipelineDeclaration | undefined;
  let declaration: PipelineDeclaration | undefined;
  try {
    declaration = parseDefinition(file);
    // Reported with the validator's findings, so one push shows every problem of the file.
    if (declaration.name !== pipelineName) {
      violations.push({ field: "pipeline.name", message: `must be ${JSON.stringify(pipelineName)}, the name of the pipeline it declares (got ${JSON.stringify(declaration.name)})` });
    }
    await deps.actionTypes.refresh();
    prepared = deps.updates.prepare(restoreMaskedValues(declaration, current.declaration, deps.actionTypes.secretKeys));
  } catch (err) {
    // Every refusal of the file (ValidationException, InvalidStructureException, LimitExceededException, …) is the file's.
    if (!isDomainError(err) || err.retryable) throw err;
    violations.push(...(err.violations.length > 0 ? err.violations : [{ field: "pipeline", message: err.message }]));
  }
  if (violations.length > 0 || prepared === undefined) {
    deps.logger.warn("pipeline definition in the repository rejected", { pipeline: pipelineName, revision: revision.revisionId, violations: violations.length });
    // Every viewer reads the statusSummary they become: the file's secrets (and URL credentials) are masked as in answers.
    const secrets = declaration === undefined ? [] : [...declarationSecrets(declaration), ...deps.actionTypes.secretValues(declaration.stages.flatMap((st) => st.actions))];
    return { kind: "rejected", violations: answerMasker(secrets)(violations) };
  }
  // The stored declaration carries its version; the file's (if any) does not decide it.
  const candidate = clone(PipelineDeclarationSchema, prepared);
  candidate.version = current.declaration.version;
  if (equals(PipelineDeclarationSchema, candidate, current.declaration)) return { kind: "unchanged" };
  const stored = await deps.updates.store(prepared, new Date(deps.clock()));
  deps.logger.info("pipeline updated from the repository", { pipeline: pipelineName, version: stored.version, revision: revision.revisionId });
  return { kind: "updated", version: stored.version };
}

/** The file as UpdatePipeline's request: strict AWS JSON, either form. */
function parseDefinition(file: PipelineDefinitionFile): PipelineDeclaration {
  if (file.problem !== "") throw invalidFile("(document)", file.problem);
  const { pipeline } = readPipelineJson(file.text);
  if (pipeline === undefined) throw invalidFile("pipeline", "is required");
  return pipeline;
}

function invalidFile(field: string, message: string): Error {
  return invalid("ValidationException", [{ field, message }]);
}

/** The runtime already started (or runs) this revision of this action. */
function revisionSeen(state: PipelineRuntime, revision: SourceRevisionRef): boolean {
  const same = (r: SourceRevisionRef): boolean => r.actionName === revision.actionName && r.revisionId === revision.revisionId;
  return state.lastSourceRevisions.some(same) || Object.values(state.executions).some((e) => e.pinnedRevisions.some(same));
}
