// Pipeline triggers (AWS PipelineTriggerDeclaration): V2 only, one per stage-1 Git source
// action, push filters of tags | branches | branches+filePaths, pull-request filters of events
// and branches (+filePaths), AWS's list and pattern lengths, and glob syntax.

import type { GitFilterCriteria, PipelineDeclaration } from "@sluice/proto";
import { LIMITS } from "../limits.js";
import { globProblem } from "../triggers/glob.js";
import { q } from "./messages.js";
import { resolveProvider } from "./providers.js";
import type { Violations } from "./violations.js";

export const TRIGGER_PROVIDER_TYPES = ["CodeStarSourceConnection"] as const;
export const PULL_REQUEST_EVENTS = ["OPEN", "UPDATED", "CLOSED"] as const;

export function checkTriggers(decl: PipelineDeclaration, v: Violations): void {
  const triggers = decl.triggers;
  if (triggers.length === 0) return;
  // An unset type is V1 (normalizePipeline's default), so it is refused too.
  if (decl.pipelineType !== "V2") {
    v.add("pipeline.triggers", `triggers need pipelineType "V2", got ${decl.pipelineType === "" ? "none (V1)" : q(decl.pipelineType)}`);
  }
  if (triggers.length > LIMITS.maxTriggers) v.add("pipeline.triggers", `at most ${LIMITS.maxTriggers} triggers, got ${triggers.length}`);

  const gitSources = new Set((decl.stages[0]?.actions ?? []).filter((a) => resolveProvider(a.actionTypeId)?.builtIn === "Git").map((a) => a.name));
  const seen = new Map<string, number>();
  triggers.forEach((trigger, i) => {
    const path = `pipeline.triggers[${i}]`;
    if (trigger.providerType === "") v.add(`${path}.providerType`, `is required ("CodeStarSourceConnection")`);
    else if (!(TRIGGER_PROVIDER_TYPES as readonly string[]).includes(trigger.providerType)) {
      v.add(`${path}.providerType`, `must be "CodeStarSourceConnection", got ${q(trigger.providerType)}`);
    }
    const git = trigger.gitConfiguration;
    const gpath = `${path}.gitConfiguration`;
    if (git === undefined) {
      v.add(gpath, "is required");
      return;
    }
    const source = git.sourceActionName;
    if (source === "") v.add(`${gpath}.sourceActionName`, "is required: name a Git source action of the first stage");
    else if (!gitSources.has(source)) {
      v.add(`${gpath}.sourceActionName`, `${q(source)} is not a Git source action of the first stage${gitSources.size > 0 ? ` (there: ${[...gitSources].join(", ")})` : ""}`);
    } else {
      const first = seen.get(source);
      if (first !== undefined) v.add(`${gpath}.sourceActionName`, `${q(source)} already has a trigger at pipeline.triggers[${first}]; one trigger per source action`);
      else seen.set(source, i);
    }
    if (git.push.length === 0 && git.pullRequest.length === 0) v.add(gpath, "give push or pullRequest filters");
    if (git.push.length > LIMITS.maxTriggerFilters) v.add(`${gpath}.push`, `at most ${LIMITS.maxTriggerFilters} push filters, got ${git.push.length}`);
    if (git.pullRequest.length > LIMITS.maxTriggerFilters) {
      v.add(`${gpath}.pullRequest`, `at most ${LIMITS.maxTriggerFilters} pullRequest filters, got ${git.pullRequest.length}`);
    }
    git.push.forEach((entry, p) => {
      const ppath = `${gpath}.push[${p}]`;
      if (entry.tags !== undefined && (entry.branches !== undefined || entry.filePaths !== undefined)) {
        v.add(`${ppath}.tags`, "tags cannot be combined with branches or filePaths in one push filter");
      }
      if (entry.tags === undefined && entry.branches === undefined) {
        v.add(ppath, entry.filePaths === undefined ? "give tags or branches" : "filePaths needs branches in the same push filter");
      }
      checkCriteria(`${ppath}.tags`, entry.tags, v);
      checkCriteria(`${ppath}.branches`, entry.branches, v);
      checkCriteria(`${ppath}.filePaths`, entry.filePaths, v);
    });
    git.pullRequest.forEach((entry, p) => {
      const ppath = `${gpath}.pullRequest[${p}]`;
      if (entry.events.length > PULL_REQUEST_EVENTS.length) v.add(`${ppath}.events`, `at most ${PULL_REQUEST_EVENTS.length} events, got ${entry.events.length}`);
      const events = new Set<string>();
      entry.events.forEach((event, e) => {
        if (!(PULL_REQUEST_EVENTS as readonly string[]).includes(event)) {
          v.add(`${ppath}.events[${e}]`, `must be one of ${PULL_REQUEST_EVENTS.join(", ")}, got ${q(event)}`);
        } else if (events.has(event)) v.add(`${ppath}.events[${e}]`, `${q(event)} is listed twice`);
        events.add(event);
      });
      if (entry.branches === undefined) v.add(`${ppath}.branches`, "is required: the target branches the pull requests go to");
      checkCriteria(`${ppath}.branches`, entry.branches, v);
      checkCriteria(`${ppath}.filePaths`, entry.filePaths, v);
    });
  });
}

function checkCriteria(path: string, criteria: GitFilterCriteria | undefined, v: Violations): void {
  if (criteria === undefined) return;
  if (criteria.includes.length === 0 && criteria.excludes.length === 0) v.add(path, "give includes or excludes");
  checkPatterns(`${path}.includes`, criteria.includes, v);
  checkPatterns(`${path}.excludes`, criteria.excludes, v);
}

function checkPatterns(path: string, patterns: readonly string[], v: Violations): void {
  if (patterns.length > LIMITS.maxTriggerPatterns) v.add(path, `at most ${LIMITS.maxTriggerPatterns} patterns, got ${patterns.length}`);
  patterns.forEach((pattern, i) => {
    const at = `${path}[${i}]`;
    if (pattern.length < 1 || pattern.length > LIMITS.maxTriggerPatternLength) {
      v.add(at, `must be 1-${LIMITS.maxTriggerPatternLength} characters, got ${pattern.length}`);
      return;
    }
    const problem = globProblem(pattern);
    if (problem !== undefined) v.add(at, `${q(pattern)} is not a valid glob: ${problem}`);
  });
}
