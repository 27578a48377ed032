import type { GitChangeEvent } from "./git-change-event.js";
import type { KnownSourceAction } from "./source-actions.js";

/** Whether an event starts an action's pipeline, and why (or why not) — the reason is logged. */
export interface SourceActionMatch {
  matched: boolean;
  reason: string;
}

/**
 * The one place that decides whether a Git event (already known to be of the action's
 * repository) starts the action's pipeline. Today: a push to the configured branch does; tags
 * and pull requests do not. This is the seam for V2 trigger filters (push tags/branches/filePaths,
 * pull-request events), which will be judged here from the pipeline's `triggers`.
 */
export function matchesSourceAction(action: KnownSourceAction, event: GitChangeEvent): SourceActionMatch {
  const where = `${action.pipelineName}/${action.actionName}`;
  if (action.git === null) return { matched: false, reason: `${where} is not a Git source` };
  if (event.kind === "pullRequest") {
    return { matched: false, reason: `${where}: pull request events (${event.event} ${event.sourceBranch} -> ${event.targetBranch}) start nothing until V2 pull-request triggers are supported` };
  }
  if (event.branch === undefined) return { matched: false, reason: `${where} follows branch ${action.git.branch}; a push of tag ${event.tag ?? "?"} starts nothing` };
  if (event.branch !== action.git.branch) return { matched: false, reason: `${where} follows branch ${action.git.branch}, not ${event.branch}` };
  return { matched: true, reason: `push to ${event.branch} (the branch ${where} follows)` };
}
