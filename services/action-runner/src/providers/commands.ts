import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { MAX_SUMMARY_CHARS, SECRET_ENV_TYPES } from "@sluice/domain";
import { runProcess } from "../process.js";
import { JobFailure, LineTail, configValue, createMasker, createValueMasker } from "./provider.js";
import type { Provider, ProviderOutcome } from "./provider.js";

/**
 * `Build`/`Test`/`Deploy` `Commands`: runs the action's shell commands in the workspace,
 * where the input artifacts are already extracted, like CodePipeline's Commands action
 * (a CodeBuild build under the hood).
 *
 * Safety rule: user VALUES (environment variables, resolved configuration, earlier
 * actions' output variables) reach the shell only through the process environment.
 * The commands themselves are the user's script and are written verbatim; nothing else
 * from the job is ever spliced into the script text. `#{…}` references were already turned
 * into `${SLUICE_REF_n}` expansions by the orchestrator (domain shell-references.ts), with
 * their values among the job's environment variables.
 */

/** Output lines kept for a failure summary. */
const TAIL_LINES = 100;

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Runs before and after the user's commands. `set -eo pipefail` stops at the first failing
 * command, as CodeBuild does. The EXIT trap exports the declared output variables (names
 * come from the environment, split by `read -a`, so no word splitting or globbing) and dumps
 * the final environment NUL-separated for the runner to read; it keeps the script's status.
 */
const SCRIPT_HEADER = [
  "# Written by the Sluice action runner; the commands below are the action's, verbatim.",
  "set -eo pipefail",
  "__sluice_exit() {",
  "  local __sluice_status=$? __sluice_name",
  "  local -a __sluice_names=()",
  '  IFS=" " read -r -a __sluice_names <<< "${SLUICE_OUTPUT_VARIABLES-}" || true',
  '  for __sluice_name in "${__sluice_names[@]}"; do export "$__sluice_name" 2>/dev/null || true; done',
  '  env -0 > "$SLUICE_ENV_FILE" 2>/dev/null || true',
  "  exit $__sluice_status",
  "}",
  "trap __sluice_exit EXIT",
  "",
].join("\n");

/** The Commands provider. */
export const commandsProvider: Provider = async (ctx) => {
  const { job, ws } = ctx;
  const commands =
    job.commands.length > 0 ? [...job.commands] : (configValue(job, "Commands")?.split(/\r?\n/) ?? []);
  if (commands.every((c) => c.trim() === "")) {
    throw new JobFailure("ConfigurationError", "commands: at least one command is required");
  }

  const userEnv: Record<string, string> = {};
  const secrets: string[] = [];
  job.environmentVariables.forEach((v, i) => {
    if (!NAME_PATTERN.test(v.name)) {
      throw new JobFailure(
        "ConfigurationError",
        `environmentVariables[${i}].name: "${v.name}" is not a valid variable name`,
      );
    }
    userEnv[v.name] = v.value;
    if (SECRET_ENV_TYPES.has(v.type)) secrets.push(v.value);
  });
  job.outputVariables.forEach((name, i) => {
    if (!NAME_PATTERN.test(name)) {
      throw new JobFailure("ConfigurationError", `outputVariables[${i}]: "${name}" is not a valid variable name`);
    }
  });
  const mask = createMasker(secrets);
  const maskValue = createValueMasker(secrets);

  const scriptFile = path.join(ws.run, "commands.sh");
  const envFile = path.join(ws.run, "final.env");
  await writeFile(scriptFile, `${SCRIPT_HEADER}${commands.join("\n")}\n`, { mode: 0o600 });

  const env: Record<string, string> = {
    ...ctx.env,
    ...userEnv,
    // Set last: the runner's own plumbing cannot be redirected by a job's variables.
    SLUICE_ENV_FILE: envFile,
    SLUICE_OUTPUT_VARIABLES: job.outputVariables.join(" "),
  };

  const tail = new LineTail(TAIL_LINES);
  const outcome = await runProcess(["bash", scriptFile], {
    cwd: ws.src,
    env,
    signal: ctx.signal,
    onLine: (stream, raw) => {
      const line = mask(raw);
      tail.push(line);
      ctx.logger.debug("command output", { stream, line });
    },
  });

  if (outcome.aborted) {
    throw new JobFailure("JobFailed", "commands were stopped before they finished", summaryWithTail("Stopped", tail));
  }
  if (outcome.exitCode !== 0) {
    const how =
      outcome.exitCode === null ? `were killed by ${outcome.exitSignal ?? "a signal"}` : `failed with exit code ${outcome.exitCode}`;
    const lastLine = lastNonEmptyLine(tail);
    const message = `Commands ${how}${lastLine === "" ? "" : `: ${truncate(lastLine, 400)}`}`;
    throw new JobFailure("JobFailed", message, summaryWithTail(`Commands ${how}`, tail));
  }

  const finalEnv = await readEnvFile(envFile);
  const outputVariables: Record<string, string> = {};
  for (const name of job.outputVariables) {
    const value = finalEnv.get(name);
    if (value === undefined) {
      ctx.logger.warn("output variable not set by the commands", { variable: name });
      continue;
    }
    // Masked here too, so a secret never travels on SLUICE_RESULTS (decide() masks it again).
    outputVariables[name] = maskValue(value);
  }

  const declared = new Map(job.outputArtifacts.map((a) => [a.name, a.files]));
  const result: ProviderOutcome = {
    summary: `Commands succeeded (${commands.filter((c) => c.trim() !== "").length} commands)`,
    externalExecutionId: job.jobId,
    outputVariables,
    outputs: job.outputs.map((o) => ({ name: o.name, dir: ws.src, patterns: declared.get(o.name) ?? [] })),
  };
  return result;
};

/** Parses `env -0` output: NUL-separated `NAME=value` entries (values may contain newlines). */
async function readEnvFile(file: string): Promise<Map<string, string>> {
  const vars = new Map<string, string>();
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return vars;
    throw err;
  }
  for (const entry of text.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq <= 0) continue;
    vars.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return vars;
}

function summaryWithTail(headline: string, tail: LineTail): string {
  const lines = tail.toString();
  if (lines.trim() === "") return headline;
  const head = `${headline}. Last output:\n`;
  const room = MAX_SUMMARY_CHARS - head.length;
  return head + (lines.length > room ? `…${lines.slice(lines.length - room + 1)}` : lines);
}

function lastNonEmptyLine(tail: LineTail): string {
  const lines = tail.toString().split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim() ?? "";
    if (line !== "") return line;
  }
  return "";
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
