// An action's configuration map, judged by the provider Sluice runs it as.

import { BUCKET_NAME_PATTERN, LIMITS } from "../limits.js";
import { bucketMessage, keyPath, q } from "./messages.js";
import type { Declared } from "./positions.js";
import { QUERYABLE_VALUE_PATTERN } from "./custom-action-types.js";
import { runnerPoolProblem, splitCommands } from "./providers.js";
import type { ConfigurationFormat, ProviderSpec } from "./providers.js";
import type { Violations } from "./violations.js";

/** Git URLs Sluice clones. Transports such as `ext::` (runs a command) are deliberately not matched. */
const GIT_URL_PATTERN = /^(?:(?:https?|ssh|git|file):\/\/\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$/;

const GIT_BRANCH_CHARS = /^[A-Za-z0-9._/-]{1,255}$/;

export function checkConfiguration(here: Declared, spec: ProviderSpec | undefined, v: Violations): void {
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
  if (spec.builtIn === "ObjectStore" && spec.category === "Deploy" && configuration["Extract"] === "false" && !Object.hasOwn(configuration, "ObjectKey")) {
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
    case "source-bucket":
      if (value.includes("#{")) return "cannot use variables: the source poller reads the bucket before any execution exists";
      return BUCKET_NAME_PATTERN.test(value) ? undefined : bucketMessage(value);
    case "source-object-key":
      if (value.includes("#{")) return "cannot use variables: the source poller reads the key before any execution exists";
      if (value.startsWith("/")) return `${q(value)} must not start with "/": object keys are relative to the bucket`;
      return value.length > 1024 ? "must be at most 1024 characters (S3's key limit)" : undefined;
    case "code-zip":
      return value === "CODE_ZIP" ? undefined : `Sluice produces "CODE_ZIP" artifacts only, got ${q(value)}`;
    case "http-url":
      return httpUrlProblem(value);
    case "commands": {
      const count = splitCommands(value).length;
      if (count === 0) return "lists no commands";
      return count > LIMITS.maxCommands ? `at most ${LIMITS.maxCommands} commands, got ${count}` : undefined;
    }
    case "number":
      if (value.includes("#{")) return undefined;
      return /^-?\d+(\.\d+)?$/.test(value) ? undefined : `must be a number, got ${q(value)}`;
    case "queryable":
      // PollForJobs filters on it as written, so no variables.
      return QUERYABLE_VALUE_PATTERN.test(value) ? undefined : `is queryable: must be 1-20 characters of A-Z a-z 0-9 _ -, got ${q(value)}`;
    case "runner-pool":
      // The pool picks the job's subject when it is dispatched, before variables are resolved.
      if (value.includes("#{")) return "cannot use variables: the pool is chosen before the job's variables are resolved";
      return runnerPoolProblem(value);
  }
}

/** An absolute http(s) URL; a variable is checked once resolved (the runner refuses a bad one). */
function httpUrlProblem(value: string): string | undefined {
  if (value.includes("#{")) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${q(value)} is not an absolute URL`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `must be an http:// or https:// URL, got ${q(url.protocol)}`;
  if (url.username !== "" || url.password !== "") return "must not carry credentials (user:password@): the runner signs each request instead";
  return undefined;
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

function nonEmpty(value: string | undefined): boolean {
  return value !== undefined && value !== "";
}
