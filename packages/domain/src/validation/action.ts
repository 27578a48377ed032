// One action: its name, type, run order, timeout, region and namespace, and
// the checks of its configuration, commands, artifacts and variables.

import type { PipelineDeclaration } from "@sluice/proto";
import { ACTION_CATEGORIES, ACTION_NAME_PATTERN, ACTION_OWNERS, LIMITS, NAMESPACE_PATTERN, PROVIDER_PATTERN, PROVIDER_VERSION_PATTERN, RESERVED_NAMESPACES } from "../limits.js";
import { SECRET_ENV_TYPE } from "../limits.js";
import { checkArtifactCount, checkInputArtifacts, checkOutputArtifacts } from "./action-artifacts.js";
import { checkCommands, checkEnvironmentVariables, checkOutputVariables } from "./action-commands.js";
import { checkConfiguration } from "./action-configuration.js";
import { customActionTypeKey } from "./custom-action-types.js";
import { keyPath, q } from "./messages.js";
import { checkName, checkRoleArn } from "./names.js";
import { describe } from "./positions.js";
import type { Declared, PipelineIndex } from "./positions.js";
import { BUILT_IN_PROVIDERS, providerKey, resolveProvider, supportedProviders } from "./providers.js";
import type { ProviderSpec } from "./providers.js";
import { checkReferences } from "./references.js";
import type { Violations } from "./violations.js";

export function checkAction(
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

  const spec = checkActionType(here, index, v);

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
function checkActionType(here: Declared, index: PipelineIndex, v: Violations): ProviderSpec | undefined {
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
  if (owner === "Custom") return checkCustomType(path, type, index, v);

  const key = providerKey(category, provider);
  const spec = Object.hasOwn(BUILT_IN_PROVIDERS, key) ? BUILT_IN_PROVIDERS[key] : undefined;
  if (spec === undefined) {
    const supported = supportedProviders(category);
    v.add(
      `${path}.provider`,
      supported.length === 0
        ? `${q(provider)} is not supported: Sluice runs no ${category} actions yet`
        : `${q(provider)} is not ${/^[AEIOU]/.test(category) ? "an" : "a"} ${category} provider Sluice runs; supported: ${supported.join(", ")}`,
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

/** A custom action type must be declared (CreateCustomActionType) and not deleted. */
function checkCustomType(path: string, type: { category: string; provider: string; version: string }, index: PipelineIndex, v: Violations): ProviderSpec | undefined {
  const spec = index.customActionType(type);
  if (spec === undefined) {
    v.add(
      `${path}.provider`,
      `custom action type ${customActionTypeKey(type)} is not declared (or was deleted): declare it with CreateCustomActionType`,
    );
  }
  return spec;
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
