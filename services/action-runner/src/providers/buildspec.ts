import { copyFile, lstat, mkdir, readFile, readdir, realpath, writeFile } from "node:fs/promises";
import path from "node:path";
import { compileGlob } from "@sluice/artifacts";
import type { Glob } from "@sluice/artifacts";
import {
  BUILD_SPEC_KEY,
  BUILD_SPEC_PHASES,
  MAX_BUILD_SPEC_FILE_BYTES,
  buildSpecOutputProblems,
  buildSpecPathProblem,
  buildSpecSourceOf,
  parseBuildSpec,
} from "@sluice/domain";
import type { BuildSpec, BuildSpecArtifact, BuildSpecPhaseName, FieldViolation } from "@sluice/domain";
import { runProcess } from "../process.js";
import { JobFailure } from "./provider.js";
import type { ProducedOutput, ProviderContext, ProviderOutcome } from "./provider.js";
import { jobVariables, outputSink, outputVariablesFrom, summaryWithTail, truncate } from "./shell-job.js";

/**
 * A Commands action driven by a buildspec (CodeBuild's version 0.2): the phases install,
 * pre_build, build and post_build run in order in ONE bash process, so `cd`, variables,
 * functions and background processes carry from command to command and phase to phase, as
 * CodeBuild's "same shell instance" promises.
 *
 * Safety rule, as for plain Commands: each command is written verbatim to a file of its own and
 * sourced; the driver script around them is constant text plus runner-chosen file names, and
 * every value (env.variables, the action's environment variables) reaches bash as environment.
 *
 * What runs after a failure follows CodeBuild's phase transitions: a failed build phase still
 * runs post_build, a failed install or pre_build ends the build; `on-failure: CONTINUE` goes on
 * with the next phase and `on-failure: ABORT` ends the build after that phase; a phase's
 * `finally` commands run whenever its commands ran, failed or not. A failed phase fails the
 * action even when later phases ran. Within one command (a multi-line block) the first failing
 * line ends the command, like `set -e`. A command that calls `exit` ends the shell, so no
 * later command, finally block or phase runs: the build fails with the phase that exited.
 */

/** One line of the driver's phase record: `<PHASE> <SUCCEEDED|FAILED> <status> <command file>`. */
interface PhaseRecord {
  readonly phase: string;
  readonly state: "SUCCEEDED" | "FAILED";
  readonly status: number;
  /** The command that failed, when one did. */
  readonly command?: string;
}

/**
 * Helpers of the driver. `__sluice_end` gets the status of `source`; the ERR trap set before each
 * command returns from the sourced file at the first failing line (ERR fires where `set -e` would
 * stop) and clears itself, so nothing of the driver is ever affected by it.
 */
