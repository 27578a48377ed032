import { spawn } from "node:child_process";
import { gitProcessEnv } from "@sluice/service-kit";

/** How `lsRemoteHead` runs git. */
export interface LsRemoteOptions {
  readonly timeoutMs: number;
  /**
   * The whole environment git starts from (see `gitHostEnv`): nothing of the poller's own
   * environment reaches git but this, so no inherited `GIT_*`, `HOME` or token changes what it does.
   */
  readonly hostEnv: Readonly<Record<string, string>>;
}

/**
 * Reads the commit a branch points at with `git ls-remote`, without cloning.
 * The URL and branch go to git as argv entries, never through a shell.
 * Returns undefined when the branch does not exist.
 */
export async function lsRemoteHead(url: string, branch: string, opts: LsRemoteOptions): Promise<string | undefined> {
  const { timeoutMs } = opts;
  // The validator refuses these already; checked again because a value git reads as an
  // option (`--upload-pack=<command>`) runs a command, whatever the declaration said.
  if (url.startsWith("-")) throw new Error(`configuration.RepositoryUrl: ${JSON.stringify(url)} must not start with "-"`);
  if (!/^[A-Za-z0-9._/-]{1,255}$/.test(branch) || branch.startsWith("-") || branch.includes("..")) {
    throw new Error(`configuration.BranchName: ${JSON.stringify(branch)} is not a valid branch name`);
  }
  const ref = `refs/heads/${branch}`;
  const args = url.startsWith("file://") ? ["-c", "protocol.file.allow=always", "ls-remote", "--", url, ref] : ["ls-remote", "--", url, ref];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn("git", args, {
      // GIT_ASKPASS=true answers any credential question with nothing, so git fails at once.
      env: gitProcessEnv({ ...opts.hostEnv, GIT_ASKPASS: "true" }),
      stdio: ["ignore", "pipe", "pipe"],
      timeout: timeoutMs,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(signal ? `git ls-remote timed out after ${timeoutMs} ms` : `git ls-remote exited ${code}: ${stderr.trim().slice(0, 500)}`));
    });
  });
  for (const line of out.split("\n")) {
    const [sha, name] = line.split("\t");
    if (name === ref && sha && /^[0-9a-f]{40,64}$/.test(sha)) return sha;
  }
  return undefined;
}
