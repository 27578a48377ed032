import type { ActionDeclaration, PipelineDeclaration } from "@sluice/proto";
import { DomainError } from "../errors.js";
import { FALLBACK_TIMEOUT_MINUTES } from "../limits.js";
import { DEFAULT_TIMEOUT_MINUTES } from "../validation/providers.js";
import { stageConditionFields } from "../validation/conditions.js";
import type { StageConditionsDeclarationLike } from "../validation/conditions.js";
import type { ActionSpec, ConditionResult, PipelineSpec, StageConditionsSpec, StageRetryMode, StageSpec } from "./types.js";



/** Options of `toPipelineSpec`. */
export interface ToPipelineSpecOptions {
  /** Bucket used when the declaration names no artifact store. */
  defaultArtifactBucket?: string;
  /** Overrides DEFAULT_TIMEOUT_MINUTES (return undefined to keep the default). */
  defaultTimeoutMinutes?: (builtIn: string) => number | undefined;
}

/**
 * Reduces a normalized, validated declaration to what the state machine needs.
 * `builtInOf` maps an action to the built-in provider that runs it (Git,
 * Commands, Manual, ObjectStore) — the validation package owns that table.
 * Throws ValidationException for an unknown execution mode.
 */
export function toPipelineSpec(
  decl: PipelineDeclaration,
  builtInOf: (action: ActionDeclaration) => string,
  options: ToPipelineSpecOptions = {},
): PipelineSpec {
  const mode = decl.executionMode === "" ? "SUPERSEDED" : decl.executionMode;
  if (mode !== "SUPERSEDED" && mode !== "QUEUED" && mode !== "PARALLEL") {
    throw new DomainError("ValidationException", `pipeline.executionMode: "${mode}" is not an execution mode (SUPERSEDED, QUEUED or PARALLEL)`);
  }
  const bucket =
    decl.artifactStore?.location ??
    Object.values(decl.artifactStores)[0]?.location ??
    options.defaultArtifactBucket ??
    "";
  return {
    name: decl.name,
    version: decl.version,
    executionMode: mode,
    artifactBucket: bucket === "" ? (options.defaultArtifactBucket ?? "") : bucket,
    stages: decl.stages.map((stage) => {
      const spec: StageSpec = {
        name: stage.name,
        actions: stage.actions.map((action) => toActionSpec(action, builtInOf(action), options)),
      };
      const fields = stageConditionFields(stage);
      if (fields.beforeEntry !== undefined) spec.beforeEntry = toConditionsSpec(fields.beforeEntry, "FAIL");
      if (fields.onSuccess !== undefined) spec.onSuccess = toConditionsSpec(fields.onSuccess, "FAIL");
      if (fields.onFailure !== undefined) spec.onFailure = toConditionsSpec(fields.onFailure, "ROLLBACK");
      return spec;
    }),
    variables: decl.variables.map((v) => {
      const variable: PipelineSpec["variables"][number] = { name: v.name };
      if (v.defaultValue !== "") variable.defaultValue = v.defaultValue;
      if (v.description !== "") variable.description = v.description;
      return variable;
    }),
  };
}

/**
 * A validated beforeEntry/onSuccess/onFailure. A condition without a result
 * gets the kind's default (`defaultResult`: FAIL before entry and on success,
 * ROLLBACK on failure).
 */
function toConditionsSpec(decl: StageConditionsDeclarationLike, defaultResult: ConditionResult): StageConditionsSpec {
  const spec: StageConditionsSpec = {
    conditions: decl.conditions.map((condition) => ({
      result: condition.result === "" ? defaultResult : (condition.result as ConditionResult),
      rules: condition.rules.map((rule) => {
        const type = rule.ruleTypeId;
        const out: StageConditionsSpec["conditions"][number]["rules"][number] = {
          name: rule.name,
          ruleTypeId: { category: type?.category ?? "Rule", owner: type?.owner === "" || type === undefined ? "AWS" : type.owner, provider: type?.provider ?? "", version: type?.version ?? "1" },
          configuration: { ...rule.configuration },
          commands: [...rule.commands],
          inputArtifacts: rule.inputArtifacts.map((a) => a.name),
        };
        if (rule.timeoutInMinutes !== undefined) out.timeoutInMinutes = rule.timeoutInMinutes;
        return out;
      }),
    })),
  };
  if (decl.result !== undefined && decl.result !== "") spec.result = decl.result as ConditionResult;
  if (decl.retryConfiguration !== undefined) spec.retryConfiguration = { retryMode: decl.retryConfiguration.retryMode as StageRetryMode };
  return spec;
}

function toActionSpec(action: ActionDeclaration, builtIn: string, options: ToPipelineSpecOptions): ActionSpec {
  const type = action.actionTypeId;
  const timeout =
    action.timeoutInMinutes ??
    options.defaultTimeoutMinutes?.(builtIn) ??
    DEFAULT_TIMEOUT_MINUTES[builtIn as keyof typeof DEFAULT_TIMEOUT_MINUTES] ??
    FALLBACK_TIMEOUT_MINUTES;
  const spec: ActionSpec = {
    name: action.name,
    category: type?.category ?? "",
    owner: type?.owner ?? "",
    provider: type?.provider ?? "",
    builtIn,
    providerVersion: type?.version ?? "",
    runOrder: action.runOrder ?? 1,
    configuration: { ...action.configuration },
    commands: [...action.commands],
    inputArtifacts: action.inputArtifacts.map((a) => a.name),
    outputArtifacts: action.outputArtifacts.map((a) => ({ name: a.name, files: [...a.files] })),
    outputVariables: [...action.outputVariables],
    timeoutInMinutes: timeout,
    environmentVariables: action.environmentVariables.map((v) => ({
      name: v.name,
      value: v.value,
      type: v.type === "" ? "PLAINTEXT" : v.type,
    })),
  };
  if (action.namespace !== "") spec.namespace = action.namespace;
  return spec;
}
