import { readFile } from "node:fs/promises";
import { MAX_SUMMARY_CHARS, SECRET_ENV_TYPES } from "@sluice/domain";
import type { Job } from "@sluice/proto";
import { JobFailure, LineTail, createMasker, createValueMasker } from "./provider.js";
import type { ProviderContext } from "./provider.js";

/**
 * What the two shell providers (a Commands list, a buildspec) share: the job's variables as
 * environment, secret masking, the output tail and the final environment the script leaves.
 */

/** Output lines kept for a failure summary. */
const TAIL_LINES = 100;

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The job's environment variables and declared output variables, checked, with the masks of its secrets. */
export interface JobVariables {
  readonly env: Readonly<Record<string, string>>;
  /** Masks secret values in output lines (`***`). */
  readonly mask: (text: string) => string;
  /** Masks secret values in output variables (`****`, as the views do). */
  readonly maskValue: (text: string) => string;
}

/** Reads the job's environment variables, refusing names that are not shell identifiers. */
export function jobVariables(job: Job): JobVariables {
  const env: Record<string, string> = {};
  const secrets: string[] = [];
  job.environmentVariables.forEach((v, i) => {
    if (!NAME_PATTERN.test(v.name)) {
      throw new JobFailure("ConfigurationError", `environmentVariables[${i}].name: "${v.name}" is not a valid variable name`);
    }
    env[v.name] = v.value;
    if (SECRET_ENV_TYPES.has(v.type)) secrets.push(v.value);
  });
  // Secret configuration properties are masked like secret variables (their values are not in the environment).
  for (const key of job.secretConfigurationKeys) {
    const value = job.configuration[key] ?? "";
    if (value !== "") secrets.push(value);
  }
  job.outputVariables.forEach((name, i) => {
    if (!NAME_PATTERN.test(name)) {
      throw new JobFailure("ConfigurationError", `outputVariables[${i}]: "${name}" is not a valid variable name`);
    }
  });
  return { env, mask: createMasker(secrets), maskValue: createValueMasker(secrets) };
}

/** The job's output as it is written: masked, kept for the failure summary, logged, and published to the job's log. */
export interface OutputSink {
  readonly tail: LineTail;
  readonly onLine: (stream: "stdout" | "stderr", raw: string) => void;
}

export function outputSink(ctx: ProviderContext, mask: (text: string) => string): OutputSink {
  const tail = new LineTail(TAIL_LINES);
  return {
    tail,
    onLine: (stream, raw) => {
      const line = mask(raw);
      tail.push(line);
      // Masked before it leaves the runner: the live log (SLUICE_LOGS) and the stored log get this line only.
      ctx.log?.write(stream, line);
      ctx.logger.debug("command output", { stream, line });
    },
  };
}

/**
 * The values of `names` in the environment the script left (`env -0` in `file`), masked; a name the
 * script never set is logged and left out, as CodeBuild leaves out an exported variable it never set.
 */
export async function outputVariablesFrom(
  file: string,
  names: readonly string[],
  vars: JobVariables,
  ctx: ProviderContext,
): Promise<Record<string, string>> {
  const finalEnv = await readEnvFile(file);
  const outputVariables: Record<string, string> = {};
  for (const name of names) {
    const value = finalEnv.get(name);
    if (value === undefined) {
      ctx.logger.warn("output variable not set by the commands", { variable: name });
      continue;
    }
    // Masked here too, so a secret never travels on SLUICE_RESULTS (decide() masks it again).
    outputVariables[name] = vars.maskValue(value);
  }
  return outputVariables;
}

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

export function summaryWithTail(headline: string, tail: LineTail): string {
  const lines = tail.toString();
  if (lines.trim() === "") return headline;
  const head = `${headline}. Last output:\n`;
  const room = MAX_SUMMARY_CHARS - head.length;
  return head + (lines.length > room ? `…${lines.slice(lines.length - room + 1)}` : lines);
}

export function lastNonEmptyLine(tail: LineTail): string {
  const lines = tail.toString().split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim() ?? "";
    if (line !== "") return line;
  }
  return "";
}

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
