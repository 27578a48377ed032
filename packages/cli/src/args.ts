/**
 * Parses `--flag value` / `--flag=value` / `--switch` arguments the way the AWS
 * CLI spells them (kebab-case), so commands read like `aws codepipeline ...`.
 */
export interface ParsedArgs {
  command: string | undefined;
  positional: string[];
  flags: Record<string, string | true>;
}

/** One-letter switches and the flag each stands for (`sluice logs -f`). */
const SHORT_SWITCHES: Readonly<Record<string, string>> = { "-f": "follow" };

/** Flags that never take a value, so `--follow NAME` does not swallow what follows. */
const SWITCHES: ReadonlySet<string> = new Set(["follow", "json", "abandon", "help", "timestamps"]);

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    const short = Object.hasOwn(SHORT_SWITCHES, a) ? SHORT_SWITCHES[a] : undefined;
    if (short !== undefined) {
      flags[short] = true;
      continue;
    }
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    if (eq > 0) {
      flags[a.slice(2, eq)] = a.slice(eq + 1);
      continue;
    }
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith("--") && !SWITCHES.has(a.slice(2)) && !Object.hasOwn(SHORT_SWITCHES, next)) {
      flags[a.slice(2)] = next;
      i++;
    } else {
      flags[a.slice(2)] = true;
    }
  }
  const [command, ...rest] = positional;
  return { command, positional: rest, flags };
}

/** A required string flag; the error names the flag. */
export function requireFlag(args: ParsedArgs, name: string): string {
  const v = args.flags[name];
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} is required`);
  return v;
}

export function optionalFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** A mistake in how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
