// Validation of stage conditions (AWS BeforeEntryConditions, SuccessConditions,
// FailureConditions) and their rules: AWS's shapes and limits for conditions,
// which results each kind allows, and which rule providers exist.
//
// Conditions, automatic retry and rollback are V2 "release safety" features
// on AWS. Whether AWS rejects them on V1 pipelines is not documented;
// Sluice accepts them on any pipelineType rather than
// refuse a file that AWS might run.

import { bindShellReferences } from "../execution/shell-references.js";
import type { PipelineDeclaration, StageDeclaration } from "@sluice/proto";
import { compileSafePattern } from "../execution/safe-regex.js";
import {
  ACTION_NAME_PATTERN,
  AWS_RULE_PROVIDERS,
  LIMITS,
  PROVIDER_PATTERN,
  STAGE_RETRY_MODES,
  SUPPORTED_RULE_PROVIDERS,
  VARIABLE_CHECK_OPERATORS,
} from "../limits.js";
import { keyPath, q } from "./messages.js";
import { checkArtifactName, checkName, checkRoleArn } from "./names.js";
import { runsBefore } from "./positions.js";
import type { PipelineIndex, Position } from "./positions.js";
import { checkReferences } from "./references.js";
import type { Violations } from "./violations.js";

/** The fields of a RuleDeclaration Sluice reads (the protobuf message has these names). */
export interface RuleDeclarationLike {
  readonly name: string;
  readonly ruleTypeId?: { readonly category: string; readonly owner: string; readonly provider: string; readonly version: string } | undefined;
  readonly configuration: Readonly<Record<string, string>>;
  readonly commands: readonly string[];
  readonly inputArtifacts: readonly { readonly name: string }[];
  readonly roleArn: string;
  readonly region: string;
  readonly timeoutInMinutes?: number | undefined;
}

/** The fields of a Condition. */
export interface ConditionDeclarationLike {
  readonly result: string;
  readonly rules: readonly RuleDeclarationLike[];
}

/** The fields of BeforeEntryConditions / SuccessConditions (conditions only) and FailureConditions. */
export interface StageConditionsDeclarationLike {
  readonly result?: string;
  readonly retryConfiguration?: { readonly retryMode: string } | undefined;
  readonly conditions: readonly ConditionDeclarationLike[];
}

/** A stage's condition fields (StageDeclaration.beforeEntry, onSuccess, onFailure). */
export interface StageConditionFields {
  readonly beforeEntry?: StageConditionsDeclarationLike | undefined;
  readonly onSuccess?: StageConditionsDeclarationLike | undefined;
  readonly onFailure?: StageConditionsDeclarationLike | undefined;
}

/** The condition fields of a stage declaration (absent ones are undefined). */
export function stageConditionFields(stage: StageDeclaration): StageConditionFields {
  return { beforeEntry: stage.beforeEntry, onSuccess: stage.onSuccess, onFailure: stage.onFailure };
}

type Kind = "beforeEntry" | "onSuccess" | "onFailure";

/** The condition results AWS allows per kind. */
const RESULTS: Readonly<Record<Kind, readonly string[]>> = {
  beforeEntry: ["FAIL", "SKIP"],
  onSuccess: ["FAIL", "ROLLBACK"],
  onFailure: ["ROLLBACK"],
};

const VARIABLE_CHECK_KEYS = ["Variable", "Value", "Operator"] as const;
const REFERENCE = /#\{[^{}]*\}/;

/**
 * Checks a stage's beforeEntry, onSuccess and onFailure. `ruleNames` maps
 * every rule name seen so far in the pipeline to its path (rule names are
 * unique per pipeline).
 */
