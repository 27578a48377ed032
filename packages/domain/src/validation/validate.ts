// Structural validation of a pipeline declaration (reference §2 and §3).
//
// `validatePipeline` checks everything it can and returns every problem with
// the full field path (`pipeline.stages[1].actions[0].inputArtifacts[0].name`),
// so a user fixes a file in one round trip. It never throws: whatever protobuf
// message it gets, it answers with a list. Defaults that `normalizePipeline`
// fills (runOrder, executionMode, pipelineType, artifact store, environment
// variable type) are accepted when absent, so validation gives the same answer
// before and after normalization.

import type { ActionDeclaration, ArtifactStore, PipelineDeclaration, StageDeclaration } from "@sluice/proto";
import type { FieldViolation } from "../errors.js";
import {
  ACTION_CATEGORIES,
  ACTION_NAME_PATTERN,
  ACTION_OWNERS,
  ARTIFACT_NAME_PATTERN,
  BUCKET_NAME_PATTERN,
  ENV_VAR_NAME_PATTERN,
  EXECUTION_MODES,
  LIMITS,
  NAMESPACE_PATTERN,
  OUTPUT_VARIABLE_PATTERN,
  PIPELINE_NAME_PATTERN,
  PIPELINE_TYPES,
  PROVIDER_PATTERN,
  PROVIDER_VERSION_PATTERN,
  ROLE_ARN_PATTERN,
  STAGE_NAME_PATTERN,
  SUPPORTED_EXECUTION_MODES,
  VARIABLE_KEY_PATTERN,
} from "./limits.js";
import { BUILT_IN_PROVIDERS, providerKey, resolveProvider, splitCommands, supportedProviders } from "./providers.js";
import type { ArtifactBounds, ConfigurationFormat, ProviderSpec } from "./providers.js";
import { checkStageConditions } from "./conditions.js";
import { MIN_SECRET_LENGTH, SECRET_ENV_TYPE } from "../execution/secrets.js";
import { RESERVED_ENV_PREFIX, bindShellReferences } from "../execution/shell-references.js";

/**
 * Most violations reported for one declaration. A hostile or badly broken
 * declaration could otherwise produce thousands, and the list travels back in
 * gRPC trailers; the last entry says how many more there were.
 */
export const MAX_VIOLATIONS = 100;

/** Namespaces Sluice reserves: `codepipeline` (execution id) and `variables` (pipeline variables). */
export const RESERVED_NAMESPACES: readonly string[] = ["codepipeline", "variables"];

/** Variables of the reserved `codepipeline` namespace. */
export const PIPELINE_VARIABLES: readonly string[] = ["PipelineExecutionId"];

/** A `#{...}` reference inside a configuration or environment variable value (linear: no nested quantifiers). */
const VARIABLE_REFERENCE = /#\{([^{}]*)\}/g;
/** Git URLs Sluice clones. Transports such as `ext::` (runs a command) are deliberately not matched. */
const GIT_URL_PATTERN = /^(?:(?:https?|ssh|git|file):\/\/\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$/;
const GIT_BRANCH_CHARS = /^[A-Za-z0-9._/-]{1,255}$/;
const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,49}$/;
const NAME_RULE = "1-100 characters of A-Z a-z 0-9 . @ _ -";

/** Where an artifact or namespace is declared, for "runs earlier" checks. */
export interface Declared {
  readonly stage: number;
  readonly action: number;
  readonly runOrder: number;
  readonly path: string;
  readonly stageName: string;
  readonly actionName: string;
  readonly decl: ActionDeclaration;
}

/** Collects violations, keeping at most MAX_VIOLATIONS. */
export class Violations {
  private readonly list: FieldViolation[] = [];
  private total = 0;
  add(field: string, message: string): void {
    this.total += 1;
    if (this.list.length < MAX_VIOLATIONS) this.list.push({ field, message });
  }
  result(): FieldViolation[] {
    if (this.total <= MAX_VIOLATIONS) return this.list;
    const kept = this.list.slice(0, MAX_VIOLATIONS - 1);
    return [...kept, { field: "pipeline", message: `${this.total - kept.length} more problems are not listed` }];
  }
}

/**
 * Every structural problem of a declaration, each naming its field with a
 * `pipeline.` prefix. An empty list means CreatePipeline/UpdatePipeline may
 * store it. Never throws.
 */
