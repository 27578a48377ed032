import { clone } from "@bufbuild/protobuf";
import { actionTimeoutMinutes, resolveProvider, toPipelineSpec } from "@sluice/domain";
import type { PipelineSpec } from "@sluice/domain";
import { PipelineDeclarationSchema } from "@sluice/proto";
import type { PipelineDeclaration } from "@sluice/proto";

/**
 * The state machine's view of a stored declaration: each action routed to the
 * built-in provider that runs it, and its job timeout taken from the provider
 * table (so aliases keep AWS's defaults, e.g. CodeBuild's 8 hours).
 * Throws ValidationException for an unknown execution mode (validation
 * refuses it first; this keeps the state machine's input honest).
 */
export function specOf(declaration: PipelineDeclaration, defaultArtifactBucket: string): PipelineSpec {
  const decl = clone(PipelineDeclarationSchema, declaration);
  for (const stage of decl.stages) {
    for (const action of stage.actions) action.timeoutInMinutes ??= actionTimeoutMinutes(action);
  }
  return toPipelineSpec(decl, (action) => resolveProvider(action.actionTypeId)?.builtIn ?? action.actionTypeId?.provider ?? "", { defaultArtifactBucket });
}
