import { spawn } from "node:child_process";
import { gitProcessEnv } from "@sluice/service-kit";
import { NotSmartHttp, readsNatively, smartHttpRefs } from "./smart-http.js";

/** How the poller runs git. */
export interface LsRemoteOptions {
  readonly timeoutMs: number;
  /**
   * The whole environment git starts from (see `gitHostEnv`): nothing of the poller's own
   * environment reaches git but this, so no inherited `GIT_*`, `HOME` or token changes what it does.
   */
  readonly hostEnv: Readonly<Record<string, string>>;
}

/** Refuses a URL git would read as an option (`--upload-pack=<command>` runs a command). */
export function checkRepositoryUrl(url: string): void {
  if (url.startsWith("-")) throw new Error(`configuration.RepositoryUrl: ${JSON.stringify(url)} must not start with "-"`);
}

/** Refuses a branch git would read as an option, or one that is not a plain ref name. */
export function checkBranch(branch: string): void {
  if (!/^[A-Za-z0-9._/-]{1,255}$/.test(branch) || branch.startsWith("-") || branch.includes("..")) {
    throw new Error(`configuration.BranchName: ${JSON.stringify(branch)} is not a valid branch name`);
  }
}

/** `-c protocol.file.allow=always` for file:// remotes (tests and local mirrors), nothing otherwise. */
export function protocolArgs(url: string): string[] {
  return url.startsWith("file://") ? ["-c", "protocol.file.allow=always"] : [];
}

/**
 * Runs git with an argv array (never a shell) in the poller's git environment; resolves stdout,
 * rejects with the exit code and the start of stderr.
 */
export function runGit(args: readonly string[], opts: LsRemoteOptions, what: string): Promise<string> {
  const { timeoutMs } = opts;
  return new Promise<string>((resolve, reject) => {
    const child = spawn("git", args, {
      // GIT_ASKPASS=true answers any credential question with nothing, so git fails at once.
      env: gitProcessEnv({ ...opts.hostEnv, GIT_ASKPASS: "true" }),
      stdio: ["ignore", "pipe", "pipe"],
      timeout: timeoutMs,
    });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => stdout.push(d));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(Buffer.concat(stdout).toString());
      else reject(new Error(signal ? `git ${what} timed out after ${timeoutMs} ms` : `git ${what} exited ${code}: ${stderr.trim().slice(0, 500)}`));
    });
  });
}

const SHA = /^[0-9a-f]{40,64}$/;

/**
 * `git ls-remote <lsRemoteArgs>` output: read natively from a smart-HTTP server when nothing in the
 * git environment would change how git reaches it, else (or when the server is not one) by git.
 * The native answer lists every ref; callers pick theirs by name, as they do from git's.
 */
async function advertised(url: string, opts: LsRemoteOptions, lsRemoteArgs: readonly string[]): Promise<string> {
  if (readsNatively(url, opts.hostEnv)) {
    try {
      return await smartHttpRefs(url, opts.timeoutMs);
    } catch (err) {
      if (!(err instanceof NotSmartHttp)) throw err;
    }
  }
  return runGit([...protocolArgs(url), "ls-remote", ...lsRemoteArgs], opts, lsRemoteArgs[0] === "--" ? "ls-remote" : `ls-remote ${lsRemoteArgs[0]}`);
}

/**
 * Reads the commit a branch points at with `git ls-remote`, without cloning.
 * The URL and branch go to git as argv entries, never through a shell.
 * Returns undefined when the branch does not exist.
 */
export async function lsRemoteHead(url: string, branch: string, opts: LsRemoteOptions): Promise<string | undefined> {
  // The validator refuses these already; checked again because a value git reads as an
  // option runs a command, whatever the declaration said.
  checkRepositoryUrl(url);
  checkBranch(branch);
  const ref = `refs/heads/${branch}`;
  const out = await advertised(url, opts, ["--", url, ref]);
  for (const line of out.split("\n")) {
    const [sha, name] = line.split("\t");
    if (name === ref && sha && SHA.test(sha)) return sha;
  }
  return undefined;
}

/**
 * Every tag of the remote and the commit it names (annotated tags peeled), by `git ls-remote --tags`.
 */
export async function lsRemoteTags(url: string, opts: LsRemoteOptions): Promise<Map<string, string>> {
  return lsRemoteRefs(url, "tags", opts);
}

/** Every branch of the remote and its head, by `git ls-remote --heads`. */
export async function lsRemoteHeads(url: string, opts: LsRemoteOptions): Promise<Map<string, string>> {
  return lsRemoteRefs(url, "heads", opts);
}

async function lsRemoteRefs(url: string, kind: "tags" | "heads", opts: LsRemoteOptions): Promise<Map<string, string>> {
  checkRepositoryUrl(url);
  const out = await advertised(url, opts, [`--${kind}`, "--", url]);
  const prefix = `refs/${kind}/`;
  const refs = new Map<string, string>();
  const peeled = new Map<string, string>();
  for (const line of out.split("\n")) {
    const [sha, ref] = line.split("\t");
    if (!sha || !ref || !SHA.test(sha) || !ref.startsWith(prefix)) continue;
    const name = ref.slice(prefix.length);
    // Names go into "name sha" pairs and log lines: anything with whitespace is not a ref git makes.
    if (/\s/.test(name)) continue;
    if (name.endsWith("^{}")) peeled.set(name.slice(0, -3), sha);
    else refs.set(name, sha);
  }
  for (const [name, sha] of peeled) if (refs.has(name)) refs.set(name, sha);
  return refs;
}
