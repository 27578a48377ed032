// Buildspec-style files of Commands actions (CodeBuild's buildspec, version
// 0.2): parsing and validation, shared by the domain (inline buildspecs are
// judged at CreatePipeline/UpdatePipeline) and the action runner (a buildspec
// read from the input artifact is judged when the job runs).
//
// Every scalar is read as text (YAML's failsafe schema): `version: 0.2` stays
// "0.2", `discard-paths: yes` stays "yes", and a command `- true` stays the
// shell's `true` rather than becoming a boolean. Keys Sluice does not know are
// errors naming their path, so a misspelt `biuld` phase is refused instead of
// silently never running.

import { parseDocument } from "yaml";
import type { FieldViolation } from "../errors.js";
import { ARTIFACT_NAME_PATTERN, ENV_VAR_NAME_PATTERN, LIMITS, OUTPUT_VARIABLE_PATTERN, VARIABLE_REFERENCE } from "../limits.js";
import { RESERVED_ENV_PREFIX } from "../execution/shell-references.js";
import { q } from "./messages.js";

/** The phases of a buildspec, in the order they run. */
export const BUILD_SPEC_PHASES = ["install", "pre_build", "build", "post_build"] as const;
/** A value of BUILD_SPEC_PHASES. */
export type BuildSpecPhaseName = (typeof BUILD_SPEC_PHASES)[number];

/** What a phase does when one of its commands fails (CodeBuild's `on-failure`). */
export type BuildSpecOnFailure = "ABORT" | "CONTINUE";

/** One phase: its commands, and the `finally` commands that run after them even when one failed. */
export interface BuildSpecPhase {
  readonly commands: readonly string[];
  readonly finally: readonly string[];
  /** Unset: CodeBuild's transitions (a failed build still runs post_build; other failures end the build). */
  readonly onFailure?: BuildSpecOnFailure;
}

/** One artifact block (`artifacts` or an entry of `secondary-artifacts`). */
export interface BuildSpecArtifact {
  /** Globs relative to `baseDirectory`; empty only for a primary block that only holds secondary artifacts. */
  readonly files: readonly string[];
  /** Relative to the source directory; "" = the source directory itself. */
  readonly baseDirectory: string;
  /** True: the files are stored without their directories. */
  readonly discardPaths: boolean;
  readonly excludePaths: readonly string[];
}

/** A parsed, valid buildspec. */
export interface BuildSpec {
  /** Plain variables (`env.variables`), in file order. */
  readonly variables: readonly { readonly name: string; readonly value: string }[];
  /** `env.exported-variables`: the action's output variables. */
  readonly exportedVariables: readonly string[];
  readonly phases: Readonly<Partial<Record<BuildSpecPhaseName, BuildSpecPhase>>>;
  /** The primary artifact (the action's first output artifact), when the buildspec defines one. */
  readonly artifacts?: BuildSpecArtifact;
  /** `artifacts.secondary-artifacts`, keyed by output artifact name. */
  readonly secondaryArtifacts: Readonly<Record<string, BuildSpecArtifact>>;
}

/** Outcome of {@link parseBuildSpec}. */
export type BuildSpecParse = { ok: true; spec: BuildSpec } | { ok: false; violations: FieldViolation[] };

/** Where a `BuildSpec` configuration value points. */
export type BuildSpecSource = { kind: "inline"; text: string } | { kind: "file"; path: string };

/** The configuration key of a Commands action's buildspec. */
export const BUILD_SPEC_KEY = "BuildSpec";

/** Largest buildspec file the runner reads from an input artifact. */
export const MAX_BUILD_SPEC_FILE_BYTES = 256 * 1024;

/** More aliases than this in one buildspec are refused (YAML alias expansion can grow a document exponentially). */
const MAX_ALIASES = 100;

const TOP_KEYS = ["version", "env", "phases", "artifacts"];
const ENV_KEYS = ["variables", "exported-variables", "shell"];
const PHASE_KEYS = ["commands", "finally", "on-failure"];
const ARTIFACT_KEYS = ["files", "base-directory", "discard-paths", "exclude-paths", "name"];

