import { rm } from "node:fs/promises";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { gitProcessEnv } from "@sluice/service-kit";
import { runProcess } from "../process.js";
import type { ProcessOutcome } from "../process.js";
import { JobFailure, LineTail, configValue, requireConfig } from "./provider.js";
import type { Provider, ProviderContext, ProviderOutcome } from "./provider.js";

/**
 * `Source`/`Git`: clones any git URL (https, ssh, git, file://, a local path) with the `git`
 * CLI and produces the tree at the chosen commit as the output artifact.
 *
 * Configuration: `RepositoryUrl` (required), `BranchName` (default "main"; GitHub v1's `Branch`
 * is accepted too), `OutputArtifactFormat` (CODE_ZIP, default, or CODEBUILD_CLONE_REF to keep
 * `.git` in the artifact). When the job
 * carries `sourceRevision` (a change detected by the source poller) exactly that commit is
 * checked out; otherwise the branch head.
 *
 * Output variables (CodeCommit's): CommitId, BranchName, CommitMessage, AuthorDate,
 * CommitterDate (ISO 8601, UTC).
 */
export const gitSourceProvider: Provider = async (ctx) => {
  const { job } = ctx;
  const url = requireConfig(job, "RepositoryUrl");
  // GitHub (version 1) actions name the branch `Branch`; BranchName wins when both are set.
  const branchKey = configValue(job, "BranchName") !== undefined ? "BranchName" : "Branch";
  const branch = configValue(job, "BranchName") ?? configValue(job, "Branch") ?? "main";
  // CODEBUILD_CLONE_REF (CodePipeline's "full clone") keeps the repository metadata in the
  // artifact so later actions can run git commands; CODE_ZIP (default) is the plain tree.
  const format = configValue(job, "OutputArtifactFormat") ?? "CODE_ZIP";
  if (format !== "CODE_ZIP" && format !== "CODEBUILD_CLONE_REF") {
    throw new JobFailure(
      "ConfigurationError",
      `configuration.OutputArtifactFormat: must be CODE_ZIP or CODEBUILD_CLONE_REF, got "${format}"`,
    );
  }
  // A value starting with "-" would be read by git as an option (e.g. --upload-pack=<command>);
  // "--" below prevents that for the URL, and the branch is rejected outright.
  if (url.startsWith("-")) {
    throw new JobFailure("ConfigurationError", "configuration.RepositoryUrl: must not start with \"-\"");
  }
  if (branch.startsWith("-") || /[\s\0~^:?*[\\]/.test(branch) || branch.includes("..")) {
    throw new JobFailure("ConfigurationError", `configuration.${branchKey}: "${branch}" is not a valid branch name`);
  }
  const revision = job.sourceRevision.trim();
  if (revision !== "" && !/^[0-9a-fA-F]{4,64}$/.test(revision)) {
    throw new JobFailure("ConfigurationError", `sourceRevision: "${revision}" is not a commit id`);
  }

  const dir = ctx.ws.src;
  const git = createGit(ctx, url);

  const clone = await git.run(["clone", "--quiet", "--no-checkout", "--branch", branch, "--", url, dir], ctx.ws.root);
  if (!git.ok(clone)) {
    throw new JobFailure("JobFailed", `git clone of ${redactUrl(url)} (branch ${branch}) failed: ${git.lastError()}`);
  }

  let target = "HEAD";
  if (revision !== "") {
    target = revision;
    const present = await git.run(["cat-file", "-e", `${revision}^{commit}`], dir);
    if (!git.ok(present)) {
      // Not in the branch's history: ask the remote for exactly that commit.
      const fetched = await git.run(["fetch", "--quiet", "origin", revision], dir);
      if (!git.ok(fetched)) {
        throw new JobFailure(
          "RevisionUnavailable",
          `revision ${revision} is not available in ${redactUrl(url)}: ${git.lastError()}`,
        );
      }
      target = "FETCH_HEAD";
    }
  }

  const resolved = await git.run(["rev-parse", "--verify", "--quiet", `${target}^{commit}`], dir, true);
  const commit = resolved.stdout.trim();
  if (!git.ok(resolved) || !/^[0-9a-f]{40,64}$/.test(commit)) {
    throw new JobFailure("RevisionUnavailable", `revision ${revision || branch} does not name a commit`);
  }
  if (revision !== "" && !commit.toLowerCase().startsWith(revision.toLowerCase())) {
    throw new JobFailure("RevisionUnavailable", `revision ${revision} resolved to a different commit (${commit})`);
  }

  const checkout = await git.run(["checkout", "--quiet", "--detach", commit], dir);
  if (!git.ok(checkout)) {
    throw new JobFailure("JobFailed", `git checkout ${commit} failed: ${git.lastError()}`);
  }

  const log = await git.run(["log", "-1", "--no-color", "--format=%H%x00%aI%x00%cI%x00%B", commit], dir, true);
  if (!git.ok(log)) {
    throw new JobFailure("JobFailed", `git log ${commit} failed: ${git.lastError()}`);
  }
  const [, authorIso = "", committerIso = "", ...messageParts] = log.stdout.split("\0");
  const message = messageParts.join("\0").trim();
  const authorDate = parseGitDate(authorIso, "author date");
  const committerDate = parseGitDate(committerIso, "committer date");
  const firstLine = message.split("\n", 1)[0] ?? "";

  // CODE_ZIP: the artifact is the tree at the commit, without the repository metadata.
  if (format === "CODE_ZIP") await rm(path.join(dir, ".git"), { recursive: true, force: true });

  const outcome: ProviderOutcome = {
    summary: firstLine,
    externalExecutionId: commit,
    outputVariables: {
      CommitId: commit,
      BranchName: branch,
      CommitMessage: message,
      AuthorDate: isoSeconds(authorDate),
      CommitterDate: isoSeconds(committerDate),
    },
    revision: {
      revisionId: commit,
      revisionSummary: firstLine,
      created: timestampFromDate(committerDate),
      branch,
    },
    outputs: job.outputs.map((o) => ({ name: o.name, dir, patterns: [] })),
  };
  return outcome;
};

interface Git {
  run(args: readonly string[], cwd: string, captureStdout?: boolean): Promise<ProcessOutcome>;
  ok(outcome: ProcessOutcome): boolean;
  /** The last stderr lines of the most recent command, credentials redacted. */
  lastError(): string;
}

function createGit(ctx: ProviderContext, url: string): Git {
  const config = ["-c", "protocol.ext.allow=never", "-c", "advice.detachedHead=false"];
  // Local clones need the file protocol, which git restricts for some operations by default.
  if (url.startsWith("file://")) config.push("-c", "protocol.file.allow=always");
  // The job's allow-listed environment (see jobEnvironment), never the runner's own.
  const env = gitProcessEnv(ctx.env);
  let tail = new LineTail(5);
  return {
    async run(args, cwd, captureStdout = false) {
      tail = new LineTail(5);
      const argv = ["git", ...config, ...args];
      ctx.logger.debug("git", { args: args.map(redactUrl) });
      return runProcess(argv, {
        cwd,
        env,
        signal: ctx.signal,
        captureStdout,
        onLine: (stream, line) => {
          if (stream === "stdout" && captureStdout) return;
          const clean = redactUrl(line);
          tail.push(clean);
          // Credentials taken out of URLs first; the job log masks the job's secrets too.
          ctx.log?.write(stream, clean);
          ctx.logger.debug("git output", { stream, line: clean });
        },
      });
    },
    ok(outcome) {
      return !outcome.aborted && outcome.exitCode === 0;
    },
    lastError() {
      const text = tail.toString().trim();
      return text === "" ? "no output" : text;
    },
  };
}

/** Hides the user-info part (`user:token@`) of any URL in `text`. */
export function redactUrl(text: string): string {
  return text.replace(/([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/@\s]+@/g, "$1***@");
}

function parseGitDate(value: string, what: string): Date {
  const date = new Date(value);
  if (value === "" || Number.isNaN(date.getTime())) {
    throw new JobFailure("JobFailed", `git reported an unreadable ${what}: "${value}"`);
  }
  return date;
}

/** ISO 8601 in UTC without milliseconds (git dates have second precision). */
function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
