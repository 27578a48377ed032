import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { gitHostEnv } from "@sluice/service-kit";
import { loadSourcePollerConfig } from "./config.js";
import { lsRemoteHead } from "./git-remote.js";

const dir = mkdtempSync(path.join(tmpdir(), "sluice-ls-remote-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.unstubAllEnvs());

const hostEnv = gitHostEnv(process.env);

/** A repository with one commit on `main`; returns its URL and the commit. */
function repository(): { url: string; head: string } {
  const repo = path.join(dir, "repo");
  const git = (...args: string[]): string =>
    execFileSync("git", ["-C", repo, ...args], { env: { ...hostEnv, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" } }).toString().trim();
  mkdirSync(repo);
  git("init", "-q", "-b", "main");
  git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "first");
  return { url: `file://${repo}`, head: git("rev-parse", "HEAD") };
}
const { url, head } = repository();

/**
 * Variables that, were they to reach git, would send it elsewhere: `url.<x>.insteadOf` rewrites
 * the repository URL to one that does not exist, so ls-remote would fail.
 */
function poison(): Record<string, string> {
  const home = path.join(dir, "home");
  mkdirSync(home, { recursive: true });
  writeFileSync(path.join(home, ".gitconfig"), `[url "file:///nowhere/home"]\n\tinsteadOf = ${url}\n`);
  return {
    GIT_CONFIG_PARAMETERS: `'url.file:///nowhere/params.insteadOf'='${url}'`,
    GIT_DIR: "/nowhere/.git",
    HOME: home,
  };
}

describe("lsRemoteHead", () => {
  it("refuses option-like URLs and branches before running git", async () => {
    const marker = path.join(dir, "pwned");
    const attack = `--upload-pack=touch ${marker}`;
    const opts = { timeoutMs: 5_000, hostEnv };
    await expect(lsRemoteHead(attack, "main", opts)).rejects.toThrow(/^configuration\.RepositoryUrl:/);
    await expect(lsRemoteHead(`file://${dir}`, attack, opts)).rejects.toThrow(/^configuration\.BranchName:/);
    await expect(lsRemoteHead(`file://${dir}`, "a..b", opts)).rejects.toThrow(/^configuration\.BranchName:/);
    expect(existsSync(marker)).toBe(false);
  });

  it("reads a branch's head, and undefined for a branch that does not exist", async () => {
    expect(await lsRemoteHead(url, "main", { timeoutMs: 5_000, hostEnv })).toBe(head);
    expect(await lsRemoteHead(url, "missing", { timeoutMs: 5_000, hostEnv })).toBeUndefined();
  });

  it("does not hand the poller's own GIT_* or HOME to git", async () => {
    const poisoned = poison();
    // The same variables given to git on purpose do redirect it: the check below means something.
    await expect(lsRemoteHead(url, "main", { timeoutMs: 5_000, hostEnv: { ...hostEnv, ...poisoned } })).rejects.toThrow(/nowhere/);

    for (const [name, value] of Object.entries(poisoned)) vi.stubEnv(name, value);
    const config = loadSourcePollerConfig({
      ...process.env,
      NATS_URL: "nats://127.0.0.1:4222",
      MONGO_URL: "mongodb://127.0.0.1:27017",
      SLUICE_AUTH_TOKENS: "dev=admin:0123456789abcdef0123456789abcdef",
    });
    expect(Object.keys(config.gitHostEnv ?? {}).filter((name) => name.startsWith("GIT_") || name === "HOME")).toEqual([]);
    expect(await lsRemoteHead(url, "main", { timeoutMs: 5_000, hostEnv: config.gitHostEnv ?? {} })).toBe(head);
  });
});
