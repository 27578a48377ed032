import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { lsRemoteHead } from "./git-remote.js";

const dir = mkdtempSync(path.join(tmpdir(), "sluice-ls-remote-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("lsRemoteHead", () => {
  it("refuses option-like URLs and branches before running git", async () => {
    const marker = path.join(dir, "pwned");
    const attack = `--upload-pack=touch ${marker}`;
    await expect(lsRemoteHead(attack, "main", 5_000)).rejects.toThrow(/^configuration\.RepositoryUrl:/);
    await expect(lsRemoteHead(`file://${dir}`, attack, 5_000)).rejects.toThrow(/^configuration\.BranchName:/);
    await expect(lsRemoteHead(`file://${dir}`, "a..b", 5_000)).rejects.toThrow(/^configuration\.BranchName:/);
    expect(existsSync(marker)).toBe(false);
  });
});
