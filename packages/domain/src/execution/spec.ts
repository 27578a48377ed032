import type { ActionDeclaration, PipelineDeclaration } from "@sluice/proto";
import { DomainError } from "../errors.js";
import { DEFAULT_TIMEOUT_MINUTES } from "../validation/providers.js";
import type { ActionSpec, PipelineSpec } from "./types.js";

/** Used for a built-in provider missing from DEFAULT_TIMEOUT_MINUTES. */
const FALLBACK_TIMEOUT_MINUTES = 60;


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
    stages: decl.stages.map((stage) => ({
      name: stage.name,
      actions: stage.actions.map((action) => toActionSpec(action, builtInOf(action), options)),
    })),
    variables: decl.variables.map((v) => {
      const variable: PipelineSpec["variables"][number] = { name: v.name };
      if (v.defaultValue !== "") variable.defaultValue = v.defaultValue;
      if (v.description !== "") variable.description = v.description;
      return variable;
    }),
  };
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
