// Starting executions: StartPipelineExecution (variables, pinned source
// revisions, clientRequestToken), source changes, and the per-mode limits.
// A start adds the execution to the draft and leaves a tryEnter step for its
// first stage on the agenda; the driver (flow.ts) moves it in.

import { DomainError, invalid } from "../errors.js";
import { CLIENT_REQUEST_TOKEN_PATTERN, LIMITS } from "../limits.js";
import { stripUserinfo } from "./secrets.js";
import type { FieldViolation } from "../errors.js";
import type {
  DecideContext,
  ExecutionEvent,
  ExecutionRuntime,
  PipelineRuntime,
  PipelineVariableOverride,
  ResolvedPipelineVariable,
  SourceRevisionRef,
  TriggerSpec,
} from "./types.js";
import {
  addExecution,
  draftOf,
  emitPipeline,
  ignore,
  isTerminal,
  MAX_PARALLEL_EXECUTIONS,
  MAX_QUEUED_EXECUTIONS,
  MAX_REQUEST_TOKENS,
  rememberRevision,
} from "./draft.js";
import type { Draft, Handled } from "./draft.js";


/** Triggers of a caller's explicit start: a required pipeline variable without a value is the caller's error. */
const MANUAL_TRIGGERS: ReadonlySet<string> = new Set(["StartPipelineExecution"]);

type ExecutionRequested = Extract<ExecutionEvent, { type: "ExecutionRequested" }>;

export function onExecutionRequested(state: PipelineRuntime, event: ExecutionRequested, ctx: DecideContext): Handled {
  const token = event.clientRequestToken;
  if (token !== undefined) {
    if (!CLIENT_REQUEST_TOKEN_PATTERN.test(token)) {
      throw invalid("ValidationException", [{ field: "clientRequestToken", message: "must be 1-128 characters of [a-zA-Z0-9-]" }]);
    }
    const seen = state.requestTokens?.find((t) => t.token === token);
    if (seen !== undefined) return ignore(state, `clientRequestToken ${token} already started execution ${seen.executionId}`, seen.executionId);
  }
  if (Object.hasOwn(state.executions, event.executionId)) {
    return ignore(state, `execution ${event.executionId} already exists`, event.executionId);
  }
  const pinned = checkPinned(state, event.pinnedRevisions ?? []);
  const variables = resolvePipelineVariables(state, event.variables ?? [], MANUAL_TRIGGERS.has(event.trigger.triggerType));
  const limit = limitProblem(state);
  if (limit !== undefined) throw new DomainError("ConcurrentPipelineExecutionsLimitExceededException", limit);
  const d = draftOf(state, ctx, event.executionId);
  if (token !== undefined) {
    const tokens = [...(d.state.requestTokens ?? []), { token, executionId: event.executionId, at: ctx.now }];
    d.state.requestTokens = tokens.slice(-MAX_REQUEST_TOKENS);
  }
  startExecution(d, event.executionId, event.trigger, pinned, variables, token);
  return d;
}

export function onSourceChanged(state: PipelineRuntime, event: Extract<ExecutionEvent, { type: "SourceChanged" }>, ctx: DecideContext): Handled {
  const { actionName, revision } = event;
  const seen = seenSourceChange(state, event);
  if (seen !== undefined) return seen;
  // Not an error for anyone to see: the revision stays unseen, so the next
  // poll or push reports it again once the pipeline has room.
  const limit = limitProblem(state);
  if (limit !== undefined && event.limitIsError === true) throw new DomainError("ConcurrentPipelineExecutionsLimitExceededException", limit);
  if (limit !== undefined) return ignore(state, limit);
  const d = draftOf(state, ctx, event.executionId);
  const pinned: SourceRevisionRef = { ...revision, actionName };
  startExecution(d, event.executionId, event.trigger, [pinned], resolvePipelineVariables(state, [], false));
  return d;
}

