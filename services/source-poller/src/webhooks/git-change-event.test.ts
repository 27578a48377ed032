import { describe, expect, it } from "vitest";
import { normaliseGitEvent } from "./git-change-event.js";
import { matchesSourceAction } from "./source-action-match.js";
import type { KnownSourceAction } from "./source-actions.js";

const sha = "a".repeat(40);
const action: KnownSourceAction = {
  _id: "web/Checkout",
  pipelineName: "web",
  actionName: "Checkout",
  actionType: "Source/AWS/Git/1",
  configuration: {},
  git: { repositoryUrl: "https://github.com/acme/web.git", branch: "main" },
  repositoryKey: "github.com/acme/web",
};

describe("normaliseGitEvent", () => {
  it("reads a GitHub push with its changed paths", () => {
    const payload = {
      ref: "refs/heads/main",
      after: sha,
      repository: { clone_url: "https://github.com/acme/web.git", html_url: "https://github.com/acme/web" },
      commits: [{ added: ["a.txt"], modified: ["b.txt"], removed: [] }, { added: [], modified: ["b.txt"], removed: ["c.txt"] }],
    };
    expect(normaliseGitEvent("github", "push", payload)).toEqual({
      event: { kind: "push", repositoryUrls: ["https://github.com/acme/web.git", "https://github.com/acme/web"], branch: "main", commit: sha, changedPaths: ["a.txt", "b.txt", "c.txt"] },
    });
  });

  it("reads a GitLab push (checkout_sha) and a tag push", () => {
    const payload = { ref: "refs/tags/v1", checkout_sha: sha, after: sha, project: { git_http_url: "https://gitlab.example.com/g/web.git" }, commits: [] };
    expect(normaliseGitEvent("gitlab", "Tag Push Hook", payload)).toEqual({
      event: { kind: "push", repositoryUrls: ["https://gitlab.example.com/g/web.git"], tag: "v1", commit: sha, changedPaths: [] },
    });
  });

  it("reads pull and merge requests", () => {
    const pr = { action: "synchronize", pull_request: { head: { ref: "feature", sha }, base: { ref: "main" } }, repository: { clone_url: "https://github.com/acme/web.git" } };
    expect(normaliseGitEvent("github", "pull_request", pr)).toEqual({
      event: { kind: "pullRequest", repositoryUrls: ["https://github.com/acme/web.git"], event: "UPDATED", sourceBranch: "feature", targetBranch: "main", commit: sha, changedPaths: [] },
    });
    const mr = { object_attributes: { action: "merge", source_branch: "f", target_branch: "main", last_commit: { id: sha } }, project: { web_url: "https://gitlab.example.com/g/web" } };
    expect(normaliseGitEvent("gitlab", "Merge Request Hook", mr)).toMatchObject({ event: { kind: "pullRequest", event: "CLOSED", sourceBranch: "f" } });
  });

  it("ignores, with a reason, what starts nothing", () => {
    expect(normaliseGitEvent("github", "push", { ref: "refs/heads/main", after: "0".repeat(40), repository: { clone_url: "x" } })).toEqual({ ignored: "push to refs/heads/main names no new commit (a deleted branch or tag)" });
    expect(normaliseGitEvent("github", "issues", {})).toEqual({ ignored: 'event "issues" is neither push nor pull_request' });
    expect(normaliseGitEvent("gitea", "push", [])).toEqual({ ignored: "payload is not a JSON object" });
    expect(normaliseGitEvent("gitea", "push", { ref: "refs/heads/main", after: "zz", repository: { clone_url: "x" } })).toMatchObject({ ignored: expect.stringContaining("not a commit id") as unknown });
  });
});

describe("matchesSourceAction", () => {
  it("starts a push to the followed branch only", () => {
    const push = { kind: "push" as const, repositoryUrls: [], commit: sha, changedPaths: [] };
    expect(matchesSourceAction(action, { ...push, branch: "main" }).matched).toBe(true);
    expect(matchesSourceAction(action, { ...push, branch: "dev" })).toEqual({ matched: false, reason: "web/Checkout follows branch main, not dev" });
    expect(matchesSourceAction(action, { ...push, tag: "v1" }).matched).toBe(false);
  });

  it("starts nothing for pull requests yet, and says so", () => {
    const pr = { kind: "pullRequest" as const, repositoryUrls: [], event: "OPEN" as const, sourceBranch: "f", targetBranch: "main", commit: sha, changedPaths: [] };
    expect(matchesSourceAction(action, pr)).toEqual({ matched: false, reason: expect.stringContaining("pull request events") as unknown });
  });
});
