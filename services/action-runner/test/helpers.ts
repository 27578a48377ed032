// Shared fixtures of the action-runner tests: jobs, local git repositories, provider contexts.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { noopLogger } from "@sluice/domain";
import { JobSchema } from "@sluice/proto";
import type { Job } from "@sluice/proto";
import type { PreparedInput, ProviderContext } from "../src/providers/provider.js";
import { createWorkspace } from "../src/workspace.js";
import type { Workspace } from "../src/workspace.js";

/** The environment test jobs start from. */
export const BASE_ENV: Readonly<Record<string, string>> = {
  PATH: process.env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
  HOME: process.env["HOME"] ?? "/tmp",
};

/** A Job with sensible identity fields; `init` overrides any of them. */
export function makeJob(init: MessageInitShape<typeof JobSchema> = {}): Job {
  const actionExecutionId = init.actionExecutionId ?? `ae-${Math.random().toString(36).slice(2, 10)}`;
  const attempt = init.attempt ?? 1;
  const defaults: MessageInitShape<typeof JobSchema> = {
    jobId: `${actionExecutionId}:${attempt}`,
    actionExecutionId,
    attempt,
    pipelineName: "runner-test",
    pipelineVersion: 1,
    pipelineExecutionId: "exec-1",
    stageName: "Build",
    actionName: "Run",
    actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
  };
  // Object.assign, not a spread: `init` may itself be a message, which a spread would retype.
  return create(JobSchema, Object.assign({}, defaults, init) as MessageInitShape<typeof JobSchema>);
}

/** A temp directory removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Runs git synchronously in `cwd` with a fixed identity; returns trimmed stdout. */
export function git(cwd: string, args: readonly string[], env: Record<string, string> = {}): string {
  return execFileSync("git", ["-c", "user.name=Sluice Test", "-c", "user.email=test@sluice.invalid", ...args], {
    cwd,
    env: { ...BASE_ENV, GIT_CONFIG_NOSYSTEM: "1", ...env },
    encoding: "utf8",
  }).trim();
}

/** Commits everything in `repo` with fixed author and committer dates (ISO 8601). */
export function commitAll(repo: string, message: string, authorDate: string, committerDate: string): string {
  git(repo, ["add", "-A"]);
  git(repo, ["commit", "-q", "-m", message], { GIT_AUTHOR_DATE: authorDate, GIT_COMMITTER_DATE: committerDate });
  return git(repo, ["rev-parse", "HEAD"]);
}

/** A provider context over a fresh workspace; `dispose` removes the workspace. */
export async function providerContext(
  job: Job,
  opts: { root: string; signal?: AbortSignal; inputs?: PreparedInput[]; env?: Record<string, string> },
): Promise<{ ctx: ProviderContext; ws: Workspace }> {
  const ws = await createWorkspace(opts.root);
  const ctx: ProviderContext = {
    job,
    ws,
    inputs: opts.inputs ?? [],
    env: { ...BASE_ENV, CODEBUILD_SRC_DIR: ws.src, ...opts.env },
    logger: noopLogger,
    signal: opts.signal ?? new AbortController().signal,
  };
  return { ctx, ws };
}
