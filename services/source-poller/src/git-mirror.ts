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
  /**
   * The file at `filePath` in commit `commit` of `branch` (fetched first): its text, "absent"
   * when the commit has no such file, or "too large" past `maxBytes` (not read). Rejects when
   * git fails.
   */
  readFile(url: string, branch: string, commit: string, filePath: string, maxBytes: number): Promise<MirroredFile>;
}

/** What `readFile` found. */
export type MirroredFile = { kind: "text"; text: string } | { kind: "absent" } | { kind: "too large"; bytes: number };

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
  const dirOf = (url: string): string => path.join(cacheDir, `${createHash("sha256").update(url).digest("hex").slice(0, 32)}.git`);
  /** Brings the mirror's copy of `branch` up to date. */
  const fetchBranch = async (dir: string, url: string, branch: string): Promise<void> => {
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
  };
  return {
    async changedPaths(url, branch, from, to) {
      checkRepositoryUrl(url);
      checkBranch(branch);
      if (!SHA.test(from) || !SHA.test(to)) throw new Error(`not commit ids: ${JSON.stringify(from)}..${JSON.stringify(to)}`);
      const dir = dirOf(url);
      return inTurn(dir, async () => {
        await fetchBranch(dir, url, branch);
        const out = await runGit(["-C", dir, "diff", "--name-only", "--no-renames", "-z", from, to, "--"], opts, "diff");
        return out.split("\0").filter((p) => p !== "");
      });
    },

    async readFile(url, branch, commit, filePath, maxBytes) {
      checkRepositoryUrl(url);
      checkBranch(branch);
      if (!SHA.test(commit)) throw new Error(`not a commit id: ${JSON.stringify(commit)}`);
      if (!SAFE_PATH.test(filePath)) throw new Error(`not a plain repository path: ${JSON.stringify(filePath)}`);
      const dir = dirOf(url);
      return inTurn(dir, async () => {
        await fetchBranch(dir, url, branch);
        // ls-tree answers "absent" with an empty listing; cat-file would fail the same way as a
        // broken mirror. Its long form gives the blob's size, so a huge file is never read.
        const listing = await runGit(["-C", dir, "ls-tree", "-l", "-z", commit, "--", filePath], opts, "ls-tree");
        const entry = listing.split("\0").find((line) => line.endsWith(`\t${filePath}`));
        if (entry === undefined) return { kind: "absent" };
        const [mode = "", type = "", sha = "", size = ""] = entry.slice(0, entry.lastIndexOf("\t")).split(/ +/);
        if (type !== "blob" || mode === "120000") return { kind: "absent" };
        const bytes = Number(size);
        if (!Number.isSafeInteger(bytes) || bytes > maxBytes) return { kind: "too large", bytes };
        return { kind: "text", text: await runGit(["-C", dir, "cat-file", "blob", sha], opts, "cat-file") };
      });
    },
  };
}

/** Relative paths without `..` or a leading `-`: nothing git could read as an option or a revision range. */
const SAFE_PATH = /^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,255}$/;
