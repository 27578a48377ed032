import { writeFile } from "node:fs/promises";
import path from "node:path";
import { BUILD_SPEC_KEY } from "@sluice/domain";
import { runProcess } from "../process.js";
import { runBuildSpec } from "./buildspec.js";
import { JobFailure, configValue } from "./provider.js";
import type { Provider, ProviderOutcome } from "./provider.js";
import { jobVariables, lastNonEmptyLine, outputSink, outputVariablesFrom, summaryWithTail, truncate } from "./shell-job.js";

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
 *
 * With `configuration.BuildSpec` the action runs a buildspec instead (see buildspec.ts).
 */

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
  // Untrimmed: an inline buildspec is parsed exactly as the domain validated it.
  const buildSpec = job.configuration[BUILD_SPEC_KEY];
  if (buildSpec !== undefined && buildSpec.trim() !== "") return runBuildSpec(ctx, buildSpec);
  const commands =
    job.commands.length > 0 ? [...job.commands] : (configValue(job, "Commands")?.split(/\r?\n/) ?? []);
  if (commands.every((c) => c.trim() === "")) {
    throw new JobFailure("ConfigurationError", "commands: at least one command is required");
  }
  const vars = jobVariables(job);

  const scriptFile = path.join(ws.run, "commands.sh");
  const envFile = path.join(ws.run, "final.env");
  await writeFile(scriptFile, `${SCRIPT_HEADER}${commands.join("\n")}\n`, { mode: 0o600 });

  const env: Record<string, string> = {
    ...ctx.env,
    ...vars.env,
    // Set last: the runner's own plumbing cannot be redirected by a job's variables.
    SLUICE_ENV_FILE: envFile,
    SLUICE_OUTPUT_VARIABLES: job.outputVariables.join(" "),
  };

  const { tail, onLine } = outputSink(ctx, vars.mask);
  const outcome = await runProcess(["bash", scriptFile], { cwd: ws.src, env, signal: ctx.signal, onLine });

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

  const outputVariables = await outputVariablesFrom(envFile, job.outputVariables, vars, ctx);

  const declared = new Map(job.outputArtifacts.map((a) => [a.name, a.files]));
  const result: ProviderOutcome = {
    summary: `Commands succeeded (${commands.filter((c) => c.trim() !== "").length} commands)`,
    externalExecutionId: job.jobId,
    outputVariables,
    outputs: job.outputs.map((o) => ({ name: o.name, dir: ws.src, patterns: declared.get(o.name) ?? [] })),
  };
  return result;
};