const DRIVER_HEADER = [
  "# Written by the Sluice action runner: the buildspec's phases. Each command is a file of its own, sourced verbatim.",
  "set -o pipefail",
  '__sluice_dir="$SLUICE_BUILDSPEC_DIR"',
  "__sluice_failed=0 __sluice_stop=0 __sluice_phase_failed=0 __sluice_block_failed=0 __sluice_in_command=0",
  '__sluice_phase="" __sluice_command=""',
  "__sluice_record() {",
  '  printf "%s %s %s %s\\n" "$__sluice_phase" "$1" "$2" "${3:--}" >> "$SLUICE_PHASES_FILE"',
  "}",
  "__sluice_exit() {",
  "  local __sluice_status=$? __sluice_name",
  '  if [ "$__sluice_in_command" = 1 ]; then',
  "    printf '[Container] Command exited the shell with status %s; nothing after it runs\\n' \"$__sluice_status\"",
  '    __sluice_record FAILED "$__sluice_status" "$__sluice_command"',
  "    __sluice_failed=1",
  "  fi",
  "  local -a __sluice_names=()",
  '  IFS=" " read -r -a __sluice_names <<< "${SLUICE_OUTPUT_VARIABLES-}" || true',
  '  for __sluice_name in "${__sluice_names[@]}"; do export "$__sluice_name" 2>/dev/null || true; done',
  '  env -0 > "$SLUICE_ENV_FILE" 2>/dev/null || true',
  '  exit "$__sluice_failed"',
  "}",
  "trap __sluice_exit EXIT",
  "__sluice_enter() {",
  '  __sluice_phase=$1 __sluice_phase_failed=0 __sluice_block_failed=0 __sluice_first_failure=""',
  "  printf '[Container] Entering phase %s\\n' \"$1\"",
  "}",
  "__sluice_start() {",
  '  __sluice_command=$1 __sluice_in_command=1',
  "  printf '[Container] Running command %s\\n' \"$(< \"$__sluice_dir/$1\")\"",
  "}",
  "__sluice_end() {",
  "  trap - ERR",
  "  __sluice_in_command=0",
  '  if [ "$1" != 0 ]; then',
  "    printf '[Container] Command did not exit successfully %s exit status %s\\n' \"$(< \"$__sluice_dir/$__sluice_command\")\" \"$1\"",
  '    __sluice_phase_failed=1 __sluice_block_failed=1',
  '    [ -n "$__sluice_first_failure" ] || __sluice_first_failure="$1 $__sluice_command"',
  "  fi",
  "}",
  // $1: `stop` or `go`, what a failure of this phase means for the phases after it.
  "__sluice_complete() {",
  '  if [ "$__sluice_phase_failed" = 0 ]; then',
  "    __sluice_record SUCCEEDED 0",
  "    printf '[Container] Phase complete: %s State: SUCCEEDED\\n' \"$__sluice_phase\"",
  "  else",
  "    __sluice_failed=1",
  "    __sluice_record FAILED $__sluice_first_failure",
  "    printf '[Container] Phase complete: %s State: FAILED\\n' \"$__sluice_phase\"",
  '    [ "$1" = go ] || __sluice_stop=1',
  "  fi",
  "}",
  "",
].join("\n");

const ERR_TRAP = `trap '__sluice_status=$?; trap - ERR; return "$__sluice_status" 2>/dev/null' ERR`;

/** Runs the buildspec named by `configuration.BuildSpec` (inline text or a file of the primary input). */
export async function runBuildSpec(ctx: ProviderContext, value: string): Promise<ProviderOutcome> {
  const { job, ws } = ctx;
  if (job.commands.length > 0 || job.configuration["Commands"] !== undefined) {
    throw new JobFailure("ConfigurationError", `configuration.${BUILD_SPEC_KEY}: give either commands or a BuildSpec, not both`);
  }
  const { spec, where } = await loadBuildSpec(ws.src, value);
  // Judged before anything runs: a build whose artifacts cannot be stored is a configuration error.
  const base = where.startsWith("configuration.") ? where : "";
  const problems = buildSpecOutputProblems(spec, job.outputArtifacts, base, "outputArtifacts");
  if (problems.length > 0) throw violationsFailure(where, base, problems);
  const vars = jobVariables(job);

  const outputVariables = [...new Set([...job.outputVariables, ...spec.exportedVariables])];
  const phasesFile = path.join(ws.run, "phases.txt");
  const envFile = path.join(ws.run, "final.env");
  const driver = path.join(ws.run, "buildspec-driver.sh");
  const commandCount = await writeDriver(ws.run, driver, spec);

  const env: Record<string, string> = {
    ...ctx.env,
    ...Object.fromEntries(spec.variables.map((v) => [v.name, v.value])),
    // The action's own variables win over the buildspec's, as CodePipeline's EnvironmentVariables override CodeBuild's.
    ...vars.env,
    // Set last: the runner's own plumbing cannot be redirected by a job's variables.
    SLUICE_BUILDSPEC_DIR: ws.run,
    SLUICE_PHASES_FILE: phasesFile,
    SLUICE_ENV_FILE: envFile,
    SLUICE_OUTPUT_VARIABLES: outputVariables.join(" "),
  };

  const { tail, onLine } = outputSink(ctx, vars.mask);
  const outcome = await runProcess(["bash", driver], { cwd: ws.src, env, signal: ctx.signal, onLine });
  if (outcome.aborted) {
    throw new JobFailure("JobFailed", "the buildspec was stopped before it finished", summaryWithTail("Stopped", tail));
  }
  const records = await readPhaseRecords(phasesFile);
  const failed = records.find((r) => r.state === "FAILED");
  if (failed !== undefined || outcome.exitCode !== 0) {
    const headline = await failureHeadline(ws.run, failed, outcome.exitCode, outcome.exitSignal, vars.mask);
    throw new JobFailure("JobFailed", truncate(headline, 600), summaryWithTail(headline, tail));
  }

  const outputs = await buildSpecOutputs(ctx, spec, where);
  const ran = records.map((r) => r.phase).join(", ");
  return {
    summary: `Buildspec succeeded: ${ran === "" ? "no phase" : ran} (${commandCount} commands)`,
    externalExecutionId: job.jobId,
    outputVariables: await outputVariablesFrom(envFile, outputVariables, vars, ctx),
    outputs,
  };
}