/** Why a reported source revision starts nothing: not a source action, already started or running, or a known execution id. */
function seenSourceChange(state: PipelineRuntime, event: { executionId: string; actionName: string; revision: SourceRevisionRef }): Handled | undefined {
  const { actionName, revision } = event;
  const isSource = state.spec.stages.some((s) => s.actions.some((a) => a.name === actionName && a.category === "Source"));
  if (!isSource) return ignore(state, `"${actionName}" is not a source action of pipeline ${state.pipelineName}`);
  const last = state.lastSourceRevisions.find((r) => r.actionName === actionName);
  if (last?.revisionId === revision.revisionId) {
    return ignore(state, `revision ${revision.revisionId} of ${actionName} was already started`, executionOfRevision(state, actionName, revision.revisionId));
  }
  for (const exec of Object.values(state.executions)) {
    if (isTerminal(exec.status)) continue;
    if (exec.pinnedRevisions.some((p) => p.actionName === actionName && p.revisionId === revision.revisionId)) {
      return ignore(state, `revision ${revision.revisionId} of ${actionName} is being run by execution ${exec.id}`, exec.id);
    }
  }
  if (Object.hasOwn(state.executions, event.executionId)) {
    return ignore(state, `execution ${event.executionId} already exists`);
  }
  return undefined;
}

/** statusSummary is cut here, as AWS bounds it. */
const MAX_STATUS_SUMMARY = 2048;

/**
 * The revision's pipeline definition was refused: its execution exists, Failed, so people see
 * why the commit did not run, and the revision is seen (no second failed execution for it).
 * No pipeline limit applies: the execution takes no room.
 */
export function onDefinitionRejected(state: PipelineRuntime, event: Extract<ExecutionEvent, { type: "DefinitionRejected" }>, ctx: DecideContext): Handled {
  const seen = seenSourceChange(state, event);
  if (seen !== undefined) return seen;
  const d = draftOf(state, ctx, event.executionId);
  const pinned: SourceRevisionRef = { ...event.revision, actionName: event.actionName };
  const listed = event.violations.map((v) => `${v.field}: ${v.message}`).join("; ");
  const exec: ExecutionRuntime = {
    id: event.executionId,
    pipelineVersion: state.spec.version,
    executionMode: state.spec.executionMode,
    executionType: "STANDARD",
    status: "Failed",
    statusSummary: `.sluice/pipeline.json at ${event.revision.revisionId} is invalid; pipeline ${state.pipelineName} unchanged: ${listed}`.slice(0, MAX_STATUS_SUMMARY),
    trigger: { ...event.trigger, triggerDetail: stripUserinfo(event.trigger.triggerDetail) },
    startTime: ctx.now,
    lastUpdateTime: ctx.now,
    stages: [],
    artifacts: [],
    sourceRevisions: [],
    pinnedRevisions: [pinned],
    variables: {},
  };
  addExecution(d, exec);
  rememberRevision(d.state, pinned);
  d.state.finished.push(exec.id);
  emitPipeline(d, exec, "FAILED");
  return d;
}

/** The newest execution still in the state whose source action fetched, or was pinned to, the revision. */
function executionOfRevision(state: PipelineRuntime, actionName: string, revisionId: string): string | undefined {
  const same = (r: SourceRevisionRef): boolean => r.actionName === actionName && r.revisionId === revisionId;
  let found: ExecutionRuntime | undefined;
  for (const exec of Object.values(state.executions)) {
    if (!exec.sourceRevisions.some(same) && !exec.pinnedRevisions.some(same)) continue;
    if (found === undefined || exec.startTime > found.startTime) found = exec;
  }
  return found?.id;
}

/** Why the pipeline cannot take another execution (QUEUED queue full, PARALLEL at its limit). */
function limitProblem(state: PipelineRuntime): string | undefined {
  const live = Object.values(state.executions).filter((e) => !isTerminal(e.status));
  if (state.spec.executionMode === "QUEUED") {
    const waiting = live.filter((e) => e.waitingFor !== undefined).length;
    if (waiting >= MAX_QUEUED_EXECUTIONS) {
      return `pipeline ${state.pipelineName} already has ${waiting} executions queued (limit ${MAX_QUEUED_EXECUTIONS})`;
    }
  }
  if (state.spec.executionMode === "PARALLEL" && live.length >= MAX_PARALLEL_EXECUTIONS) {
    return `pipeline ${state.pipelineName} already runs ${live.length} executions in parallel (limit ${MAX_PARALLEL_EXECUTIONS})`;
  }
  return undefined;
}

