import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { gitHostEnv } from "@sluice/service-kit";
import { createGitMirrors } from "./git-mirror.js";

const dir = mkdtempSync(path.join(tmpdir(), "sluice-mirror-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hostEnv = gitHostEnv(process.env);
const repo = path.join(dir, "repo");
const cache = path.join(dir, "cache");
const git = (...args: string[]): string =>
  execFileSync("git", ["-C", repo, ...args], { env: { ...hostEnv, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" } }).toString().trim();
const commit = (file: string): string => {
  mkdirSync(path.dirname(path.join(repo, file)), { recursive: true });
  writeFileSync(path.join(repo, file), file);
  git("add", "-A");
  git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", file);
  return git("rev-parse", "HEAD");
};
mkdirSync(repo);
git("init", "-q", "-b", "main");
const first = commit("a.txt");

describe("git mirrors", () => {
  const mirrors = createGitMirrors(cache, { timeoutMs: 10_000, hostEnv });

  it("lists the paths changed between two commits of a branch, renames as both paths", async () => {
    commit("src/b.ts");
    mkdirSync(path.join(repo, "docs"), { recursive: true });
    git("mv", "a.txt", "docs/a.txt");
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "move");
    const head = git("rev-parse", "HEAD");
    expect((await mirrors.changedPaths(`file://${repo}`, "main", first, head)).sort()).toEqual(["a.txt", "docs/a.txt", "src/b.ts"]);
    // No FETCH_HEAD (it would keep the URL) in the mirror.
    const [mirror = ""] = readdirSync(cache);
    expect(existsSync(path.join(cache, mirror, "FETCH_HEAD"))).toBe(false);
  });

  it("refuses option-like branches and non-commit ids before running git", async () => {
    const marker = path.join(dir, "pwned");
    await expect(mirrors.changedPaths(`file://${repo}`, `--upload-pack=touch ${marker}`, first, first)).rejects.toThrow(/^configuration\.BranchName:/);
    await expect(mirrors.changedPaths(`--upload-pack=touch ${marker}`, "main", first, first)).rejects.toThrow(/^configuration\.RepositoryUrl:/);
    await expect(mirrors.changedPaths(`file://${repo}`, "main", "--output=/tmp/x", first)).rejects.toThrow(/not commit ids/);
    expect(existsSync(marker)).toBe(false);
  });

  it("reads a file at a commit: its text, absent where the commit lacks it, too large past the cap (unread)", async () => {
    const before = git("rev-parse", "HEAD");
    const head = commit(".sluice/pipeline.json");
    const url = `file://${repo}`;
    expect(await mirrors.readFile(url, "main", head, ".sluice/pipeline.json", 1024)).toEqual({ kind: "text", text: ".sluice/pipeline.json" });
    expect(await mirrors.readFile(url, "main", before, ".sluice/pipeline.json", 1024)).toEqual({ kind: "absent" });
    expect(await mirrors.readFile(url, "main", head, ".sluice", 1024)).toEqual({ kind: "absent" });
    expect(await mirrors.readFile(url, "main", head, ".sluice/pipeline.json", 4)).toEqual({ kind: "too large", bytes: ".sluice/pipeline.json".length });
    await expect(mirrors.readFile(url, "main", head, "../etc/passwd", 1024)).rejects.toThrow(/not a plain repository path/);
    await expect(mirrors.readFile(url, "main", "HEAD", "a.txt", 1024)).rejects.toThrow(/not a commit id/);
  });

  it("drops a mirror whose fetch failed, so the next one starts clean", async () => {
    await expect(mirrors.changedPaths(`file://${dir}/missing`, "main", first, first)).rejects.toThrow(/git fetch exited/);
    expect(readdirSync(cache)).toHaveLength(1);
  });
});