/** Where a buildspec came from, for messages: `configuration.BuildSpec` or `BuildSpec file "ci/buildspec.yml"`. */
interface Loaded {
  readonly spec: BuildSpec;
  readonly where: string;
}

async function loadBuildSpec(src: string, value: string): Promise<Loaded> {
  const source = buildSpecSourceOf(value);
  const field = `configuration.${BUILD_SPEC_KEY}`;
  if (source.kind === "inline") return { spec: parsedOrFail(source.text, field, field), where: field };
  const problem = buildSpecPathProblem(source.path);
  if (problem !== undefined) throw new JobFailure("ConfigurationError", `${field}: ${problem}`);
  const where = `BuildSpec file ${JSON.stringify(source.path)}`;
  const file = path.join(src, source.path);
  // The input was extracted before any job code ran, and extraction refuses links; checked anyway.
  const st = await lstat(file).catch(() => undefined);
  if (st === undefined) throw new JobFailure("ConfigurationError", `${where}: not found in the primary input artifact`);
  if (!st.isFile()) throw new JobFailure("ConfigurationError", `${where}: is not a regular file`);
  if (st.size > MAX_BUILD_SPEC_FILE_BYTES) {
    throw new JobFailure("ConfigurationError", `${where}: is ${st.size} bytes; a buildspec may have at most ${MAX_BUILD_SPEC_FILE_BYTES}`);
  }
  return { spec: parsedOrFail(await readFile(file, "utf8"), "", where), where };
}

/** Parses a buildspec or fails the job naming where it came from and the first offending field (all of them in the summary). */
function parsedOrFail(text: string, base: string, where: string): BuildSpec {
  const parsed = parseBuildSpec(text, base);
  if (parsed.ok) return parsed.spec;
  throw violationsFailure(where, base, parsed.violations);
}

function violationsFailure(where: string, base: string, violations: readonly FieldViolation[]): JobFailure {
  const line = (v: FieldViolation): string => (v.field === "" || v.field === base ? `${where}: ${v.message}` : base === "" ? `${where}: ${v.field}: ${v.message}` : `${v.field}: ${v.message}`);
  const [first] = violations;
  const message = first === undefined ? `${where}: is not a valid buildspec` : line(first);
  return new JobFailure("ConfigurationError", message, violations.map(line).join("\n"));
}