export function validatePipeline(decl: PipelineDeclaration): FieldViolation[] {
  const v = new Violations();
  checkPipelineFields(decl, v);

  const outputs = new Map<string, Declared>();
  const namespaces = new Map<string, Declared>();
  indexDeclarations(decl.stages, outputs, namespaces);
  const index: PipelineIndex = {
    outputs,
    namespaces,
    artifactNames: new Set(outputs.keys()),
    produced: new Map(),
    pipelineVariables: new Set(decl.variables.map((x) => x.name)),
  };

  const stageNames = new Map<string, number>();
  const ruleNames = new Map<string, string>();
  decl.stages.forEach((stage, s) => {
    checkStage(stage, s, stageNames, v);
    const actionNames = new Map<string, number>();
    stage.actions.forEach((action, a) => {
      checkAction(decl, declaredAt(stage, s, action, a), actionNames, index, v);
    });
    checkStageConditions(decl, stage, s, ruleNames, index, v);
  });
  return v.result();
}

function checkPipelineFields(decl: PipelineDeclaration, v: Violations): void {
  checkName("pipeline.name", decl.name, PIPELINE_NAME_PATTERN, v);
  checkRoleArn("pipeline.roleArn", decl.roleArn, v);

  const storeCount = Object.keys(decl.artifactStores).length;
  if (decl.artifactStore !== undefined && storeCount > 0) {
    v.add("pipeline.artifactStores", "give either artifactStore or artifactStores, not both");
  }
  if (decl.artifactStore !== undefined) checkArtifactStore("pipeline.artifactStore", decl.artifactStore, v);
  for (const [region, store] of Object.entries(decl.artifactStores)) {
    const path = keyPath("pipeline.artifactStores", region);
    if (region.length < LIMITS.minRegionLength || region.length > LIMITS.maxRegionLength) {
      v.add(path, `region ${q(region)} must be ${LIMITS.minRegionLength}-${LIMITS.maxRegionLength} characters`);
    }
    checkArtifactStore(path, store, v);
  }

  if (decl.version < 0) v.add("pipeline.version", `must be 1 or more, got ${decl.version}`);

  const mode = decl.executionMode;
  if (mode !== "" && !SUPPORTED_EXECUTION_MODES.includes(mode)) {
    v.add(
      "pipeline.executionMode",
      (EXECUTION_MODES as readonly string[]).includes(mode)
        ? `${q(mode)} is not supported yet; Sluice runs SUPERSEDED pipelines only`
        : `must be one of ${EXECUTION_MODES.join(", ")}, got ${q(mode)}`,
    );
  }
  const type = decl.pipelineType;
  if (type !== "" && !(PIPELINE_TYPES as readonly string[]).includes(type)) {
    v.add("pipeline.pipelineType", `must be one of ${PIPELINE_TYPES.join(", ")}, got ${q(type)}`);
  }

  checkPipelineVariables(decl, v);

  const stages = decl.stages.length;
  if (stages < LIMITS.minStages || stages > LIMITS.maxStages) {
    v.add("pipeline.stages", `a pipeline needs ${LIMITS.minStages} to ${LIMITS.maxStages} stages, got ${stages}`);
  }
  const actions = decl.stages.reduce((n, stage) => n + stage.actions.length, 0);
  if (actions > LIMITS.maxActionsPerPipeline) {
    v.add("pipeline.stages", `a pipeline has at most ${LIMITS.maxActionsPerPipeline} actions, got ${actions}`);
  }
}

/** Pipeline variables (AWS PipelineVariableDeclaration): ≤50, unique names, defaults 1–1000, descriptions ≤200. */
function checkPipelineVariables(decl: PipelineDeclaration, v: Violations): void {
  const vars = decl.variables;
  if (vars.length > LIMITS.maxPipelineVariables) {
    v.add("pipeline.variables", `at most ${LIMITS.maxPipelineVariables} pipeline variables, got ${vars.length}`);
  }
  const seen = new Map<string, number>();
  vars.forEach((variable, i) => {
    const path = `pipeline.variables[${i}]`;
    if (variable.name === "") {
      v.add(`${path}.name`, "is required");
    } else if (!VARIABLE_KEY_PATTERN.test(variable.name)) {
      v.add(`${path}.name`, `must be 1-${LIMITS.maxPipelineVariableNameLength} characters of A-Z a-z 0-9 @ _ -, got ${q(variable.name)}`);
    } else {
      const first = seen.get(variable.name);
      if (first !== undefined) v.add(`${path}.name`, `${q(variable.name)} is already declared at pipeline.variables[${first}]`);
      else seen.set(variable.name, i);
    }
    // An empty default means "none": StartPipelineExecution must then give a value.
    if (variable.defaultValue.length > LIMITS.maxPipelineVariableValueLength) {
      v.add(`${path}.defaultValue`, `must be at most ${LIMITS.maxPipelineVariableValueLength} characters, got ${variable.defaultValue.length}`);
    }
    if (variable.description.length > LIMITS.maxPipelineVariableDescriptionLength) {
      v.add(`${path}.description`, `must be at most ${LIMITS.maxPipelineVariableDescriptionLength} characters, got ${variable.description.length}`);
    }
  });
}