export function checkStageConditions(
  decl: PipelineDeclaration,
  stage: StageDeclaration,
  s: number,
  ruleNames: Map<string, string>,
  index: PipelineIndex,
  v: Violations,
): void {
  const fields = stageConditionFields(stage);
  const base = `pipeline.stages[${s}]`;
  for (const kind of ["beforeEntry", "onSuccess", "onFailure"] as const) {
    const conditions = fields[kind];
    if (conditions === undefined) continue;
    const path = `${base}.${kind}`;
    if (kind === "onFailure") checkFailureResult(decl, conditions, s, path, v);
    const count = conditions.conditions.length;
    if (kind !== "onFailure" && count !== 1) v.add(`${path}.conditions`, `must hold exactly 1 condition, got ${count}`);
    if (kind === "onFailure" && count > 1) v.add(`${path}.conditions`, `holds at most 1 condition, got ${count}`);
    // Rules of beforeEntry see only earlier stages; rules after the actions see this stage's too.
    const at: Position = { stage: s, runOrder: kind === "beforeEntry" ? 0 : Number.MAX_SAFE_INTEGER };
    conditions.conditions.forEach((condition, c) => {
      checkCondition(decl, kind, condition, s, `${path}.conditions[${c}]`, at, ruleNames, index, v);
    });
  }
}

/** FailureConditions.result / retryConfiguration: ROLLBACK, or RETRY with a retry mode and no conditions. */
function checkFailureResult(decl: PipelineDeclaration, conditions: StageConditionsDeclarationLike, s: number, path: string, v: Violations): void {
  const result = conditions.result ?? "";
  const retry = conditions.retryConfiguration;
  if (result !== "" && result !== "ROLLBACK" && result !== "RETRY") {
    v.add(`${path}.result`, `onFailure takes ROLLBACK or RETRY, got ${q(result)}`);
  }
  if (result === "" && conditions.conditions.length === 0) {
    v.add(path, "give a result (ROLLBACK or RETRY) or a condition");
  }
  if (result === "ROLLBACK") checkRollbackAllowed(decl, s, `${path}.result`, v);
  if (result === "RETRY") {
    if (conditions.conditions.length > 0) {
      v.add(`${path}.conditions`, "automatic retry (result RETRY) cannot be combined with onFailure conditions");
    }
    if (retry === undefined) {
      v.add(`${path}.retryConfiguration`, "is required with result RETRY: give retryMode FAILED_ACTIONS or ALL_ACTIONS");
    }
  } else if (retry !== undefined) {
    v.add(`${path}.retryConfiguration`, "only applies with result RETRY");
  }
  if (retry !== undefined && !(STAGE_RETRY_MODES as readonly string[]).includes(retry.retryMode)) {
    v.add(`${path}.retryConfiguration.retryMode`, `must be ${STAGE_RETRY_MODES.join(" or ")}, got ${q(retry.retryMode)}`);
  }
}

/** Rollback reruns a stage with an earlier execution's inputs: not the source stage, not in PARALLEL mode. */
function checkRollbackAllowed(decl: PipelineDeclaration, s: number, path: string, v: Violations): void {
  if (s === 0) v.add(path, "the first stage cannot be rolled back: it holds the source actions");
  if (decl.executionMode === "PARALLEL") v.add(path, "PARALLEL pipelines cannot roll back (use SUPERSEDED or QUEUED)");
}

function checkCondition(
  decl: PipelineDeclaration,
  kind: Kind,
  condition: ConditionDeclarationLike,
  s: number,
  path: string,
  at: Position,
  ruleNames: Map<string, string>,
  index: PipelineIndex,
  v: Violations,
): void {
  const allowed = RESULTS[kind];
  if (condition.result !== "" && !allowed.includes(condition.result)) {
    v.add(`${path}.result`, `a ${kind} condition takes ${allowed.join(" or ")}, got ${q(condition.result)}`);
  }
  if (condition.result === "ROLLBACK") checkRollbackAllowed(decl, s, `${path}.result`, v);
  const rules = condition.rules;
  if (rules.length < LIMITS.minRulesPerCondition || rules.length > LIMITS.maxRulesPerCondition) {
    v.add(`${path}.rules`, `a condition holds ${LIMITS.minRulesPerCondition} to ${LIMITS.maxRulesPerCondition} rules, got ${rules.length}`);
  }
  if (condition.result === "SKIP" && rules.some((r) => r.ruleTypeId?.provider !== "VariableCheck")) {
    // AWS allows SKIP with LambdaInvoke and VariableCheck rules; Sluice runs no LambdaInvoke.
    v.add(`${path}.result`, "SKIP needs every rule of the condition to be a VariableCheck rule");
  }
  rules.forEach((rule, r) => checkRule(rule, `${path}.rules[${r}]`, at, ruleNames, index, v));
}