/** Writes each command to a file of its own and the driver that runs them; returns the number of commands. */
async function writeDriver(dir: string, driver: string, spec: BuildSpec): Promise<number> {
  const lines: string[] = [DRIVER_HEADER];
  let count = 0;
  const block = async (phase: BuildSpecPhaseName, kind: "commands" | "finally", commands: readonly string[]): Promise<void> => {
    lines.push("  __sluice_block_failed=0");
    for (const [i, command] of commands.entries()) {
      // Names are runner-chosen ([a-z_0-9.-] only): the driver text holds no user text at all.
      const name = `buildspec-${phase}-${kind}-${i}.sh`;
      await writeFile(path.join(dir, name), `${command}\n`, { mode: 0o600 });
      count += 1;
      lines.push(
        '  if [ "$__sluice_block_failed" = 0 ]; then',
        `    __sluice_start ${name}`,
        `    ${ERR_TRAP}`,
        `    source "$__sluice_dir/${name}"`,
        "    __sluice_end $?",
        "  fi",
      );
    }
  };
  for (const phase of BUILD_SPEC_PHASES) {
    const body = spec.phases[phase];
    if (body === undefined) continue;
    lines.push('if [ "$__sluice_stop" = 0 ]; then', `  __sluice_enter ${phase.toUpperCase()}`);
    await block(phase, "commands", body.commands);
    if (body.finally.length > 0) await block(phase, "finally", body.finally);
    lines.push(`  __sluice_complete ${continuesAfterFailure(phase, body.onFailure) ? "go" : "stop"}`, "fi");
  }
  lines.push("exit 0", "");
  await writeFile(driver, lines.join("\n"), { mode: 0o600 });
  return count;
}

/** CodeBuild's transitions when on-failure is unset: only a failed build phase goes on (to post_build). */
function continuesAfterFailure(phase: BuildSpecPhaseName, onFailure: "ABORT" | "CONTINUE" | undefined): boolean {
  return onFailure === undefined ? phase === "build" : onFailure === "CONTINUE";
}

async function readPhaseRecords(file: string): Promise<PhaseRecord[]> {
  const text = await readFile(file, "utf8").catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  });
  const records: PhaseRecord[] = [];
  for (const line of text.split("\n")) {
    const [phase, state, status, command] = line.split(" ");
    if (phase === undefined || phase === "" || (state !== "SUCCEEDED" && state !== "FAILED")) continue;
    records.push({ phase, state, status: Number(status), ...(command === undefined || command === "-" ? {} : { command }) });
  }
  return records;
}

async function failureHeadline(
  dir: string,
  failed: PhaseRecord | undefined,
  exitCode: number | null,
  exitSignal: NodeJS.Signals | null,
  mask: (text: string) => string,
): Promise<string> {
  if (failed === undefined) {
    return exitCode === null ? `Buildspec killed by ${exitSignal ?? "a signal"}` : `Buildspec failed with exit code ${exitCode}`;
  }
  // The command file name is the driver's own ([a-z_0-9.-]); never a path from the job.
  const name = failed.command !== undefined && /^buildspec-[a-z_]+-(?:commands|finally)-[0-9]+\.sh$/.test(failed.command) ? failed.command : undefined;
  const text = name === undefined ? undefined : (await readFile(path.join(dir, name), "utf8").catch(() => "")).trim();
  const what = text === undefined || text === "" ? "" : `: command ${JSON.stringify(truncate(mask(text), 200))} exited with status ${failed.status}`;
  const block = name?.includes("-finally-") === true ? " (in finally)" : "";
  return `Buildspec phase ${failed.phase} failed${block}${what}`;
}