function checkArtifactStore(path: string, store: ArtifactStore, v: Violations): void {
  // An empty type is the default "S3" (normalizePipeline fills it in).
  if (store.type !== "" && store.type !== "S3") v.add(`${path}.type`, `must be "S3", got ${q(store.type)}`);
  if (store.location === "") v.add(`${path}.location`, "is required: name the bucket that holds the artifacts");
  else if (!BUCKET_NAME_PATTERN.test(store.location)) v.add(`${path}.location`, bucketMessage(store.location));
  const key = store.encryptionKey;
  if (key !== undefined) {
    if (key.id.length < 1 || key.id.length > LIMITS.maxEncryptionKeyIdLength) {
      v.add(`${path}.encryptionKey.id`, `must be 1-${LIMITS.maxEncryptionKeyIdLength} characters`);
    }
    if (key.type !== "KMS") v.add(`${path}.encryptionKey.type`, `must be "KMS", got ${q(key.type)}`);
  }
}

function declaredAt(stage: StageDeclaration, s: number, action: ActionDeclaration, a: number): Declared {
  return {
    stage: s,
    action: a,
    runOrder: action.runOrder ?? 1,
    path: `pipeline.stages[${s}].actions[${a}]`,
    stageName: stage.name,
    actionName: action.name,
    decl: action,
  };
}

/** Records the first producer of each output artifact and the first owner of each namespace. */
function indexDeclarations(
  stages: readonly StageDeclaration[],
  outputs: Map<string, Declared>,
  namespaces: Map<string, Declared>,
): void {
  stages.forEach((stage, s) => {
    stage.actions.forEach((action, a) => {
      const at = declaredAt(stage, s, action, a);
      for (const out of action.outputArtifacts) {
        if (out.name !== "" && !outputs.has(out.name)) outputs.set(out.name, at);
      }
      if (action.namespace !== "" && !namespaces.has(action.namespace)) namespaces.set(action.namespace, at);
    });
  });
}

function checkStage(stage: StageDeclaration, s: number, names: Map<string, number>, v: Violations): void {
  const path = `pipeline.stages[${s}]`;
  checkName(`${path}.name`, stage.name, STAGE_NAME_PATTERN, v);
  if (stage.name !== "") {
    const first = names.get(stage.name);
    if (first === undefined) names.set(stage.name, s);
    else v.add(`${path}.name`, `${q(stage.name)} is already the name of stages[${first}]`);
  }
  stage.blockers.forEach((blocker, b) => {
    checkName(`${path}.blockers[${b}].name`, blocker.name, STAGE_NAME_PATTERN, v);
    if (blocker.type !== "Schedule") v.add(`${path}.blockers[${b}].type`, `must be "Schedule", got ${q(blocker.type)}`);
  });
  const count = stage.actions.length;
  if (count < LIMITS.minActionsPerStage || count > LIMITS.maxActionsPerStage) {
    v.add(`${path}.actions`, `a stage needs ${LIMITS.minActionsPerStage} to ${LIMITS.maxActionsPerStage} actions, got ${count}`);
  }
}

/** What the declaration produces, for the checks of references and inputs. */
export interface PipelineIndex {
  readonly outputs: ReadonlyMap<string, Declared>;
  readonly namespaces: ReadonlyMap<string, Declared>;
  readonly artifactNames: ReadonlySet<string>;
  /** Variables produced per action path, filled lazily by producedVariables. */
  readonly produced: Map<string, ReadonlySet<string> | undefined>;
  /** Names of the declared pipeline variables (`#{variables.<name>}`). */
  readonly pipelineVariables: ReadonlySet<string>;
}