/** CodeBuild keys that Sluice recognises but cannot honour, with the reason given to the user. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  "run-as": "Sluice runs every command as the runner's job user",
  proxy: "Sluice runs no proxy server for builds",
  batch: "Sluice runs no batch builds",
  reports: "Sluice has no test report groups",
  cache: "Sluice keeps no build cache between runs",
  "parameter-store": "Sluice has no parameter store; use the action's environmentVariables (type SECRET for secrets)",
  "secrets-manager": "Sluice has no secrets manager; use the action's environmentVariables with type SECRET",
  "git-credential-helper": "Sluice gives builds no git credentials",
  "runtime-versions": "Sluice runs commands on the runner's own tools and cannot select runtime versions",
  "enable-symlinks": "Sluice never stores symbolic links in artifacts",
  "s3-prefix": "Sluice names artifact objects itself",
};

/**
 * Where a `BuildSpec` value points: text of more than one line, or starting with `{` (JSON or a
 * YAML flow mapping), is an inline buildspec; one line is the path of a file in the primary input
 * artifact (CodeBuild's buildspec override reads the value the same two ways). A valid inline
 * buildspec cannot be one block-style line: it needs both `version` and `phases`.
 */
export function buildSpecSourceOf(value: string): BuildSpecSource {
  const trimmed = value.trim();
  return trimmed.includes("\n") || trimmed.startsWith("{") ? { kind: "inline", text: value } : { kind: "file", path: trimmed };
}

/**
 * Problem with a buildspec file path (relative to the source directory, never leaving it), or
 * undefined when it is usable.
 */
export function buildSpecPathProblem(path: string): string | undefined {
  return relativePathProblem(path, "the buildspec file");
}

/**
 * Parses and validates a buildspec. `base` prefixes every field of a violation
 * (`pipeline.stages[1].actions[0].configuration.BuildSpec` for an inline one, "" for a file).
 */
export function parseBuildSpec(text: string, base: string): BuildSpecParse {
  const v = new Collected(base);
  // prettyErrors: the message's first line ends "at line L, column C:".
  const doc = parseDocument(text, { schema: "failsafe", uniqueKeys: true, prettyErrors: true });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    v.add("", `is not valid YAML: ${firstLine(syntax.message).replace(/:$/, "")}`);
    return { ok: false, violations: v.list };
  }
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    v.add("", `cannot be read: ${err instanceof Error ? firstLine(err.message) : String(err)}`);
    return { ok: false, violations: v.list };
  }
  if (!isMap(root)) {
    v.add("", "must be a mapping with version and phases");
    return { ok: false, violations: v.list };
  }
  checkKeys(root, "", TOP_KEYS, v);

  const version = root["version"];
  if (version === undefined) v.add("version", 'is required: write version: 0.2');
  else if (version === "0.1") v.add("version", "Sluice runs version 0.2 buildspecs only (0.1 ran each command in a shell of its own)");
  else if (version !== "0.2") v.add("version", `must be 0.2, got ${describe(version)}`);

  const env = readEnv(root["env"], v);
  const phases = readPhases(root["phases"], v);
  const artifacts = readArtifacts(root["artifacts"], v);

  if (v.list.length > 0) return { ok: false, violations: v.list };
  const spec: BuildSpec = {
    variables: env.variables,
    exportedVariables: env.exportedVariables,
    phases,
    ...(artifacts.primary === undefined ? {} : { artifacts: artifacts.primary }),
    secondaryArtifacts: artifacts.secondary,
  };
  return { ok: true, spec };
}

/** One output artifact as a Commands action declares it. */
export interface DeclaredOutput {
  readonly name: string;
  readonly files: readonly string[];
}

/**
 * Checks a buildspec's artifacts against the action's output artifacts: the primary block goes to
 * the first output artifact, each secondary one to the output artifact of its name; an output
 * artifact takes its files from the buildspec or from its own `files`, not from both.
 * `base` prefixes buildspec fields, `outputsPath` the output artifacts (e.g. `…actions[0].outputArtifacts`).
 */