/** The output artifacts: buildspec blocks where they apply, the declared files (or everything) otherwise. */
async function buildSpecOutputs(ctx: ProviderContext, spec: BuildSpec, where: string): Promise<ProducedOutput[]> {
  const { job, ws } = ctx;
  const primaryName = job.outputArtifacts[0]?.name;
  const declared = new Map(job.outputArtifacts.map((a) => [a.name, a.files]));
  const outputs: ProducedOutput[] = [];
  for (const [index, output] of job.outputs.entries()) {
    const secondary = Object.hasOwn(spec.secondaryArtifacts, output.name) ? spec.secondaryArtifacts[output.name] : undefined;
    const primary = output.name === primaryName && spec.artifacts !== undefined && spec.artifacts.files.length > 0 ? spec.artifacts : undefined;
    const block = secondary ?? primary;
    const field = secondary !== undefined ? `artifacts.secondary-artifacts.${output.name}` : "artifacts";
    if (block === undefined) {
      outputs.push({ name: output.name, dir: ws.src, patterns: declared.get(output.name) ?? [] });
      continue;
    }
    outputs.push(await artifactOutput(ws.src, path.join(ws.run, `artifact-${index}`), output.name, block, `${where}: ${field}`));
  }
  return outputs;
}

/**
 * One artifact block: its files under `base-directory`. Without discard-paths or exclude-paths the
 * job runner zips the directory with the globs; otherwise the selected files are copied into a
 * staging directory first (flat for discard-paths), which the zip is made from.
 */
async function artifactOutput(src: string, stage: string, name: string, block: BuildSpecArtifact, where: string): Promise<ProducedOutput> {
  const dir = path.join(src, block.baseDirectory);
  // The job may have made base-directory a link to anywhere: only a real directory inside the source counts.
  const [realSrc, realDir] = await Promise.all([realpath(src), realpath(dir).catch(() => undefined)]);
  const st = await lstat(dir).catch(() => undefined);
  if (realDir === undefined || st === undefined || !st.isDirectory() || (realDir !== realSrc && !realDir.startsWith(`${realSrc}${path.sep}`))) {
    throw new JobFailure("JobFailed", `${where}.base-directory: ${JSON.stringify(block.baseDirectory)} is not a directory of the build`);
  }
  if (!block.discardPaths && block.excludePaths.length === 0) return { name, dir, patterns: block.files };

  const include = block.files.map((p, i) => compileGlob(p, `${where}.files[${i}]`));
  const exclude = block.excludePaths.map((p, i) => compileGlob(p, `${where}.exclude-paths[${i}]`));
  const files = (await listFiles(dir, "")).filter((rel) => selected(rel, include) && !exclude.some((g) => g.matches(rel)));
  if (files.length === 0) {
    throw new JobFailure("JobFailed", `${where}.files: no files match ${block.files.map((f) => JSON.stringify(f)).join(", ")}`);
  }
  const placed = new Map<string, string>();
  for (const rel of files) {
    const target = block.discardPaths ? path.posix.basename(rel) : rel;
    const earlier = placed.get(target);
    if (earlier !== undefined) {
      throw new JobFailure("JobFailed", `${where}.discard-paths: ${JSON.stringify(earlier)} and ${JSON.stringify(rel)} would both be stored as ${JSON.stringify(target)}`);
    }
    placed.set(target, rel);
    await mkdir(path.dirname(path.join(stage, target)), { recursive: true });
    await copyFile(path.join(dir, rel), path.join(stage, target));
  }
  return { name, dir: stage, patterns: [] };
}

/** Regular files under `dir` (relative `/` paths); symbolic links are never followed, as the zipper does. */
async function listFiles(dir: string, rel: string): Promise<string[]> {
  const entries = await readdir(rel === "" ? dir : path.join(dir, rel), { withFileTypes: true });
  const out: string[] = [];
  for (const entry of entries) {
    const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, child)));
    else if (entry.isFile()) out.push(child);
  }
  return out;
}

/** The zipper's selection rule: a glob matches the path, or a wildcard-free pattern names one of its directories. */
function selected(rel: string, globs: readonly Glob[]): boolean {
  if (globs.some((g) => g.matches(rel))) return true;
  const literal = globs.filter((g) => !/[*?]/.test(g.pattern));
  for (let slash = rel.lastIndexOf("/"); slash > 0; slash = rel.lastIndexOf("/", slash - 1)) {
    if (literal.some((g) => g.matches(rel.slice(0, slash)))) return true;
  }
  return false;
}