function checkRule(rule: RuleDeclarationLike, path: string, at: Position, ruleNames: Map<string, string>, index: PipelineIndex, v: Violations): void {
  checkName(`${path}.name`, rule.name, ACTION_NAME_PATTERN, v);
  if (rule.name !== "") {
    const first = ruleNames.get(rule.name);
    if (first === undefined) ruleNames.set(rule.name, path);
    else v.add(`${path}.name`, `${q(rule.name)} is already the name of the rule at ${first}; rule names are unique per pipeline`);
  }
  const provider = checkRuleType(rule, `${path}.ruleTypeId`, v);

  const entries = Object.entries(rule.configuration);
  if (entries.length > LIMITS.maxRuleConfigurationEntries) {
    v.add(`${path}.configuration`, `at most ${LIMITS.maxRuleConfigurationEntries} entries, got ${entries.length}`);
  }
  for (const [key, value] of entries) {
    const at2 = keyPath(`${path}.configuration`, key);
    if (key.length < 1 || key.length > LIMITS.maxConfigurationKeyLength) {
      v.add(at2, `configuration keys must be 1-${LIMITS.maxConfigurationKeyLength} characters`);
    } else if (value.length < 1 || value.length > LIMITS.maxRuleConfigurationValueLength) {
      v.add(at2, `must be 1-${LIMITS.maxRuleConfigurationValueLength} characters, got ${value.length}`);
    } else {
      checkReferences(at2, value, at, index, v, "this rule");
    }
  }
  if (provider === "VariableCheck") checkVariableCheck(rule, path, v);
  if (provider === "Commands") {
    for (const key of Object.keys(rule.configuration)) {
      v.add(keyPath(`${path}.configuration`, key), "Commands rules take no configuration: list the shell commands in commands");
    }
  }
  checkRuleCommands(rule, provider, path, v);
  checkRuleInputs(rule, path, at, index, v);

  checkRoleArn(`${path}.roleArn`, rule.roleArn, v);
  if (rule.region !== "" && (rule.region.length < LIMITS.minRegionLength || rule.region.length > LIMITS.maxRegionLength)) {
    v.add(`${path}.region`, `must be ${LIMITS.minRegionLength}-${LIMITS.maxRegionLength} characters`);
  }
  const timeout = rule.timeoutInMinutes;
  if (timeout !== undefined && (timeout < LIMITS.minTimeoutInMinutes || timeout > LIMITS.maxTimeoutInMinutes)) {
    v.add(`${path}.timeoutInMinutes`, `must be ${LIMITS.minTimeoutInMinutes}-${LIMITS.maxTimeoutInMinutes} minutes, got ${timeout}`);
  }
}

/** Checks ruleTypeId; returns the provider when Sluice runs it. */
function checkRuleType(rule: RuleDeclarationLike, path: string, v: Violations): string | undefined {
  const type = rule.ruleTypeId;
  if (type === undefined) {
    v.add(path, "is required");
    return undefined;
  }
  let ok = true;
  if (type.category !== "Rule") {
    v.add(`${path}.category`, `must be "Rule", got ${q(type.category)}`);
    ok = false;
  }
  // AWS makes owner optional with AWS the only value.
  if (type.owner !== "" && type.owner !== "AWS") {
    v.add(`${path}.owner`, `must be "AWS", got ${q(type.owner)}`);
    ok = false;
  }
  if (type.version !== "1") {
    v.add(`${path}.version`, type.version === "" ? "is required: rule types have version \"1\"" : `rule types have version "1" only, got ${q(type.version)}`);
    ok = false;
  }
  const supported = SUPPORTED_RULE_PROVIDERS.join(", ");
  if (type.provider === "") {
    v.add(`${path}.provider`, `is required; supported rule providers: ${supported}`);
    return undefined;
  }
  if (!PROVIDER_PATTERN.test(type.provider)) {
    v.add(`${path}.provider`, `must be 1-35 characters of A-Z a-z 0-9 _ -, got ${q(type.provider)}`);
    return undefined;
  }
  if (!(SUPPORTED_RULE_PROVIDERS as readonly string[]).includes(type.provider)) {
    v.add(
      `${path}.provider`,
      (AWS_RULE_PROVIDERS as readonly string[]).includes(type.provider)
        ? `${q(type.provider)} rules are not supported by Sluice; supported rule providers: ${supported}`
        : `${q(type.provider)} is not a rule provider; supported rule providers: ${supported}`,
    );
    return undefined;
  }
  return ok ? type.provider : undefined;
}