/** StartPipelineExecution.sourceRevisions: each names a distinct source action of the first stage. */
function checkPinned(state: PipelineRuntime, pinned: readonly SourceRevisionRef[]): SourceRevisionRef[] {
  const violations: FieldViolation[] = [];
  const sources = (state.spec.stages[0]?.actions ?? []).filter((a) => a.category === "Source").map((a) => a.name);
  pinned.forEach((p, i) => {
    if (!sources.includes(p.actionName)) {
      violations.push({
        field: `sourceRevisions[${i}].actionName`,
        message: `"${p.actionName}" is not a source action of pipeline ${state.pipelineName} (source actions: ${sources.join(", ")})`,
      });
    } else if (pinned.findIndex((o) => o.actionName === p.actionName) !== i) {
      violations.push({ field: `sourceRevisions[${i}].actionName`, message: `"${p.actionName}" is pinned more than once` });
    }
    if (p.revisionId === "") violations.push({ field: `sourceRevisions[${i}].revisionValue`, message: "must not be empty" });
  });
  if (violations.length > 0) throw invalid("ValidationException", violations);
  return pinned.map((p) => ({ ...p }));
}

/**
 * The values of the declared pipeline variables: the start's override, else
 * the default. Overrides must name declared variables, once each, with a
 * value of 1–1000 characters. A variable with neither is an error for an
 * explicit start (`required`); other triggers start anyway and a reference to
 * it fails the action that uses it, naming it.
 */
function resolvePipelineVariables(state: PipelineRuntime, overrides: readonly PipelineVariableOverride[], required: boolean): ResolvedPipelineVariable[] {
  const declared = state.spec.variables;
  const violations: FieldViolation[] = [];
  overrides.forEach((o, i) => {
    if (!declared.some((v) => v.name === o.name)) {
      const names = declared.map((v) => v.name);
      violations.push({
        field: `variables[${i}].name`,
        message: names.length === 0 ? `pipeline ${state.pipelineName} declares no variables` : `"${o.name}" is not a variable of pipeline ${state.pipelineName} (declared: ${names.join(", ")})`,
      });
    } else if (overrides.findIndex((x) => x.name === o.name) !== i) {
      violations.push({ field: `variables[${i}].name`, message: `"${o.name}" is given more than once` });
    }
    if (o.value.length < 1 || o.value.length > LIMITS.maxPipelineVariableValueLength) {
      violations.push({ field: `variables[${i}].value`, message: `must be 1-${LIMITS.maxPipelineVariableValueLength} characters, got ${o.value.length}` });
    }
  });
  const resolved: ResolvedPipelineVariable[] = [];
  for (const v of declared) {
    const value = overrides.find((o) => o.name === v.name)?.value ?? v.defaultValue;
    if (value !== undefined) resolved.push({ name: v.name, resolvedValue: value });
    else if (required) violations.push({ field: "variables", message: `pipeline variable "${v.name}" has no default value: give it a value` });
  }
  if (violations.length > 0) throw invalid("ValidationException", violations);
  return resolved;
}

function startExecution(
  d: Draft,
  executionId: string,
  trigger: TriggerSpec,
  pinned: readonly SourceRevisionRef[],
  variables: readonly ResolvedPipelineVariable[],
  clientRequestToken?: string,
): void {
  const { ctx, state } = d;
  const exec: ExecutionRuntime = {
    id: executionId,
    pipelineVersion: state.spec.version,
    executionMode: state.spec.executionMode,
    executionType: "STANDARD",
    status: "InProgress",
    // A poller's detail names the repository; its credentials stay out of the state.
    trigger: { ...trigger, triggerDetail: stripUserinfo(trigger.triggerDetail) },
    startTime: ctx.now,
    lastUpdateTime: ctx.now,
    stages: [],
    artifacts: [],
    sourceRevisions: [],
    pinnedRevisions: pinned.map((p) => ({ ...p })),
    variables: {},
  };
  if (variables.length > 0) {
    exec.pipelineVariables = variables.map((v) => ({ ...v }));
    // `#{variables.<name>}` resolves like any namespace; `variables` is reserved for it.
    exec.variables["variables"] = Object.fromEntries(variables.map((v) => [v.name, v.resolvedValue]));
  }
  if (clientRequestToken !== undefined) exec.clientRequestToken = clientRequestToken;
  addExecution(d, exec);
  // A started revision counts as seen: the same revision reported again by a
  // poller or a webhook must not start a second execution.
  for (const p of pinned) rememberRevision(state, p);
  emitPipeline(d, exec, "STARTED");
  d.agenda.push({ kind: "tryEnter", exec, index: 0 });
}
