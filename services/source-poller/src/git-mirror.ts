import { createHash } from "node:crypto";
import { existsSync, mkdirSync, rmSync } from "node:fs";
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
    async changedPaths(url, branch, from, to) {
      checkRepositoryUrl(url);
      checkBranch(branch);
      if (!SHA.test(from) || !SHA.test(to)) throw new Error(`not commit ids: ${JSON.stringify(from)}..${JSON.stringify(to)}`);
      const dir = path.join(cacheDir, `${createHash("sha256").update(url).digest("hex").slice(0, 32)}.git`);
      return inTurn(dir, async () => {
        if (!existsSync(path.join(dir, "HEAD"))) {
          mkdirSync(dir, { recursive: true });
          await runGit(["init", "--quiet", "--bare", dir], opts, "init");
        }
        const ref = `refs/heads/${branch}`;
        try {
          // No FETCH_HEAD: it would keep the URL, credentials and all, on disk.
          await runGit([...protocolArgs(url), "-C", dir, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", url, `+${ref}:${ref}`], opts, "fetch");
        } catch (err) {
          // A fetch killed by the timeout can leave lock files behind that fail every later
          // one; the mirror is only a cache, so it starts over next time.
          rmSync(dir, { recursive: true, force: true });
          throw err;
        }
        const out = await runGit(["-C", dir, "diff", "--name-only", "--no-renames", "-z", from, to, "--"], opts, "diff");
        return out.split("\0").filter((p) => p !== "");
      });
    },
  };
}
