#!/usr/bin/env node
import { isRpcError } from "@sluice/client";
import { parseArgs, UsageError } from "./args.js";
import { runCommand, USAGE } from "./commands.js";
import { resolveConnection } from "./connection.js";
import { runLogs } from "./logs.js";
import { runWatch } from "./watch.js";

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.command === undefined || args.command === "help" || args.flags["help"] === true) {
    console.log(USAGE);
    return args.command === undefined ? 2 : 0;
  }
  const conn = resolveConnection(args, process.env, process.cwd());
  if (args.command === "watch") {
    const interrupted = new AbortController();
    for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, () => interrupted.abort());
    const outcome = await runWatch(args, conn, { print: (text) => process.stdout.write(text), redraw: process.stdout.isTTY }, interrupted.signal);
    if (interrupted.signal.aborted) return 0;
    // Scripts can wait for a release: 0 when it succeeded, 3 when it ended otherwise.
    return outcome.status === "Succeeded" ? 0 : 3;
  }
  if (args.command === "logs") {
    const interrupted = new AbortController();
    for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, () => interrupted.abort());
    const outcome = await runLogs(args, conn, { print: (text) => process.stdout.write(text) }, interrupted.signal);
    if (interrupted.signal.aborted || args.flags["follow"] !== true) return 0;
    // Like watch: a followed action that failed exits 3, so scripts can tell.
    return outcome.status === "Succeeded" ? 0 : 3;
  }
  console.log(await runCommand(args, conn));
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`sluice: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (isRpcError(err)) {
      console.error(`sluice: ${err.errorCode ?? "error"}: ${err.message}`);
      for (const v of err.violations) console.error(`  ${v.field}: ${v.message}`);
      process.exitCode = 1;
    } else {
      console.error("sluice:", err);
      process.exitCode = 1;
    }
  },
);