export function buildSpecOutputProblems(
  spec: BuildSpec,
  outputs: readonly DeclaredOutput[],
  base: string,
  outputsPath: string,
): FieldViolation[] {
  const v = new Collected(base);
  const first = outputs[0];
  if (spec.artifacts !== undefined && spec.artifacts.files.length > 0) {
    if (first === undefined) v.add("artifacts", "the action declares no output artifact to store them in");
    else if (Object.hasOwn(spec.secondaryArtifacts, first.name)) {
      v.add(`artifacts.secondary-artifacts${keySuffix(first.name)}`, `${q(first.name)} is the primary output artifact, already given by artifacts.files`);
    }
  }
  for (const id of Object.keys(spec.secondaryArtifacts)) {
    if (!outputs.some((o) => o.name === id)) {
      const declared = outputs.map((o) => o.name).join(", ");
      v.add(`artifacts.secondary-artifacts${keySuffix(id)}`, `names no output artifact of the action${declared === "" ? "" : `; it declares ${declared}`}`);
    }
  }
  const problems = [...v.list];
  outputs.forEach((output, i) => {
    const fromSpec = i === 0 ? (spec.artifacts?.files.length ?? 0) > 0 || Object.hasOwn(spec.secondaryArtifacts, output.name) : Object.hasOwn(spec.secondaryArtifacts, output.name);
    if (fromSpec && output.files.length > 0) {
      problems.push({ field: `${outputsPath}[${i}].files`, message: "give the files either here or in the buildspec's artifacts, not both" });
    }
  });
  return problems;
}

/**
 * The output variables of a Commands action: its declared `outputVariables` and the inline
 * buildspec's `exported-variables`; undefined when a buildspec file decides them at run time.
 */
export function commandsOutputVariables(outputVariables: readonly string[], configuration: Readonly<Record<string, string>>): string[] | undefined {
  const value = configuration[BUILD_SPEC_KEY];
  if (value === undefined) return [...outputVariables];
  const source = buildSpecSourceOf(value);
  if (source.kind === "file") return undefined;
  const parsed = parseBuildSpec(source.text, "");
  const exported = parsed.ok ? parsed.spec.exportedVariables : [];
  return [...new Set([...outputVariables, ...exported])];
}

/** Why a configuration value cannot carry `#{…}` references into a buildspec, or undefined when it has none. */
export function buildSpecReferenceProblem(value: string): string | undefined {
  return VARIABLE_REFERENCE.test(value)
    ? "cannot use variables: a buildspec's commands reach the shell as text; set an environment variable of the action to the #{…} reference and use $NAME in the commands"
    : undefined;
}

function readEnv(raw: unknown, v: Collected): { variables: { name: string; value: string }[]; exportedVariables: string[] } {
  const out = { variables: [] as { name: string; value: string }[], exportedVariables: [] as string[] };
  if (raw === undefined) return out;
  if (!isMap(raw)) {
    v.add("env", `must be a mapping, got ${describe(raw)}`);
    return out;
  }
  checkKeys(raw, "env", ENV_KEYS, v);
  const shell = raw["shell"];
  if (shell !== undefined && shell !== "bash") v.add("env.shell", `Sluice runs commands with bash only, got ${describe(shell)}`);
  const variables = raw["variables"];
  if (variables !== undefined) {
    if (!isMap(variables)) v.add("env.variables", `must be a mapping of names to values, got ${describe(variables)}`);
    else {
      for (const [name, value] of Object.entries(variables)) {
        const at = `env.variables${keySuffix(name)}`;
        if (!ENV_VAR_NAME_PATTERN.test(name) || /^[0-9]/.test(name)) v.add(at, `${q(name)} must be a shell variable name (1-128 characters of A-Z a-z 0-9 _, not starting with a digit)`);
        else if (name.startsWith(RESERVED_ENV_PREFIX)) v.add(at, `${q(name)}: names starting with ${RESERVED_ENV_PREFIX} are reserved for the runner`);
        else if (typeof value !== "string") v.add(at, `must be a text value, got ${describe(value)}`);
        else out.variables.push({ name, value });
      }
    }
  }
  const exported = raw["exported-variables"];
  if (exported !== undefined) {
    if (!Array.isArray(exported)) v.add("env.exported-variables", `must be a list of variable names, got ${describe(exported)}`);
    else {
      if (exported.length > LIMITS.maxOutputVariables) v.add("env.exported-variables", `at most ${LIMITS.maxOutputVariables} variables, got ${exported.length}`);
      exported.forEach((name: unknown, i) => {
        const at = `env.exported-variables[${i}]`;
        if (typeof name !== "string" || !OUTPUT_VARIABLE_PATTERN.test(name)) v.add(at, `${typeof name === "string" ? q(name) : describe(name)} must be a shell variable name (1-128 characters of A-Z a-z 0-9 _, not starting with a digit)`);
        else if (out.exportedVariables.includes(name)) v.add(at, `${q(name)} is listed twice`);
        else out.exportedVariables.push(name);
      });
    }
  }
  return out;
}

