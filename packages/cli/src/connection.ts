import { existsSync, readFileSync } from "node:fs";
import type { ClientTlsOptions } from "@sluice/client";
import { join } from "node:path";
import type { ParsedArgs } from "./args.js";
import { optionalFlag, UsageError } from "./args.js";

/** Where `npm start` (packages/dev-cluster) writes the local cluster's address and dev token. */
export const DEV_STATE_FILE = join(".sluice", "dev.json");

export interface DevState {
  address: string;
  token: string;
  approverToken?: string;
  addresses: Record<string, string>;
  /** The source poller's webhook receiver and its native endpoints' secrets. */
  webhooks?: { url: string; githubSecret: string; gitlabToken: string; giteaSecret: string };
}

export interface Connection {
  address: string;
  token: string;
  /** Set when the server speaks TLS (SLUICE_TLS_CA, SLUICE_TLS=true, SLUICE_TLS_CERT/KEY). */
  tls?: ClientTlsOptions;
  /** The source poller (webhook commands): --source-endpoint, SLUICE_SOURCE_ADDR, or the local cluster's. */
  sourceAddress?: string;
}

/**
 * TLS towards the server, from the environment: SLUICE_TLS_CA (a PEM file: the CA the server's
 * certificate chains to) or SLUICE_TLS=true (the system's roots) turn it on; SLUICE_TLS_CERT and
 * SLUICE_TLS_KEY are the client certificate for servers requiring mutual TLS. Undefined: plaintext.
 */
export function tlsFromEnv(env: Record<string, string | undefined>): ClientTlsOptions | undefined {
  const file = (name: string): Buffer | undefined => {
    const path = env[name];
    if (path === undefined || path === "") return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`${name}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  const flag = env["SLUICE_TLS"]?.toLowerCase();
  if (flag !== undefined && flag !== "" && !["true", "false", "1", "0"].includes(flag)) throw new UsageError("SLUICE_TLS: must be true or false");
  const ca = file("SLUICE_TLS_CA");
  const cert = file("SLUICE_TLS_CERT");
  const key = file("SLUICE_TLS_KEY");
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("SLUICE_TLS_CERT and SLUICE_TLS_KEY go together: set both or neither");
  if (ca === undefined && cert === undefined && flag !== "true" && flag !== "1") return undefined;
  return { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert, key }) };
}

/**
 * Picks the orchestrator address and token: flags first, then SLUICE_ADDR and
 * SLUICE_TOKEN, then the state file a running local cluster (`npm start`) left in `cwd`; TLS from
 * `tlsFromEnv`.
 */
export function resolveConnection(args: ParsedArgs, env: Record<string, string | undefined>, cwd: string): Connection {
  const dev = readDevState(cwd);
  const address = optionalFlag(args, "endpoint") ?? env["SLUICE_ADDR"] ?? dev?.address;
  // Not `--token`: AWS uses that name for the approval token of put-approval-result.
  const token = optionalFlag(args, "auth-token") ?? env["SLUICE_TOKEN"] ?? dev?.token;
  if (!address) throw new UsageError("no server: pass --endpoint host:port, set SLUICE_ADDR, or run `npm start` first");
  if (!token) throw new UsageError("no token: pass --auth-token, set SLUICE_TOKEN, or run `npm start` first");
  const tls = tlsFromEnv(env);
  const sourceAddress = optionalFlag(args, "source-endpoint") ?? env["SLUICE_SOURCE_ADDR"] ?? dev?.addresses["source-poller"];
  return { address, token, ...(tls === undefined ? {} : { tls }), ...(sourceAddress === undefined || sourceAddress === "" ? {} : { sourceAddress }) };
}

export function readDevState(cwd: string): DevState | undefined {
  const file = join(cwd, DEV_STATE_FILE);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as DevState;
}
