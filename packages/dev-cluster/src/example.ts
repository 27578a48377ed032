import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const EXAMPLE_PIPELINE = "example";
export const EXAMPLE_BUCKET = "sluice-example-site";

/** Makes (or reuses) a small local git repository for the example pipeline. */
export function ensureExampleRepo(dir: string, env: Record<string, string | undefined>): string {
  const gitEnv = {
    ...env,
    GIT_AUTHOR_NAME: env["GIT_AUTHOR_NAME"] ?? "Sluice Example",
    GIT_AUTHOR_EMAIL: env["GIT_AUTHOR_EMAIL"] ?? "example@sluice.invalid",
    GIT_COMMITTER_NAME: env["GIT_COMMITTER_NAME"] ?? "Sluice Example",
    GIT_COMMITTER_EMAIL: env["GIT_COMMITTER_EMAIL"] ?? "example@sluice.invalid",
  };
  const git = (...args: string[]): string => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", env: gitEnv }).trim();
  if (!existsSync(join(dir, ".git"))) {
    mkdirSync(join(dir, "site"), { recursive: true });
    git("init", "-q", "-b", "main");
    writeFileSync(join(dir, "site", "index.html"), "<h1>Hello from Sluice</h1>\n");
    writeFileSync(join(dir, "build.sh"), 'set -e\nmkdir -p dist\ncp -r site/. dist/\necho "built from $GREETING_SOURCE" > dist/BUILD_INFO\n');
    git("add", "-A");
    git("commit", "-qm", "Initial example site");
  }
  return git("rev-parse", "HEAD");
}

/** An AWS create-pipeline JSON document, as a user would write it, for the example. */
export function examplePipelineJson(repoDir: string): string {
  return JSON.stringify(
    {
      pipeline: {
        name: EXAMPLE_PIPELINE,
        roleArn: "arn:aws:iam::123456789012:role/sluice-example",
        artifactStore: { type: "S3", location: "sluice-artifacts" },
        stages: [
          {
            name: "Source",
            actions: [
              {
                name: "Checkout",
                actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
                configuration: { RepositoryUrl: `file://${repoDir}`, BranchName: "main" },
                outputArtifacts: [{ name: "SourceOutput" }],
                namespace: "SourceVariables",
              },
            ],
          },
          {
            name: "Build",
            actions: [
              {
                name: "Build",
                actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
                commands: ["bash build.sh", "ls -l dist"],
                environmentVariables: [{ name: "GREETING_SOURCE", value: "#{SourceVariables.CommitId}", type: "PLAINTEXT" }],
                inputArtifacts: [{ name: "SourceOutput" }],
                outputArtifacts: [{ name: "BuildOutput", files: ["dist/**"] }],
              },
            ],
          },
          {
            name: "Approve",
            actions: [
              {
                name: "Approve",
                actionTypeId: { category: "Approval", owner: "AWS", provider: "Manual", version: "1" },
                configuration: { CustomData: "Check the build, then approve the deploy." },
              },
            ],
          },
          {
            name: "Deploy",
            actions: [
              {
                name: "Deploy",
                actionTypeId: { category: "Deploy", owner: "AWS", provider: "S3", version: "1" },
                configuration: { BucketName: EXAMPLE_BUCKET, Extract: "true", ObjectKey: "site" },
                inputArtifacts: [{ name: "BuildOutput" }],
              },
            ],
          },
        ],
      },
    },
    null,
    2,
  );
}
