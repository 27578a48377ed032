// Refs read natively over smart HTTP equal what `git ls-remote` reads from the same server
// (`git http-backend`), with and without Basic credentials; anything else falls back to git.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGitHttpServer } from "@sluice/testkit";
import type { GitHttpServer } from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lsRemoteHead, lsRemoteHeads, lsRemoteTags, runGit } from "../src/git-remote.js";
import { advertisementToLsRemote, readsNatively, smartHttpRefs } from "../src/smart-http.js";

const root = mkdtempSync(join(tmpdir(), "sluice-smart-http-"));
const opts = { timeoutMs: 10_000, hostEnv: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" } };
let open: GitHttpServer;
let locked: GitHttpServer;
let notGit: Server;
let notGitUrl = "";

beforeAll(async () => {
  const work = join(root, "work");
  const git = (...args: string[]): string => execFileSync("git", ["-C", work, ...args], { encoding: "utf8" }).trim();
  execFileSync("git", ["init", "-q", "-b", "main", work]);
  git("config", "user.email", "t@sluice");
  git("config", "user.name", "t");
  writeFileSync(join(work, "a.txt"), "a");
  git("add", "-A");
  git("commit", "-qm", "one");
  git("tag", "-a", "v1", "-m", "annotated");
  git("checkout", "-q", "-b", "dev");
  writeFileSync(join(work, "b.txt"), "b");
  git("add", "-A");
  git("commit", "-qm", "two");
  git("tag", "v2");
  execFileSync("git", ["clone", "-q", "--bare", work, join(root, "repo.git")]);
  execFileSync("git", ["init", "-q", "--bare", join(root, "empty.git")]);
  open = await startGitHttpServer(root);
  locked = await startGitHttpServer(root, { requireAuth: { user: "ci", password: "s3cret" } });
  notGit = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<html>hello</html>"));
  await new Promise<void>((resolve) => notGit.listen(0, "127.0.0.1", resolve));
  const address = notGit.address();
  notGitUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/repo.git`;
});

afterAll(async () => {
  await open.stop();
  await locked.stop();
  await new Promise((resolve) => notGit.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

describe("refs over smart HTTP", () => {
  it("lists what git ls-remote lists, peeled tags included", async () => {
    const url = `${open.url}/repo.git`;
    const native = (await smartHttpRefs(url, 10_000)).split("\n").sort();
    const byGit = (await runGit(["ls-remote", "--", url], opts, "ls-remote")).trim().split("\n").filter((l) => !l.endsWith("\tHEAD")).sort();
    expect(native.filter((l) => !l.endsWith("\tHEAD"))).toEqual(byGit);
    expect(await lsRemoteHeads(url, opts)).toEqual(new Map([["dev", expect.stringMatching(/^[0-9a-f]{40}$/) as string], ["main", expect.stringMatching(/^[0-9a-f]{40}$/) as string]]));
    const tags = await lsRemoteTags(url, opts);
    expect([...tags.keys()].sort()).toEqual(["v1", "v2"]);
    expect(tags.get("v1")).toBe(await lsRemoteHead(url, "main", opts));
    expect(await lsRemoteHead(url, "nope", opts)).toBeUndefined();
  });

  it("sends URL credentials as Basic authentication, and fails like git without them", async () => {
    const before = locked.requests();
    expect(await lsRemoteHead(`${locked.url.replace("http://", "http://ci:s3cret@")}/repo.git`, "main", opts)).toMatch(/^[0-9a-f]{40}$/);
    expect(locked.requests()).toBe(before + 1);
    await expect(lsRemoteHead(`${locked.url}/repo.git`, "main", opts)).rejects.toThrow(/ls-remote exited/);
  });

  it("reads an empty repository as no refs, and leaves servers that are not smart HTTP to git", async () => {
    expect(await smartHttpRefs(`${open.url}/empty.git`, 10_000)).toBe("");
    // git itself reads such a server as a dumb-HTTP one without refs: the branch is not there.
    expect(await lsRemoteHead(notGitUrl, "main", opts)).toBeUndefined();
  });

  it("leaves proxied or custom-TLS environments to git", () => {
    expect(readsNatively("https://git.example.com/r.git", { PATH: "/bin" })).toBe(true);
    expect(readsNatively("https://git.example.com/r.git", { PATH: "/bin", HTTPS_PROXY: "http://proxy:3128" })).toBe(false);
    expect(readsNatively("https://git.example.com/r.git", { PATH: "/bin", GIT_SSL_CAINFO: "/ca.pem" })).toBe(false);
    expect(readsNatively("ssh://git@git.example.com/r.git", { PATH: "/bin" })).toBe(false);
    expect(readsNatively("file:///srv/r.git", { PATH: "/bin" })).toBe(false);
  });

  it("parses pkt-lines and refuses malformed ones", () => {
    const pkt = (s: string): string => (s.length + 4).toString(16).padStart(4, "0") + s;
    const sha = "a".repeat(40);
    const body = pkt("# service=git-upload-pack\n") + "0000" + pkt(`${sha} HEAD\0multi_ack symref=HEAD:refs/heads/main\n`) + pkt(`${sha} refs/heads/main\n`) + "0000";
    expect(advertisementToLsRemote(Buffer.from(body))).toBe(`${sha}\tHEAD\n${sha}\trefs/heads/main`);
    expect(() => advertisementToLsRemote(Buffer.from("zzzz"))).toThrow(/malformed/);
  });
});