function readPhases(raw: unknown, v: Collected): Partial<Record<BuildSpecPhaseName, BuildSpecPhase>> {
  const phases: Partial<Record<BuildSpecPhaseName, BuildSpecPhase>> = {};
  if (raw === undefined) {
    v.add("phases", `is required: give at least one of ${BUILD_SPEC_PHASES.join(", ")}`);
    return phases;
  }
  if (!isMap(raw)) {
    v.add("phases", `must be a mapping of phases (${BUILD_SPEC_PHASES.join(", ")}), got ${describe(raw)}`);
    return phases;
  }
  if (Object.keys(raw).length === 0) v.add("phases", `is empty: give at least one of ${BUILD_SPEC_PHASES.join(", ")}`);
  for (const [name, body] of Object.entries(raw)) {
    const at = `phases${keySuffix(name)}`;
    if (!(BUILD_SPEC_PHASES as readonly string[]).includes(name)) {
      v.add(at, `is not a phase; phases are ${BUILD_SPEC_PHASES.join(", ")}`);
      continue;
    }
    if (!isMap(body)) {
      v.add(at, `must be a mapping with commands, got ${describe(body)}`);
      continue;
    }
    checkKeys(body, at, PHASE_KEYS, v);
    const commands = readCommands(body["commands"], `${at}.commands`, v);
    if (body["commands"] === undefined) v.add(`${at}.commands`, "is required: list the phase's shell commands");
    const finallyCommands = readCommands(body["finally"], `${at}.finally`, v);
    const onFailure = body["on-failure"];
    if (onFailure !== undefined && onFailure !== "ABORT" && onFailure !== "CONTINUE") {
      v.add(`${at}.on-failure`, `must be ABORT or CONTINUE, got ${describe(onFailure)}`);
    }
    phases[name as BuildSpecPhaseName] = {
      commands,
      finally: finallyCommands,
      ...(onFailure === "ABORT" || onFailure === "CONTINUE" ? { onFailure } : {}),
    };
  }
  return phases;
}

function readCommands(raw: unknown, at: string, v: Collected): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    v.add(at, `must be a list of shell commands, got ${describe(raw)}`);
    return [];
  }
  if (raw.length === 0) v.add(at, "lists no commands");
  const commands: string[] = [];
  raw.forEach((command: unknown, i) => {
    if (typeof command !== "string") v.add(`${at}[${i}]`, `must be a shell command, got ${describe(command)}`);
    else if (command.trim() === "") v.add(`${at}[${i}]`, "is empty");
    else if (command.includes("\0")) v.add(`${at}[${i}]`, "contains a NUL character");
    else commands.push(command);
  });
  return commands;
}

function readArtifacts(raw: unknown, v: Collected): { primary?: BuildSpecArtifact; secondary: Record<string, BuildSpecArtifact> } {
  const secondary: Record<string, BuildSpecArtifact> = {};
  if (raw === undefined) return { secondary };
  if (!isMap(raw)) {
    v.add("artifacts", `must be a mapping with files, got ${describe(raw)}`);
    return { secondary };
  }
  checkKeys(raw, "artifacts", [...ARTIFACT_KEYS, "secondary-artifacts"], v);
  const nested = raw["secondary-artifacts"];
  if (nested !== undefined) {
    if (!isMap(nested) || Object.keys(nested).length === 0) v.add("artifacts.secondary-artifacts", `must map output artifact names to artifact blocks, got ${describe(nested)}`);
    else {
      for (const [id, block] of Object.entries(nested)) {
        const at = `artifacts.secondary-artifacts${keySuffix(id)}`;
        if (!ARTIFACT_NAME_PATTERN.test(id)) {
          v.add(at, `${q(id)} is not an artifact name (1-100 characters of A-Z a-z 0-9 _ -)`);
          continue;
        }
        const artifact = readArtifact(block, at, true, v);
        if (artifact !== undefined) secondary[id] = artifact;
      }
    }
  }
  // The primary block may hold secondary artifacts only (CodeBuild allows that).
  const primary = readArtifact(raw, "artifacts", nested === undefined, v);
  return primary === undefined ? { secondary } : { primary, secondary };
}