function checkAction(
  decl: PipelineDeclaration,
  here: Declared,
  actionNames: Map<string, number>,
  index: PipelineIndex,
  v: Violations,
): void {
  const { path, decl: action } = here;
  checkName(`${path}.name`, action.name, ACTION_NAME_PATTERN, v);
  if (action.name !== "") {
    const first = actionNames.get(action.name);
    if (first === undefined) actionNames.set(action.name, here.action);
    else v.add(`${path}.name`, `${q(action.name)} is already the name of actions[${first}] in this stage`);
  }

  const spec = checkActionType(here, v);

  if (action.runOrder !== undefined && (action.runOrder < LIMITS.minRunOrder || action.runOrder > LIMITS.maxRunOrder)) {
    v.add(`${path}.runOrder`, `must be ${LIMITS.minRunOrder}-${LIMITS.maxRunOrder}, got ${action.runOrder}`);
  }

  checkConfiguration(here, spec, v);
  checkCommands(here, spec, v);
  checkInputArtifacts(here, index.outputs, v);
  checkOutputArtifacts(here, spec, index.outputs, v);
  if (spec !== undefined) {
    checkArtifactCount(`${path}.inputArtifacts`, spec, "input", spec.inputArtifacts, action.inputArtifacts.length, v);
    checkArtifactCount(`${path}.outputArtifacts`, spec, "output", spec.outputArtifacts, action.outputArtifacts.length, v);
  }
  checkOutputVariables(here, spec, v);
  checkEnvironmentVariables(here, spec, v);
  checkNamespace(here, index, v);

  if (action.timeoutInMinutes !== undefined) {
    if (action.actionTypeId?.category !== "Approval") {
      v.add(`${path}.timeoutInMinutes`, "only Approval actions take a timeout");
    } else if (action.timeoutInMinutes < LIMITS.minTimeoutInMinutes || action.timeoutInMinutes > LIMITS.maxTimeoutInMinutes) {
      v.add(
        `${path}.timeoutInMinutes`,
        `must be ${LIMITS.minTimeoutInMinutes}-${LIMITS.maxTimeoutInMinutes} minutes, got ${action.timeoutInMinutes}`,
      );
    }
  }
  checkRoleArn(`${path}.roleArn`, action.roleArn, v);
  if (action.region !== "") {
    if (action.region.length < LIMITS.minRegionLength || action.region.length > LIMITS.maxRegionLength) {
      v.add(`${path}.region`, `must be ${LIMITS.minRegionLength}-${LIMITS.maxRegionLength} characters`);
    } else if (Object.keys(decl.artifactStores).length > 0 && !Object.hasOwn(decl.artifactStores, action.region)) {
      v.add(`${path}.region`, `artifactStores has no store for region ${q(action.region)}`);
    }
  }

  for (const [key, value] of Object.entries(action.configuration)) {
    checkReferences(keyPath(`${path}.configuration`, key), value, here, index, v);
  }
  action.environmentVariables.forEach((env, e) => {
    // A SECRET is literal: never resolved, and never quoted back in an error.
    if (env.type !== SECRET_ENV_TYPE) checkReferences(`${path}.environmentVariables[${e}].value`, env.value, here, index, v);
  });
}

/** Checks actionTypeId and its place in the pipeline; returns the provider when Sluice runs it. */
function checkActionType(here: Declared, v: Violations): ProviderSpec | undefined {
  const path = `${here.path}.actionTypeId`;
  const type = here.decl.actionTypeId;
  if (type === undefined) {
    v.add(path, "is required");
    return undefined;
  }
  const { category, owner, provider, version } = type;
  let ok = true;
  if (category === "") {
    v.add(`${path}.category`, "is required");
    ok = false;
  } else if (!(ACTION_CATEGORIES as readonly string[]).includes(category)) {
    v.add(`${path}.category`, `must be one of ${ACTION_CATEGORIES.join(", ")}, got ${q(category)}`);
    ok = false;
  } else if (here.stage === 0 && category !== "Source") {
    v.add(`${path}.category`, `the first stage holds only Source actions, got ${q(category)}`);
  } else if (here.stage > 0 && category === "Source") {
    v.add(`${path}.category`, "Source actions belong in the first stage only");
  }
  if (owner === "") {
    v.add(`${path}.owner`, "is required");
    ok = false;
  } else if (!(ACTION_OWNERS as readonly string[]).includes(owner)) {
    v.add(`${path}.owner`, `must be one of ${ACTION_OWNERS.join(", ")}, got ${q(owner)}`);
    ok = false;
  } else if (owner === "Custom") {
    v.add(`${path}.owner`, "custom action types are not supported yet; use a built-in provider");
    ok = false;
  }
  if (provider === "") {
    v.add(`${path}.provider`, "is required");
    ok = false;
  } else if (!PROVIDER_PATTERN.test(provider)) {
    v.add(`${path}.provider`, `must be 1-35 characters of A-Z a-z 0-9 _ -, got ${q(provider)}`);
    ok = false;
  }
  if (version === "") {
    v.add(`${path}.version`, "is required");
    ok = false;
  } else if (!PROVIDER_VERSION_PATTERN.test(version)) {
    v.add(`${path}.version`, `must be 1-9 characters of A-Z a-z 0-9 _ -, got ${q(version)}`);
    ok = false;
  }
  if (!ok) return undefined;

  const key = providerKey(category, provider);
  const spec = Object.hasOwn(BUILT_IN_PROVIDERS, key) ? BUILT_IN_PROVIDERS[key] : undefined;
  if (spec === undefined) {
    const supported = supportedProviders(category);
    v.add(
      `${path}.provider`,
      supported.length === 0
        ? `${q(provider)} is not supported: Sluice runs no ${category} actions yet`
        : `${q(provider)} is not a ${category} provider Sluice runs; supported: ${supported.join(", ")}`,
    );
    return undefined;
  }
  if (spec.owner !== owner) {
    v.add(`${path}.owner`, `${spec.key} is owned by ${q(spec.owner)}, got ${q(owner)}`);
    return undefined;
  }
  if (spec.version !== version) {
    v.add(`${path}.version`, `${spec.key} has version ${q(spec.version)} only, got ${q(version)}`);
    return undefined;
  }
  return resolveProvider(type);
}

