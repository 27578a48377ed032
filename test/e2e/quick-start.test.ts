// The quick start as a user meets it: packages/dev-cluster (what `npm start` runs) brings up the servers and
// the five services, runs the example pipeline to the approval, prints the command that approves it;
// that command works, the release deploys, and Ctrl-C (SIGINT) stops everything cleanly.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./helpers.js";

const BIN = join(REPO_ROOT, "packages", "cli", "dist", "bin.js");
const DEV_BIN = join(REPO_ROOT, "packages", "dev-cluster", "dist", "bin.js");
const cwd = mkdtempSync(join(tmpdir(), "sluice-quick-start-"));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe("quick start (npm start)", () => {
  it("runs the example to the approval, approves it with the printed command, deploys, and stops on Ctrl-C", async () => {
    const dev = spawn(process.execPath, [DEV_BIN], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    dev.stdout.on("data", (d: Buffer) => (out += d.toString()));
    dev.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => dev.on("exit", (code) => resolve(code)));
    try {
      await expect.poll(() => out, { timeout: 120_000, interval: 250 }).toMatch(/put-approval-result .*--status Approved/);
      expect(out).toMatch(/dev token \(admin\): \S+/);
      expect(out).toMatch(/Build\s+✔ Succeeded/);

      // The printed command, run as printed (through the CLI) from the same directory.
      const line = out.split("\n").find((l) => l.includes("put-approval-result")) ?? "";
      const args = line.trim().replace(/^npm run sluice -- /, "").match(/"[^"]*"|\S+/g) ?? [];
      const answer = execFileSync(process.execPath, [BIN, ...args.map((a) => a.replace(/^"|"$/g, ""))], { cwd, encoding: "utf8" });
      expect(answer).toMatch(/^approved at /);

      await expect.poll(() => out, { timeout: 60_000, interval: 250 }).toMatch(/Deploy\s+✔ Succeeded\s+execution/);
      const state = execFileSync(process.execPath, [BIN, "get-pipeline-state", "--name", "example"], { cwd, encoding: "utf8" });
      expect(state).toMatch(/Pipeline example \(version 1\)/);
      expect(state).toMatch(/Deploy\s+✔ Succeeded/);
    } finally {
      dev.kill("SIGINT");
    }
    expect(await exited).toBe(0);
    expect(out).toMatch(/stopped\.\s*$/);
    expect(existsSync(join(cwd, ".sluice", "dev.json"))).toBe(false);
  }, 240_000);
});