function readArtifact(raw: unknown, at: string, filesRequired: boolean, v: Collected): BuildSpecArtifact | undefined {
  if (!isMap(raw)) {
    v.add(at, `must be a mapping with files, got ${describe(raw)}`);
    return undefined;
  }
  if (at !== "artifacts") checkKeys(raw, at, ARTIFACT_KEYS, v);
  const files = readGlobs(raw["files"], `${at}.files`, v);
  if (raw["files"] === undefined && filesRequired) v.add(`${at}.files`, "is required: list the globs of the files to store (e.g. **/*)");
  const excludePaths = readGlobs(raw["exclude-paths"], `${at}.exclude-paths`, v);
  let baseDirectory = "";
  const base = raw["base-directory"];
  if (base !== undefined) {
    const problem = typeof base === "string" ? relativePathProblem(base, "the base directory") : `must be a directory path, got ${describe(base)}`;
    if (problem !== undefined) v.add(`${at}.base-directory`, problem);
    else baseDirectory = normalizeRelative(base as string);
  }
  const discard = raw["discard-paths"];
  let discardPaths = false;
  if (discard !== undefined) {
    if (discard === "yes" || discard === "true") discardPaths = true;
    else if (discard !== "no" && discard !== "false") v.add(`${at}.discard-paths`, `must be yes or no, got ${describe(discard)}`);
  }
  const name = raw["name"];
  if (name !== undefined && (typeof name !== "string" || name.trim() === "")) v.add(`${at}.name`, `must be a name, got ${describe(name)}`);
  return { files, baseDirectory, discardPaths, excludePaths };
}

function readGlobs(raw: unknown, at: string, v: Collected): string[] {
  if (raw === undefined) return [];
  // CodeBuild takes a single glob as well as a list.
  const list: unknown[] = typeof raw === "string" ? [raw] : Array.isArray(raw) ? raw : [];
  if (typeof raw !== "string" && !Array.isArray(raw)) v.add(at, `must be a list of globs, got ${describe(raw)}`);
  else if (list.length === 0) v.add(at, "lists no globs");
  const globs: string[] = [];
  list.forEach((glob, i) => {
    const here = Array.isArray(raw) ? `${at}[${i}]` : at;
    const problem = typeof glob === "string" ? relativePathProblem(glob, "a glob") : `must be a glob, got ${describe(glob)}`;
    if (problem !== undefined) v.add(here, problem);
    else globs.push(glob as string);
  });
  return globs;
}

/** The rules the artifact globs enforce again at run time (compileGlob), checked early so the field is named. */
function relativePathProblem(path: string, what: string): string | undefined {
  if (path.trim() === "") return `${what} is empty`;
  if (path.includes("\0")) return `${what} contains a NUL character`;
  if (path.includes("\\")) return `${q(path)}: use "/" as the separator`;
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) return `${q(path)} must be relative to the source directory`;
  if (path.split("/").includes("..")) return `${q(path)} must not contain ".."`;
  return undefined;
}

function normalizeRelative(path: string): string {
  return path
    .split("/")
    .filter((s) => s !== "" && s !== ".")
    .join("/");
}

function checkKeys(map: Readonly<Record<string, unknown>>, at: string, known: readonly string[], v: Collected): void {
  for (const key of Object.keys(map)) {
    if (known.includes(key)) continue;
    const path = at === "" ? keyHead(key) : `${at}${keySuffix(key)}`;
    const unsupported = Object.hasOwn(UNSUPPORTED, key) ? UNSUPPORTED[key] : undefined;
    v.add(path, unsupported !== undefined ? `is not supported: ${unsupported}` : `is not a buildspec key here; expected ${known.join(", ")}`);
  }
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]{0,99}$/;

function keySuffix(key: string): string {
  return PLAIN_KEY.test(key) ? `.${key}` : `[${q(key)}]`;
}

function keyHead(key: string): string {
  return PLAIN_KEY.test(key) ? key : `[${q(key)}]`;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (typeof value === "string") return q(value);
  if (Array.isArray(value)) return "a list";
  if (isMap(value)) return "a mapping";
  return String(value);
}

function firstLine(message: string): string {
  return message.split("\n")[0] ?? message;
}

/** Violations with paths under one base (`base.path`, or `path` alone when the base is ""). */
class Collected {
  readonly list: FieldViolation[] = [];
  constructor(private readonly base: string) {}
  add(path: string, message: string): void {
    const field = this.base === "" ? path : path === "" ? this.base : path.startsWith("[") ? `${this.base}${path}` : `${this.base}.${path}`;
    this.list.push({ field, message });
  }
}