function checkConfiguration(here: Declared, spec: ProviderSpec | undefined, v: Violations): void {
  const base = `${here.path}.configuration`;
  const configuration = here.decl.configuration;
  for (const [key, value] of Object.entries(configuration)) {
    const path = keyPath(base, key);
    if (key.length < 1 || key.length > LIMITS.maxConfigurationKeyLength) {
      v.add(path, `configuration keys must be 1-${LIMITS.maxConfigurationKeyLength} characters`);
      continue;
    }
    if (value.length < 1 || value.length > LIMITS.maxConfigurationValueLength) {
      v.add(path, `must be 1-${LIMITS.maxConfigurationValueLength} characters, got ${value.length}`);
      continue;
    }
    if (spec === undefined) continue;
    const property = Object.hasOwn(spec.configuration, key) ? spec.configuration[key] : undefined;
    if (property === undefined) {
      v.add(path, `${spec.key} has no configuration ${q(key)}; it takes ${Object.keys(spec.configuration).join(", ")}`);
      continue;
    }
    const problem = formatProblem(property.format, value);
    if (problem !== undefined) v.add(path, problem);
  }
  if (spec === undefined) return;
  for (const key of spec.requiredConfiguration) {
    if (Object.hasOwn(configuration, key)) continue;
    v.add(keyPath(base, key), requiredConfigurationMessage(spec, key, configuration));
  }
  if (spec.builtIn === "ObjectStore" && configuration["Extract"] === "false" && !Object.hasOwn(configuration, "ObjectKey")) {
    v.add(`${base}.ObjectKey`, "is required when Extract is false: name the object the artifact is stored as");
  }
}

function requiredConfigurationMessage(spec: ProviderSpec, key: string, configuration: Readonly<Record<string, string>>): string {
  if (key !== "RepositoryUrl") return `is required by ${spec.key}`;
  if (!spec.alias) return "is required: the git URL to clone (https, ssh, git, file or user@host:path)";
  // Help the user of an AWS file: say why, and suggest the URL when it is knowable.
  const owner = configuration["Owner"];
  const repo = configuration["Repo"];
  const hint =
    spec.provider === "GitHub" && nonEmpty(owner) && nonEmpty(repo) ? ` (e.g. ${q(`https://github.com/${owner}/${repo}.git`)})` : "";
  return `is required: Sluice runs ${spec.key} as a Git source and cannot resolve the repository from AWS settings; add the git URL to clone${hint}`;
}

function formatProblem(format: ConfigurationFormat, value: string): string | undefined {
  switch (format) {
    case "text":
      return undefined;
    case "git-url":
      // The poller and the runner read it as written, so no variables here.
      if (value.includes("#{")) return "cannot use variables: the repository is read before any execution exists";
      return GIT_URL_PATTERN.test(value) && !value.startsWith("-")
        ? undefined
        : `${q(value)} is not a git URL Sluice clones (use https://, ssh://, git://, file:// or user@host:path)`;
    case "git-branch":
      return isBranchName(value) ? undefined : `${q(value)} is not a valid branch name`;
    case "boolean":
      return value === "true" || value === "false" ? undefined : `must be "true" or "false", got ${q(value)}`;
    case "bucket-name":
      if (value.includes("#{")) return undefined; // checked once the variable is resolved
      return BUCKET_NAME_PATTERN.test(value) ? undefined : bucketMessage(value);
    case "code-zip":
      return value === "CODE_ZIP" ? undefined : `Sluice produces "CODE_ZIP" artifacts only, got ${q(value)}`;
    case "commands": {
      const count = splitCommands(value).length;
      if (count === 0) return "lists no commands";
      return count > LIMITS.maxCommands ? `at most ${LIMITS.maxCommands} commands, got ${count}` : undefined;
    }
  }
}

/** Git ref rules that matter here: nothing git could read as an option or a range. */
function isBranchName(value: string): boolean {
  return (
    GIT_BRANCH_CHARS.test(value) &&
    !value.startsWith("-") &&
    !value.startsWith("/") &&
    !value.startsWith(".") &&
    !value.endsWith("/") &&
    !value.endsWith(".") &&
    !value.endsWith(".lock") &&
    !value.includes("..") &&
    !value.includes("//") &&
    !value.includes("/.")
  );
}

