import { clone } from "@bufbuild/protobuf";
import { DEFAULT_TIMEOUT_MINUTES, actionTimeoutMinutes, resolveProvider, toPipelineSpec } from "@sluice/domain";
import type { CustomActionTypeLookup, PipelineSpec } from "@sluice/domain";
import { PipelineDeclarationSchema } from "@sluice/proto";
import type { ActionDeclaration, PipelineDeclaration } from "@sluice/proto";

/** What the spec needs of custom action types (the catalog): their specs, and secret keys even of deleted ones. */
export interface CustomTypes {
  readonly lookup: CustomActionTypeLookup;
  readonly secretKeys: (id: { readonly category: string; readonly provider: string; readonly version: string }) => readonly string[];
}

const NO_CUSTOM_TYPES: CustomTypes = { lookup: () => undefined, secretKeys: () => [] };

/**
 * The state machine's view of a stored declaration: each action routed to the
 * built-in provider that runs it (`Custom` for a custom action type, whose jobs
 * go to job workers), and its job timeout taken from the provider table (so
 * aliases keep AWS's defaults, e.g. CodeBuild's 8 hours) or the custom type's
 * `executor.jobTimeout`. A custom type's secret properties are marked so every
 * view masks their values.
 * Throws ValidationException for an unknown execution mode (validation
 * refuses it first; this keeps the state machine's input honest).
 */
export function specOf(declaration: PipelineDeclaration, defaultArtifactBucket: string, custom: CustomTypes = NO_CUSTOM_TYPES): PipelineSpec {
  const decl = clone(PipelineDeclarationSchema, declaration);
  const isCustom = (action: ActionDeclaration): boolean => action.actionTypeId?.owner === "Custom";
  for (const stage of decl.stages) {
    for (const action of stage.actions) {
      const type = action.actionTypeId;
      action.timeoutInMinutes ??= isCustom(action) && type !== undefined ? (custom.lookup(type)?.defaultTimeoutMinutes ?? DEFAULT_TIMEOUT_MINUTES.Custom) : actionTimeoutMinutes(action);
    }
  }
  const spec = toPipelineSpec(
    decl,
    (action) => (isCustom(action) ? "Custom" : (resolveProvider(action.actionTypeId)?.builtIn ?? action.actionTypeId?.provider ?? "")),
    { defaultArtifactBucket },
  );
  for (const stage of spec.stages) {
    for (const action of stage.actions) {
      if (action.builtIn !== "Custom") continue;
      const keys = custom.secretKeys({ category: action.category, provider: action.provider, version: action.providerVersion });
      if (keys.length > 0) action.secretConfiguration = [...keys];
    }
  }
  return spec;
}
