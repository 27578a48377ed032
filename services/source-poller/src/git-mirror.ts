import { createHash } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { checkBranch, checkRepositoryUrl, protocolArgs, runGit } from "./git-remote.js";
import type { LsRemoteOptions } from "./git-remote.js";

const SHA = /^[0-9a-f]{40,64}$/;

/**
 * Bare mirrors of the watched repositories in a cache directory, fetched just far enough to
 * diff two commits of a branch. One mirror per URL; git runs on a mirror one at a time (two
 * fetches into one repository would fight over its lock files).
 */
export interface GitMirrors {
  /**
   * The paths that differ between `from` and `to` on `branch` (fetched first). Rejects when
   * git fails (a `from` the remote no longer has, say); the caller decides what that means.
   */
  changedPaths(url: string, branch: string, from: string, to: string): Promise<string[]>;
}

export function createGitMirrors(cacheDir: string, opts: LsRemoteOptions): GitMirrors {
  const turns = new Map<string, Promise<unknown>>();
  const inTurn = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const result = (turns.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = result.catch(() => undefined);
    turns.set(key, tail);
    void tail.then(() => {
      if (turns.get(key) === tail) turns.delete(key);
    });
    return result;
  };
  return {
    changedPaths(url, branch, from, to) {
      checkRepositoryUrl(url);
      checkBranch(branch);
      if (!SHA.test(from) || !SHA.test(to)) return Promise.reject(new Error(`not commit ids: ${from}..${to}`));
      const dir = path.join(cacheDir, `${createHash("sha256").update(url).digest("hex").slice(0, 32)}.git`);
      return inTurn(dir, async () => {
        if (!existsSync(path.join(dir, "HEAD"))) {
          mkdirSync(dir, { recursive: true });
          await runGit(["init", "--quiet", "--bare", dir], opts, "init");
        }
        const ref = `refs/heads/${branch}`;
        await runGit([...protocolArgs(url), "-C", dir, "fetch", "--quiet", "--no-tags", "--", url, `+${ref}:${ref}`], opts, "fetch");
        const out = await runGit(["-C", dir, "diff", "--name-only", "--no-renames", "-z", from, to, "--"], opts, "diff");
        return out.split("\0").filter((p) => p !== "");
      });
    },
  };
}