function checkCommands(here: Declared, spec: ProviderSpec | undefined, v: Violations): void {
  const { path, decl: action } = here;
  const commands = action.commands;
  if (commands.length > LIMITS.maxCommands) {
    v.add(`${path}.commands`, `at most ${LIMITS.maxCommands} commands, got ${commands.length}`);
  }
  commands.forEach((command, c) => {
    if (command.length < 1 || command.length > LIMITS.maxCommandLength) {
      v.add(`${path}.commands[${c}]`, `must be 1-${LIMITS.maxCommandLength} characters, got ${command.length}`);
    }
  });
  // References go to the shell as variables; a quoting context where that is impossible is refused now.
  const bound = bindShellReferences(commands);
  if (!bound.ok) v.add(`${path}.commands[${bound.piece}]`, bound.message);
  const configured = action.configuration["Commands"];
  const boundConfigured = configured === undefined ? undefined : bindShellReferences([configured]);
  if (boundConfigured?.ok === false) v.add(`${path}.configuration.Commands`, boundConfigured.message);
  if (spec === undefined) return;
  const inConfiguration = Object.hasOwn(action.configuration, "Commands");
  switch (spec.commands) {
    case "none":
      if (commands.length > 0) v.add(`${path}.commands`, `only Commands actions run commands; ${spec.key} does not`);
      return;
    case "list":
      if (commands.length === 0) {
        v.add(
          `${path}.commands`,
          `is required: Sluice runs ${spec.key} as a Commands action and cannot run CodeBuild projects; list the shell commands to run`,
        );
      }
      return;
    case "list-or-configuration":
      if (commands.length === 0 && !inConfiguration) {
        v.add(`${path}.commands`, "is required: list the shell commands to run (or give them in configuration.Commands)");
      } else if (commands.length > 0 && inConfiguration) {
        v.add(`${path}.configuration.Commands`, "give the commands either in commands or in configuration.Commands, not both");
      }
      return;
  }
}

function checkInputArtifacts(here: Declared, outputs: ReadonlyMap<string, Declared>, v: Violations): void {
  const seen = new Set<string>();
  here.decl.inputArtifacts.forEach((input, i) => {
    const path = `${here.path}.inputArtifacts[${i}].name`;
    if (!checkArtifactName(path, input.name, v)) return;
    if (seen.has(input.name)) {
      v.add(path, `${q(input.name)} is listed twice`);
      return;
    }
    seen.add(input.name);
    const producer = outputs.get(input.name);
    if (producer === undefined || !runsBefore(producer, here)) {
      v.add(path, `${q(input.name)} is not produced by an earlier action`);
    }
  });
}

function checkOutputArtifacts(
  here: Declared,
  spec: ProviderSpec | undefined,
  outputs: ReadonlyMap<string, Declared>,
  v: Violations,
): void {
  const seen = new Set<string>();
  here.decl.outputArtifacts.forEach((output, o) => {
    const path = `${here.path}.outputArtifacts[${o}]`;
    if (checkArtifactName(`${path}.name`, output.name, v)) {
      const first = outputs.get(output.name);
      if (first !== undefined && first.path !== here.path) {
        v.add(`${path}.name`, `${q(output.name)} is already produced by ${describe(first)}`);
      } else if (seen.has(output.name)) {
        v.add(`${path}.name`, `${q(output.name)} is listed twice`);
      }
      seen.add(output.name);
    }
    const files = output.files;
    if (files.length === 0) return;
    if (spec !== undefined && spec.builtIn !== "Commands") {
      v.add(`${path}.files`, `only Commands actions choose the files of an artifact; ${spec.key} does not`);
      return;
    }
    if (files.length > LIMITS.maxOutputFiles) {
      v.add(`${path}.files`, `at most ${LIMITS.maxOutputFiles} entries, got ${files.length}`);
    }
    files.forEach((file, f) => {
      if (file.length < 1 || file.length > LIMITS.maxOutputFileLength) {
        v.add(`${path}.files[${f}]`, `must be 1-${LIMITS.maxOutputFileLength} characters, got ${file.length}`);
      } else if (!isRelativePath(file)) {
        v.add(`${path}.files[${f}]`, `${q(file)} must be a relative path inside the workspace`);
      }
    });
  });
}

function isRelativePath(file: string): boolean {
  if (file.startsWith("/") || file.includes("\\") || file.includes("\0") || /^[A-Za-z]:/.test(file)) return false;
  return !file.split("/").includes("..");
}

function checkArtifactCount(
  path: string,
  spec: ProviderSpec,
  kind: "input" | "output",
  bounds: ArtifactBounds,
  count: number,
  v: Violations,
): void {
  if (count >= bounds.min && count <= bounds.max) return;
  const range =
    bounds.max === 0
      ? `no ${kind} artifacts`
      : bounds.min === bounds.max
        ? `exactly ${bounds.min} ${kind} artifact${bounds.min === 1 ? "" : "s"}`
        : `${bounds.min} to ${bounds.max} ${kind} artifacts`;
  v.add(path, `${spec.key} takes ${range}, got ${count}`);
}

