// Whether a Git event passes a pipeline trigger's filters (AWS GitConfiguration): OR across the
// entries of `push` / `pullRequest`, AND across the categories one entry gives, and within a
// category a value passes when some include matches (or none are given) and no exclude does.
// Pure: the source poller and the webhook receiver decide with it and log the reason.

import { globMatch } from "./glob.js";

/** Includes/excludes of one category (a proto GitFilterCriteria or a plain object). */
export interface GitFilterCriteriaLike {
  readonly includes: readonly string[];
  readonly excludes: readonly string[];
}

export interface GitPushFilterLike {
  readonly tags?: GitFilterCriteriaLike | undefined;
  readonly branches?: GitFilterCriteriaLike | undefined;
  readonly filePaths?: GitFilterCriteriaLike | undefined;
}

export interface GitPullRequestFilterLike {
  readonly events: readonly string[];
  readonly branches?: GitFilterCriteriaLike | undefined;
  readonly filePaths?: GitFilterCriteriaLike | undefined;
}

/** The filters of a trigger (a proto GitConfiguration fits). */
export interface GitTriggerFiltersLike {
  readonly push: readonly GitPushFilterLike[];
  readonly pullRequest: readonly GitPullRequestFilterLike[];
}

export type PullRequestEventType = "OPEN" | "UPDATED" | "CLOSED";

/**
 * A Git event. `changedPaths` undefined means "not known" (the diff could not be computed):
 * a filePaths filter then lets the event through rather than silently dropping a change, and
 * the reason says so.
 */
export type GitTriggerEvent =
  | { kind: "push"; branch?: string; tag?: string; commit: string; changedPaths?: readonly string[] }
  | {
      kind: "pullRequest";
      event: PullRequestEventType;
      sourceBranch: string;
      targetBranch: string;
      commit: string;
      changedPaths?: readonly string[];
    };

export interface TriggerMatch {
  readonly matched: boolean;
  /** Which entry matched, or why each entry did not (logged, and kept as the trigger detail). */
  readonly reason: string;
}

/** Whether `value` passes one category; the reason names the pattern that decided. */
export function criteriaMatch(criteria: GitFilterCriteriaLike, value: string): { pass: boolean; why: string } {
  const excluded = criteria.excludes.find((p) => globMatch(p, value));
  if (excluded !== undefined) return { pass: false, why: `${JSON.stringify(value)} is excluded by ${JSON.stringify(excluded)}` };
  if (criteria.includes.length === 0) return { pass: true, why: `${JSON.stringify(value)} is not excluded` };
  const included = criteria.includes.find((p) => globMatch(p, value));
  if (included === undefined) {
    return { pass: false, why: `${JSON.stringify(value)} matches no include (${criteria.includes.map((p) => JSON.stringify(p)).join(", ")})` };
  }
  return { pass: true, why: `${JSON.stringify(value)} matches ${JSON.stringify(included)}` };
}

/** A filePaths category passes when at least one changed path passes it. */
function pathsMatch(criteria: GitFilterCriteriaLike, paths: readonly string[] | undefined): { pass: boolean; why: string } {
  if (paths === undefined) return { pass: true, why: "changed paths are not known, so filePaths was not applied" };
  if (paths.length === 0) return { pass: false, why: "no file changed" };
  for (const p of paths) {
    const r = criteriaMatch(criteria, p);
    if (r.pass) return { pass: true, why: `file ${r.why}` };
  }
  const shown = paths.slice(0, 5).map((p) => JSON.stringify(p)).join(", ");
  return { pass: false, why: `no changed file passes filePaths (changed: ${shown}${paths.length > 5 ? `, ${paths.length - 5} more` : ""})` };
}

type Check = { pass: boolean; why: string };

/** Runs the checks of one entry in order; the first failure decides. */
function entryOutcome(label: string, checks: readonly (() => Check)[]): TriggerMatch {
  const passed: string[] = [];
  for (const check of checks) {
    const r = check();
    if (!r.pass) return { matched: false, reason: `${label}: ${r.why}` };
    passed.push(r.why);
  }
  return { matched: true, reason: `${label} matched${passed.length > 0 ? `: ${passed.join("; ")}` : ""}` };
}

/**
 * Whether `event` starts the pipeline under `filters`. A push is judged by the `push` entries
 * only and a pull request by the `pullRequest` entries only.
 */
export function matchGitTrigger(filters: GitTriggerFiltersLike, event: GitTriggerEvent): TriggerMatch {
  const outcomes: TriggerMatch[] = [];
  if (event.kind === "push") {
    if (filters.push.length === 0) return { matched: false, reason: "the trigger has no push filters" };
    filters.push.forEach((entry, i) => {
      const checks: (() => Check)[] = [];
      const { tags, branches, filePaths } = entry;
      if (tags !== undefined) {
        checks.push(() => (event.tag === undefined ? { pass: false, why: "filters tags, but this push is to a branch" } : tagCheck(tags, event.tag)));
      }
      if (branches !== undefined) {
        checks.push(() => (event.branch === undefined ? { pass: false, why: "filters branches, but this push is of a tag" } : branchCheck(branches, event.branch)));
      }
      if (filePaths !== undefined) checks.push(() => pathsMatch(filePaths, event.changedPaths));
      outcomes.push(entryOutcome(`push[${i}]`, checks));
    });
  } else {
    if (filters.pullRequest.length === 0) return { matched: false, reason: "the trigger has no pullRequest filters" };
    filters.pullRequest.forEach((entry, i) => {
      const checks: (() => Check)[] = [
        () =>
          entry.events.length === 0 || entry.events.includes(event.event)
            ? { pass: true, why: `event ${event.event}` }
            : { pass: false, why: `event ${event.event} is not one of ${entry.events.join(", ")}` },
      ];
      const { branches, filePaths } = entry;
      if (branches !== undefined) checks.push(() => branchCheck(branches, event.targetBranch, "target branch "));
      if (filePaths !== undefined) checks.push(() => pathsMatch(filePaths, event.changedPaths));
      outcomes.push(entryOutcome(`pullRequest[${i}]`, checks));
    });
  }
  const hit = outcomes.find((o) => o.matched);
  if (hit !== undefined) return hit;
  return { matched: false, reason: `no filter matched: ${outcomes.map((o) => o.reason).join("; ")}` };
}

function tagCheck(criteria: GitFilterCriteriaLike, tag: string): Check {
  const r = criteriaMatch(criteria, tag);
  return { pass: r.pass, why: `tag ${r.why}` };
}

function branchCheck(criteria: GitFilterCriteriaLike, branch: string, label = "branch "): Check {
  const r = criteriaMatch(criteria, branch);
  return { pass: r.pass, why: `${label}${r.why}` };
}
