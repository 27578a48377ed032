/**
 * A push or pull-request event of a Git host, in one shape whatever the host (GitHub, GitLab,
 * Gitea/Forgejo). `repositoryUrls` holds every URL the payload gives for the repository (clone,
 * web, ssh), since a source action may name any of them.
 */
export type GitChangeEvent =
  | {
      kind: "push";
      repositoryUrls: string[];
      branch?: string;
      tag?: string;
      commit: string;
      changedPaths: string[];
    }
  | {
      kind: "pullRequest";
      repositoryUrls: string[];
      event: "OPEN" | "UPDATED" | "CLOSED";
      sourceBranch: string;
      targetBranch: string;
      commit: string;
      changedPaths: string[];
    };

/** Which host sent an event; also the endpoint `/hooks/<provider>`. */
export type GitHostProvider = "github" | "gitlab" | "gitea";

/** What a payload turned into: an event, or why it starts nothing (ping, branch deletion, ...). */
export type NormaliseOutcome = { event: GitChangeEvent } | { ignored: string };

const COMMIT = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const ZERO = /^0+$/;

/**
 * Normalises one delivery. `eventName` is the host's event header (X-GitHub-Event,
 * X-Gitlab-Event, X-Gitea-Event). Anything that is not a push or pull/merge request, or lacks
 * the commit, is ignored with a reason.
 */
export function normaliseGitEvent(provider: GitHostProvider, eventName: string, payload: unknown): NormaliseOutcome {
  const p = asObject(payload);
  if (p === undefined) return { ignored: "payload is not a JSON object" };
  switch (provider) {
    case "github":
    case "gitea":
      if (eventName === "push") return pushOf(p, repositoryUrlsOf(obj(p, "repository"), ["clone_url", "html_url", "ssh_url", "git_url", "url"]), str(p, "after") ?? str(obj(p, "head_commit"), "id"));
      if (eventName === "pull_request") return pullRequestOfGithubLike(p);
      return { ignored: `event "${eventName}" is neither push nor pull_request` };
    case "gitlab":
      if (eventName === "Push Hook" || eventName === "Tag Push Hook") {
        const urls = [...repositoryUrlsOf(obj(p, "project"), ["git_http_url", "git_ssh_url", "web_url", "http_url"]), ...repositoryUrlsOf(obj(p, "repository"), ["git_http_url", "git_ssh_url", "homepage", "url"])];
        return pushOf(p, urls, str(p, "checkout_sha") ?? str(p, "after"));
      }
      if (eventName === "Merge Request Hook") return mergeRequestOfGitlab(p);
      return { ignored: `event "${eventName}" is neither Push Hook, Tag Push Hook nor Merge Request Hook` };
  }
}

function pushOf(p: Record<string, unknown>, repositoryUrls: string[], commit: string | undefined): NormaliseOutcome {
  const ref = str(p, "ref") ?? "";
  if (commit === undefined || ZERO.test(commit)) return { ignored: `push to ${ref || "?"} names no new commit (a deleted branch or tag)` };
  if (!COMMIT.test(commit)) return { ignored: `push commit ${JSON.stringify(commit.slice(0, 80))} is not a commit id` };
  if (repositoryUrls.length === 0) return { ignored: "payload names no repository URL" };
  const changedPaths = new Set<string>();
  const commits = p["commits"];
  if (Array.isArray(commits)) {
    for (const c of commits) {
      for (const key of ["added", "modified", "removed"]) {
        const list = asObject(c)?.[key];
        if (Array.isArray(list)) for (const path of list) if (typeof path === "string") changedPaths.add(path);
      }
    }
  }
  const base = { kind: "push" as const, repositoryUrls, commit, changedPaths: [...changedPaths] };
  if (ref.startsWith("refs/heads/")) return { event: { ...base, branch: ref.slice("refs/heads/".length) } };
  if (ref.startsWith("refs/tags/")) return { event: { ...base, tag: ref.slice("refs/tags/".length) } };
  return { ignored: `push ref ${JSON.stringify(ref.slice(0, 200))} is neither a branch nor a tag` };
}

function pullRequestOfGithubLike(p: Record<string, unknown>): NormaliseOutcome {
  const action = str(p, "action") ?? "";
  const kind = ({ opened: "OPEN", reopened: "OPEN", synchronize: "UPDATED", synchronized: "UPDATED", edited: "UPDATED", closed: "CLOSED" } as const)[action];
  if (kind === undefined) return { ignored: `pull_request action "${action}" is not opened, reopened, synchronize, edited or closed` };
  const pr = obj(p, "pull_request");
  const head = obj(pr, "head");
  const base = obj(pr, "base");
  const commit = str(head, "sha");
  if (commit === undefined || !COMMIT.test(commit)) return { ignored: "pull_request names no head commit" };
  const urls = repositoryUrlsOf(obj(p, "repository") ?? obj(base, "repo"), ["clone_url", "html_url", "ssh_url", "git_url", "url"]);
  return {
    event: { kind: "pullRequest", repositoryUrls: urls, event: kind, sourceBranch: str(head, "ref") ?? "", targetBranch: str(base, "ref") ?? "", commit, changedPaths: [] },
  };
}

function mergeRequestOfGitlab(p: Record<string, unknown>): NormaliseOutcome {
  const attrs = obj(p, "object_attributes");
  const action = str(attrs, "action") ?? "";
  const kind = ({ open: "OPEN", reopen: "OPEN", update: "UPDATED", close: "CLOSED", merge: "CLOSED" } as const)[action];
  if (kind === undefined) return { ignored: `merge request action "${action}" is not open, reopen, update, close or merge` };
  const commit = str(obj(attrs, "last_commit"), "id");
  if (commit === undefined || !COMMIT.test(commit)) return { ignored: "merge request names no last commit" };
  const urls = [...repositoryUrlsOf(obj(p, "project"), ["git_http_url", "git_ssh_url", "web_url", "http_url"]), ...repositoryUrlsOf(obj(attrs, "target"), ["git_http_url", "git_ssh_url", "web_url", "http_url"])];
  return {
    event: { kind: "pullRequest", repositoryUrls: urls, event: kind, sourceBranch: str(attrs, "source_branch") ?? "", targetBranch: str(attrs, "target_branch") ?? "", commit, changedPaths: [] },
  };
}

function repositoryUrlsOf(repo: Record<string, unknown> | undefined, keys: readonly string[]): string[] {
  const urls: string[] = [];
  for (const key of keys) {
    const v = str(repo, key);
    if (v !== undefined && v !== "" && !urls.includes(v)) urls.push(v);
  }
  return urls;
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function obj(p: Record<string, unknown> | undefined, key: string): Record<string, unknown> | undefined {
  return asObject(p?.[key]);
}

function str(p: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = p?.[key];
  return typeof v === "string" ? v : undefined;
}