function checkOutputVariables(here: Declared, spec: ProviderSpec | undefined, v: Violations): void {
  const path = `${here.path}.outputVariables`;
  const names = here.decl.outputVariables;
  if (names.length === 0) return;
  if (spec !== undefined && spec.outputVariables !== "declared") {
    v.add(path, `only Commands actions declare output variables; ${spec.key} does not`);
    return;
  }
  if (names.length > LIMITS.maxOutputVariables) {
    v.add(path, `at most ${LIMITS.maxOutputVariables} output variables, got ${names.length}`);
  }
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (!OUTPUT_VARIABLE_PATTERN.test(name)) {
      v.add(`${path}[${i}]`, `${q(name)} must be a shell variable name (1-128 characters of A-Z a-z 0-9 _, not starting with a digit)`);
    } else if (seen.has(name)) {
      v.add(`${path}[${i}]`, `${q(name)} is listed twice`);
    }
    seen.add(name);
  });
}

function checkEnvironmentVariables(here: Declared, spec: ProviderSpec | undefined, v: Violations): void {
  const path = `${here.path}.environmentVariables`;
  const vars = here.decl.environmentVariables;
  if (vars.length === 0) return;
  if (spec !== undefined && spec.commands === "none") {
    v.add(path, `only Commands actions take environment variables; ${spec.key} does not`);
    return;
  }
  if (vars.length > LIMITS.maxEnvironmentVariables) {
    v.add(path, `at most ${LIMITS.maxEnvironmentVariables} environment variables, got ${vars.length}`);
  }
  const seen = new Set<string>();
  vars.forEach((env, e) => {
    const at = `${path}[${e}]`;
    if (env.name === "") v.add(`${at}.name`, "is required");
    else if (!ENV_VAR_NAME_PATTERN.test(env.name)) v.add(`${at}.name`, `must be 1-128 characters of A-Z a-z 0-9 _, got ${q(env.name)}`);
    else if (seen.has(env.name)) v.add(`${at}.name`, `${q(env.name)} is listed twice`);
    else if (env.name.startsWith(RESERVED_ENV_PREFIX)) v.add(`${at}.name`, `${q(env.name)}: names starting with ${RESERVED_ENV_PREFIX} are reserved for the runner`);
    seen.add(env.name);
    if (env.value.length < 1 || env.value.length > LIMITS.maxEnvironmentVariableValueLength) {
      v.add(`${at}.value`, `must be 1-${LIMITS.maxEnvironmentVariableValueLength} characters, got ${env.value.length}`);
    }
    if (env.type === "SECRETS_MANAGER") {
      v.add(`${at}.type`, "SECRETS_MANAGER is not supported yet: Sluice has no secrets store; use PLAINTEXT");
    } else if (env.type === SECRET_ENV_TYPE) {
      if (env.value.length > 0 && env.value.length < MIN_SECRET_LENGTH) v.add(`${at}.value`, `a SECRET must be at least ${MIN_SECRET_LENGTH} characters (shorter ones would be masked wherever those characters occur)`);
    } else if (env.type !== "" && env.type !== "PLAINTEXT") {
      v.add(`${at}.type`, `must be PLAINTEXT or SECRET, got ${q(env.type)}`);
    }
  });
}

function checkNamespace(here: Declared, index: PipelineIndex, v: Violations): void {
  const namespace = here.decl.namespace;
  if (namespace === "") return;
  const path = `${here.path}.namespace`;
  if (!NAMESPACE_PATTERN.test(namespace)) {
    v.add(path, `must be 1-100 characters of A-Z a-z 0-9 @ _ - (no dot), got ${q(namespace)}`);
  } else if (RESERVED_NAMESPACES.includes(namespace)) {
    v.add(path, `${q(namespace)} is reserved`);
  } else if (index.namespaces.get(namespace)?.path !== here.path) {
    const first = index.namespaces.get(namespace);
    v.add(path, `${q(namespace)} is already the namespace of ${first === undefined ? "another action" : describe(first)}`);
  } else if (index.artifactNames.has(namespace)) {
    v.add(path, `${q(namespace)} is also an artifact name; namespaces and artifact names must differ`);
  }
}

