import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ParsedArgs } from "./args.js";
import { optionalFlag, UsageError } from "./args.js";

/** Where `sluice dev` writes the running cluster's address and dev token. */
export const DEV_STATE_FILE = join(".sluice", "dev.json");

export interface DevState {
  address: string;
  token: string;
  approverToken?: string;
  addresses: Record<string, string>;
}

export interface Connection {
  address: string;
  token: string;
}

/**
 * Picks the orchestrator address and token: flags first, then SLUICE_ADDR and
 * SLUICE_TOKEN, then the state file a running `sluice dev` left in `cwd`.
 */
export function resolveConnection(args: ParsedArgs, env: Record<string, string | undefined>, cwd: string): Connection {
  const dev = readDevState(cwd);
  const address = optionalFlag(args, "endpoint") ?? env["SLUICE_ADDR"] ?? dev?.address;
  // Not `--token`: AWS uses that name for the approval token of put-approval-result.
  const token = optionalFlag(args, "auth-token") ?? env["SLUICE_TOKEN"] ?? dev?.token;
  if (!address) throw new UsageError("no server: pass --endpoint host:port, set SLUICE_ADDR, or run `npm start` first");
  if (!token) throw new UsageError("no token: pass --auth-token, set SLUICE_TOKEN, or run `npm start` first");
  return { address, token };
}

export function readDevState(cwd: string): DevState | undefined {
  const file = join(cwd, DEV_STATE_FILE);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as DevState;
}