/** VariableCheck: exactly Variable (a reference), Value and Operator; a MATCHES pattern Sluice can run. */
function checkVariableCheck(rule: RuleDeclarationLike, path: string, v: Violations): void {
  const config = rule.configuration;
  const base = `${path}.configuration`;
  for (const key of Object.keys(config)) {
    if (!(VARIABLE_CHECK_KEYS as readonly string[]).includes(key)) {
      v.add(keyPath(base, key), `VariableCheck has no configuration ${q(key)}; it takes ${VARIABLE_CHECK_KEYS.join(", ")}`);
    }
  }
  for (const key of VARIABLE_CHECK_KEYS) {
    if (!Object.hasOwn(config, key)) v.add(`${base}.${key}`, "is required by VariableCheck");
  }
  const variable = config["Variable"];
  if (variable !== undefined && variable !== "" && !REFERENCE.test(variable)) {
    v.add(`${base}.Variable`, `must reference the variable to check, e.g. "#{SourceVariables.BranchName}", got ${q(variable)}`);
  }
  const operator = config["Operator"];
  if (operator !== undefined && !(VARIABLE_CHECK_OPERATORS as readonly string[]).includes(operator)) {
    v.add(`${base}.Operator`, `must be one of ${VARIABLE_CHECK_OPERATORS.join(", ")}, got ${q(operator)}`);
  }
  const value = config["Value"];
  // A pattern built from variables is checked when it is resolved.
  if (operator === "MATCHES" && value !== undefined && value !== "" && !REFERENCE.test(value)) {
    const compiled = compileSafePattern(value);
    if (!compiled.ok) v.add(`${base}.Value`, `is not a pattern Sluice can match: ${compiled.message}`);
  }
}

function checkRuleCommands(rule: RuleDeclarationLike, provider: string | undefined, path: string, v: Violations): void {
  const commands = rule.commands;
  if (provider === "Commands" && commands.length === 0) v.add(`${path}.commands`, "is required: list the shell commands whose success passes the rule");
  if (provider !== undefined && provider !== "Commands" && commands.length > 0) {
    v.add(`${path}.commands`, `only Commands rules run commands; ${provider} does not`);
  }
  if (commands.length > LIMITS.maxCommands) v.add(`${path}.commands`, `at most ${LIMITS.maxCommands} commands, got ${commands.length}`);
  const bound = bindShellReferences(commands);
  if (!bound.ok) v.add(`${path}.commands[${bound.piece}]`, bound.message);
  commands.forEach((command, c) => {
    if (command.length < 1 || command.length > LIMITS.maxCommandLength) {
      v.add(`${path}.commands[${c}]`, `must be 1-${LIMITS.maxCommandLength} characters, got ${command.length}`);
    }
  });
}

function checkRuleInputs(rule: RuleDeclarationLike, path: string, at: Position, index: PipelineIndex, v: Violations): void {
  const inputs = rule.inputArtifacts;
  if (inputs.length > LIMITS.maxRuleInputArtifacts) {
    v.add(`${path}.inputArtifacts`, `at most ${LIMITS.maxRuleInputArtifacts} input artifacts, got ${inputs.length}`);
  }
  const seen = new Set<string>();
  inputs.forEach((input, i) => {
    const at2 = `${path}.inputArtifacts[${i}].name`;
    if (!checkArtifactName(at2, input.name, v)) return;
    if (seen.has(input.name)) {
      v.add(at2, `${q(input.name)} is listed twice`);
      return;
    }
    seen.add(input.name);
    const producer = index.outputs.get(input.name);
    if (producer === undefined || !runsBefore(producer, at)) {
      v.add(at2, `${q(input.name)} is not produced by an action that runs before this rule`);
    }
  });
}
