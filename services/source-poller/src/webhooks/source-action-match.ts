import { matchGitTrigger } from "@sluice/domain";
import type { GitChangeEvent } from "./git-change-event.js";
import type { KnownSourceAction } from "./source-actions.js";

/** Whether an event starts an action's pipeline, and why (or why not) — the reason is logged. */
export interface SourceActionMatch {
  matched: boolean;
  reason: string;
}

/**
 * The one place that decides whether a Git event (already known to be of the action's
 * repository) starts the action's pipeline. With a V2 trigger, its filters decide (push tags,
 * branches and filePaths; pull-request events, target branches and filePaths), as AWS replaces
 * the branch with them. Without one, a push to the configured branch does, and tags and pull
 * requests do not.
 */
export function matchesSourceAction(action: KnownSourceAction, event: GitChangeEvent): SourceActionMatch {
  const where = `${action.pipelineName}/${action.actionName}`;
  if (action.git === null) return { matched: false, reason: `${where} is not a Git source` };
  if (action.trigger !== undefined && action.trigger !== null) {
    const outcome = matchGitTrigger(action.trigger, event);
    return { matched: outcome.matched, reason: `${where} trigger: ${outcome.reason}` };
  }
  if (event.kind === "pullRequest") {
    return { matched: false, reason: `${where}: pull request events (${event.event} ${event.sourceBranch} -> ${event.targetBranch}) start nothing until V2 pull-request triggers are supported` };
  }
  if (event.branch === undefined) return { matched: false, reason: `${where} follows branch ${action.git.branch}; a push of tag ${event.tag ?? "?"} starts nothing` };
  if (event.branch !== action.git.branch) return { matched: false, reason: `${where} follows branch ${action.git.branch}, not ${event.branch}` };
  return { matched: true, reason: `push to ${event.branch} (the branch ${where} follows)` };
}