/** Checks every `#{namespace.key}` in a value: the namespace must belong to an action that runs earlier. */
export function checkReferences(
  path: string,
  value: string,
  here: Position,
  index: PipelineIndex,
  v: Violations,
  subject = "this action",
): void {
  if (!value.includes("#{")) return;
  for (const match of value.matchAll(VARIABLE_REFERENCE)) {
    const inner = match[1] ?? "";
    const reference = q(`#{${inner}}`);
    const dot = inner.indexOf(".");
    const namespace = dot < 0 ? "" : inner.slice(0, dot);
    const key = dot < 0 ? "" : inner.slice(dot + 1);
    if (!NAMESPACE_PATTERN.test(namespace) || !VARIABLE_KEY_PATTERN.test(key)) {
      v.add(path, `${reference} is not a variable reference; write #{namespace.variable}`);
      continue;
    }
    if (namespace === "codepipeline") {
      if (!PIPELINE_VARIABLES.includes(key)) {
        v.add(path, `${reference}: the codepipeline namespace has ${PIPELINE_VARIABLES.join(", ")} only`);
      }
      continue;
    }
    if (namespace === "variables") {
      if (!index.pipelineVariables.has(key)) {
        v.add(
          path,
          index.pipelineVariables.size === 0
            ? `${reference}: the pipeline declares no variables`
            : `${reference}: the pipeline declares ${listed(index.pipelineVariables)}, not ${q(key)}`,
        );
      }
      continue;
    }
    const producer = index.namespaces.get(namespace);
    if (producer === undefined) {
      v.add(path, `${reference}: no action has the namespace ${q(namespace)}`);
      continue;
    }
    if (!runsBefore(producer, here)) {
      v.add(path, `${reference}: ${describe(producer)} does not run before ${subject}`);
      continue;
    }
    const produced = producedVariables(producer, index);
    if (produced !== undefined && !produced.has(key)) {
      v.add(
        path,
        produced.size === 0
          ? `${reference}: ${describe(producer)} produces no variables`
          : `${reference}: ${describe(producer)} produces ${listed(produced)}, not ${q(key)}`,
      );
    }
  }
}

/** The variables an action produces, or undefined when unknown (its type is not one Sluice runs). */
function producedVariables(producer: Declared, index: PipelineIndex): ReadonlySet<string> | undefined {
  // Cached per validation run: a Set keeps many references to a large producer linear.
  if (index.produced.has(producer.path)) return index.produced.get(producer.path);
  const spec = resolveProvider(producer.decl.actionTypeId);
  const names = spec === undefined ? undefined : spec.outputVariables === "declared" ? producer.decl.outputVariables : spec.outputVariables;
  const produced = names === undefined ? undefined : new Set(names);
  index.produced.set(producer.path, produced);
  return produced;
}

/** A point in the pipeline: stage index and runOrder (a rule checked after the stage's actions has an infinite one). */
export type Position = Pick<Declared, "stage" | "runOrder">;

/** True when `earlier` is guaranteed to finish before `later` starts. */
export function runsBefore(earlier: Position, later: Position): boolean {
  return earlier.stage < later.stage || (earlier.stage === later.stage && earlier.runOrder < later.runOrder);
}

export function describe(at: Declared): string {
  return `action ${q(at.actionName)} in stage ${q(at.stageName)}`;
}

export function checkName(path: string, name: string, pattern: RegExp, v: Violations): void {
  if (name === "") v.add(path, "is required");
  else if (!pattern.test(name)) v.add(path, `must be ${NAME_RULE}, got ${q(name)}`);
}

export function checkArtifactName(path: string, name: string, v: Violations): boolean {
  if (name === "") {
    v.add(path, "is required");
    return false;
  }
  if (!ARTIFACT_NAME_PATTERN.test(name)) {
    v.add(path, `must be 1-100 characters of A-Z a-z 0-9 _ -, got ${q(name)}`);
    return false;
  }
  return true;
}

export function checkRoleArn(path: string, arn: string, v: Violations): void {
  if (arn === "") return; // optional in Sluice: IAM roles mean nothing here
  if (arn.length > LIMITS.maxRoleArnLength || !ROLE_ARN_PATTERN.test(arn)) {
    v.add(path, `must be an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>), got ${q(arn)}`);
  }
}

function bucketMessage(value: string): string {
  return `${q(value)} is not a bucket name: 3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit`;
}

/** A list for a message, cut after 15 entries (the most output variables an action may declare). */
function listed(names: ReadonlySet<string>): string {
  const shown: string[] = [];
  for (const name of names) {
    if (shown.length === LIMITS.maxOutputVariables) return `${shown.join(", ")}, ...`;
    shown.push(name.length > 100 ? `${name.slice(0, 100)}...` : name);
  }
  return shown.join(", ");
}

/** `base.key` for plain keys, `base["odd key"]` otherwise, so every path is unambiguous. */
export function keyPath(base: string, key: string): string {
  return SIMPLE_KEY.test(key) ? `${base}.${key}` : `${base}[${q(key)}]`;
}

/** A user value quoted for a message, cut at 100 characters so messages stay short. */
export function q(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value);
}

function nonEmpty(value: string | undefined): boolean {
  return value !== undefined && value !== "";
}
