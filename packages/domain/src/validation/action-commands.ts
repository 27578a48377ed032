// What only Commands actions take: shell commands (a list, configuration.Commands
// or a buildspec), environment variables and output variables.

import { ENV_VAR_NAME_PATTERN, LIMITS, OUTPUT_VARIABLE_PATTERN } from "../limits.js";
import { MIN_SECRET_LENGTH, SECRET_ENV_TYPE } from "../limits.js";
import { RESERVED_ENV_PREFIX, bindShellReferences } from "../execution/shell-references.js";
import { BUILD_SPEC_KEY, buildSpecOutputProblems, buildSpecPathProblem, buildSpecReferenceProblem, buildSpecSourceOf, parseBuildSpec } from "./buildspec.js";
import { q } from "./messages.js";
import type { Declared } from "./positions.js";
import type { ProviderSpec } from "./providers.js";
import type { Violations } from "./violations.js";

export function checkCommands(here: Declared, spec: ProviderSpec | undefined, v: Violations): void {
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
  const buildSpec = spec.commands === "none" ? undefined : action.configuration[BUILD_SPEC_KEY];
  if (buildSpec !== undefined) {
    checkBuildSpec(here, buildSpec, v);
    if (commands.length > 0) v.add(`${path}.configuration.${BUILD_SPEC_KEY}`, "give either the commands list or a BuildSpec, not both");
    if (inConfiguration) v.add(`${path}.configuration.${BUILD_SPEC_KEY}`, "give either configuration.Commands or a BuildSpec, not both");
    return;
  }
  switch (spec.commands) {
    case "none":
      if (commands.length > 0) v.add(`${path}.commands`, `only Commands actions run commands; ${spec.key} does not`);
      return;
    case "list":
      if (commands.length === 0) {
        v.add(
          `${path}.commands`,
          `is required: Sluice runs ${spec.key} as a Commands action and cannot run CodeBuild projects; list the shell commands to run (or give a buildspec in configuration.BuildSpec)`,
        );
      }
      return;
    case "list-or-configuration":
      if (commands.length === 0 && !inConfiguration) {
        v.add(`${path}.commands`, "is required: list the shell commands to run (or give them in configuration.Commands, or a buildspec in configuration.BuildSpec)");
      } else if (commands.length > 0 && inConfiguration) {
        v.add(`${path}.configuration.Commands`, "give the commands either in commands or in configuration.Commands, not both");
      }
      return;
  }
}

/**
 * `configuration.BuildSpec`: an inline buildspec is judged now, field by field; a file path only
 * for its shape (the runner judges the file when the job runs). Neither may hold `#{…}`
 * references: configuration values are resolved as text, which would paste values into commands.
 */
function checkBuildSpec(here: Declared, value: string, v: Violations): void {
  const field = `${here.path}.configuration.${BUILD_SPEC_KEY}`;
  const references = buildSpecReferenceProblem(value);
  if (references !== undefined) v.add(field, references);
  const source = buildSpecSourceOf(value);
  if (source.kind === "file") {
    const problem = buildSpecPathProblem(source.path);
    if (problem !== undefined) v.add(field, problem);
    return;
  }
  const parsed = parseBuildSpec(source.text, field);
  if (!parsed.ok) {
    for (const violation of parsed.violations) v.add(violation.field, violation.message);
    return;
  }
  const outputs = here.decl.outputArtifacts.map((o) => ({ name: o.name, files: o.files }));
  for (const violation of buildSpecOutputProblems(parsed.spec, outputs, field, `${here.path}.outputArtifacts`)) v.add(violation.field, violation.message);
  const names = new Set([...here.decl.outputVariables, ...parsed.spec.exportedVariables]);
  if (names.size > LIMITS.maxOutputVariables) {
    v.add(`${field}.env.exported-variables`, `with outputVariables the action has ${names.size} output variables; at most ${LIMITS.maxOutputVariables}`);
  }
}

export function checkOutputVariables(here: Declared, spec: ProviderSpec | undefined, v: Violations): void {
  const path = `${here.path}.outputVariables`;
  const names = here.decl.outputVariables;
  if (names.length === 0) return;
  if (spec !== undefined && spec.outputVariables !== "declared") {
    v.add(path, `only Commands actions declare output variables; ${spec.key} does not${spec.outputVariables === "any" ? " (its job worker reports them)" : ""}`);
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

export function checkEnvironmentVariables(here: Declared, spec: ProviderSpec | undefined, v: Violations): void {
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
