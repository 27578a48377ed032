import { execFileSync } from "node:child_process";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commitAll, git, makeJob, providerContext, tempDir } from "../../test/helpers.js";
import { gitSourceProvider, redactUrl } from "./git-source.js";
import { JobFailure } from "./provider.js";

describe("Git source provider", () => {
  let root: { dir: string; remove: () => Promise<void> };
  let repo: string;
  let url: string;
  let first: string;
  let second: string;

  beforeAll(async () => {
    root = await tempDir("sluice-git-test-");
    repo = path.join(root.dir, "repo");
    await mkdir(path.join(repo, "src"), { recursive: true });
    git(repo, ["init", "-q", "-b", "main"]);
    await writeFile(path.join(repo, "README.md"), "version one\n");
    await writeFile(path.join(repo, "src", "app.txt"), "app v1\n");
    first = commitAll(repo, "First commit", "2024-03-01T10:00:00+02:00", "2024-03-01T11:00:00+02:00");
    await writeFile(path.join(repo, "README.md"), "version two\n");
    await writeFile(path.join(repo, "new.txt"), "added\n");
    second = commitAll(repo, "Second commit\n\nWith a body line.", "2024-03-02T09:30:00Z", "2024-03-02T09:45:00Z");
    url = pathToFileURL(repo).href;
  });

  afterAll(async () => {
    await root.remove();
  });

  const sourceJob = (configuration: Record<string, string>, sourceRevision = "") =>
    makeJob({
      actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
      configuration,
      sourceRevision,
      outputs: [{ name: "SourceOutput", artifactId: "ae/SourceOutput" }],
    });

  it("checks out the branch head of a file:// repository with the commit's variables and revision", async () => {
    const { ctx, ws } = await providerContext(sourceJob({ RepositoryUrl: url, BranchName: "main" }), { root: root.dir });
    try {
      const outcome = await gitSourceProvider(ctx);
      expect(outcome.outputVariables).toEqual({
        CommitId: second,
        BranchName: "main",
        CommitMessage: "Second commit\n\nWith a body line.",
        AuthorDate: "2024-03-02T09:30:00Z",
        CommitterDate: "2024-03-02T09:45:00Z",
      });
      expect(outcome.revision?.revisionId).toBe(second);
      expect(outcome.revision?.revisionSummary).toBe("Second commit");
      expect(outcome.revision?.branch).toBe("main");
      expect(outcome.revision?.created).toEqual(timestampFromDate(new Date("2024-03-02T09:45:00Z")));
      expect(outcome.externalExecutionId).toBe(second);
      expect(outcome.outputs).toEqual([{ name: "SourceOutput", dir: ws.src, patterns: [] }]);
      // The artifact is the tree at the commit: files present, repository metadata gone.
      expect((await readdir(ws.src)).sort()).toEqual(["README.md", "new.txt", "src"]);
      expect(await readFile(path.join(ws.src, "README.md"), "utf8")).toBe("version two\n");
    } finally {
      await ws.remove();
    }
  });

  it("checks out exactly job.sourceRevision when set, and defaults BranchName to main", async () => {
    const { ctx, ws } = await providerContext(sourceJob({ RepositoryUrl: url }, first), { root: root.dir });
    try {
      const outcome = await gitSourceProvider(ctx);
      expect(outcome.outputVariables?.["CommitId"]).toBe(first);
      expect(outcome.outputVariables?.["BranchName"]).toBe("main");
      expect(outcome.outputVariables?.["CommitMessage"]).toBe("First commit");
      // Dates are normalised to UTC.
      expect(outcome.outputVariables?.["AuthorDate"]).toBe("2024-03-01T08:00:00Z");
      expect(outcome.outputVariables?.["CommitterDate"]).toBe("2024-03-01T09:00:00Z");
      expect((await readdir(ws.src)).sort()).toEqual(["README.md", "src"]);
      expect(await readFile(path.join(ws.src, "README.md"), "utf8")).toBe("version one\n");
    } finally {
      await ws.remove();
    }
  });

  it("keeps .git in the artifact for OutputArtifactFormat CODEBUILD_CLONE_REF, and reads GitHub v1's Branch", async () => {
    const job = sourceJob({ RepositoryUrl: url, Branch: "main", OutputArtifactFormat: "CODEBUILD_CLONE_REF" });
    const { ctx, ws } = await providerContext(job, { root: root.dir });
    try {
      const outcome = await gitSourceProvider(ctx);
      expect(outcome.outputVariables?.["BranchName"]).toBe("main");
      expect((await readdir(ws.src)).sort()).toEqual([".git", "README.md", "new.txt", "src"]);
      expect(git(ws.src, ["rev-parse", "HEAD"])).toBe(second);
    } finally {
      await ws.remove();
    }
  });

  it("fails with RevisionUnavailable for a commit the repository does not have", async () => {
    const missing = "0123456789abcdef0123456789abcdef01234567";
    const { ctx, ws } = await providerContext(sourceJob({ RepositoryUrl: url }, missing), { root: root.dir });
    try {
      const err = await gitSourceProvider(ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobFailure);
      expect((err as JobFailure).code).toBe("RevisionUnavailable");
      expect((err as JobFailure).message).toContain(missing);
    } finally {
      await ws.remove();
    }
  });

  it("fails with JobFailed naming the branch when the branch does not exist", async () => {
    const { ctx, ws } = await providerContext(sourceJob({ RepositoryUrl: url, BranchName: "nope" }), { root: root.dir });
    try {
      const err = await gitSourceProvider(ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JobFailure);
      expect((err as JobFailure).code).toBe("JobFailed");
      expect((err as JobFailure).message).toContain("branch nope");
    } finally {
      await ws.remove();
    }
  });

  it("rejects option-like URLs and branches, and non-hex revisions, as configuration errors", async () => {
    const cases = [
      sourceJob({ RepositoryUrl: "--upload-pack=touch /tmp/pwned" }),
      sourceJob({ RepositoryUrl: url, BranchName: "--orphan" }),
      sourceJob({ RepositoryUrl: url }, "HEAD~1; rm -rf /"),
      sourceJob({}),
    ];
    for (const job of cases) {
      const { ctx, ws } = await providerContext(job, { root: root.dir });
      try {
        const err = await gitSourceProvider(ctx).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(JobFailure);
        expect((err as JobFailure).code).toBe("ConfigurationError");
      } finally {
        await ws.remove();
      }
    }
  });

  it("never hands git an option-like branch or revision: refused naming the field, git never started", async () => {
    // A git on PATH that records every call, so the test sees whether git ran at all.
    const bin = path.join(root.dir, "recording-bin");
    const calls = path.join(root.dir, "git-calls.log");
    const marker = path.join(root.dir, "upload-pack-ran");
    await mkdir(bin, { recursive: true });
    const realGit = execFileSync("bash", ["-c", "command -v git"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
    await writeFile(path.join(bin, "git"), `#!/bin/sh\necho "$*" >> '${calls}'\nexec '${realGit}' "$@"\n`, { mode: 0o755 });
    const env = { PATH: `${bin}:${process.env["PATH"] ?? "/usr/bin:/bin"}` };
    const attack = `--upload-pack=touch ${marker}`;
    const cases: [ReturnType<typeof sourceJob>, string][] = [
      [sourceJob({ RepositoryUrl: url, BranchName: attack }), "configuration.BranchName:"],
      [sourceJob({ RepositoryUrl: url, Branch: attack }), "configuration.Branch:"],
      [sourceJob({ RepositoryUrl: url }, attack), "sourceRevision:"],
      [sourceJob({ RepositoryUrl: attack }), "configuration.RepositoryUrl:"],
    ];
    for (const [job, field] of cases) {
      const { ctx, ws } = await providerContext(job, { root: root.dir, env });
      try {
        const err = await gitSourceProvider(ctx).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(JobFailure);
        expect((err as JobFailure).code).toBe("ConfigurationError");
        expect((err as JobFailure).message.startsWith(field)).toBe(true);
      } finally {
        await ws.remove();
      }
    }
    await expect(readFile(calls, "utf8")).rejects.toMatchObject({ code: "ENOENT" });
    await expect(readFile(marker)).rejects.toMatchObject({ code: "ENOENT" });
    // The recorder does see git when a job is valid.
    const { ctx, ws } = await providerContext(sourceJob({ RepositoryUrl: url }), { root: root.dir, env });
    try {
      await gitSourceProvider(ctx);
    } finally {
      await ws.remove();
    }
    expect(await readFile(calls, "utf8")).toContain("clone");
  });

  it("redacts credentials in URLs", () => {
    expect(redactUrl("fatal: could not read https://user:s3cret@example.com/r.git")).toBe(
      "fatal: could not read https://***@example.com/r.git",
    );
    expect(redactUrl("file:///tmp/repo")).toBe("file:///tmp/repo");
  });
});
