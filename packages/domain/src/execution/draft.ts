// The working copy one decision mutates (the Draft), the agenda of steps a
// rule module leaves for the driver (flow.ts), and the small helpers every
// rule module shares: statuses, per-execution specs, stage slots, locks and
// waiters, GetPipelineState bookkeeping and the state-change events. It
// imports no other rule module, so every module can build on it.

import type {
  ActionRun,
  ActionSlot,
  ActionSpec,
  ConditionRun,
  DecideContext,
  Decision,
  Emitted,
  EventArtifactSpec,
  ExecutionCommand,
  ExecutionMode,
  ExecutionRuntime,
  ExecutionStatus,
  PipelineRuntime,
  PipelineSpec,
  SourceRevisionRef,
  StageRun,
  StageSlot,
} from "./types.js";

// ---------------------------------------------------------------- limits and fixed names

/** EventBridge detail-types of the three state-change kinds. */
export const DETAIL_TYPES = {
  pipeline: "CodePipeline Pipeline Execution State Change",
  stage: "CodePipeline Stage Execution State Change",
  action: "CodePipeline Action Execution State Change",
} as const;

export { MAX_PARALLEL_EXECUTIONS, MAX_QUEUED_EXECUTIONS, MAX_REQUEST_TOKENS, TIMEOUT_GRACE_MS } from "../limits.js";

// ---------------------------------------------------------------- statuses

const ENDED: ReadonlySet<ExecutionStatus> = new Set(["Succeeded", "Failed", "Superseded", "Stopped", "Cancelled"]);
const FINAL: ReadonlySet<ExecutionStatus> = new Set(["Succeeded", "Superseded", "Cancelled"]);

/**
 * Whether an execution has ended (nothing of it runs; the shell archives it).
 * Failed and Stopped executions have ended too, but a retry may resume them
 * (see `isFinal`).
 */
export function isTerminal(status: ExecutionStatus): boolean {
  return ENDED.has(status);
}

/** Whether an execution status can never change again (Succeeded, Superseded, Cancelled). */
export function isFinal(status: ExecutionStatus): boolean {
  return FINAL.has(status);
}

/**
 * What a rule module asks the driver (flow.ts) to do once it has changed its
 * own part of the draft: the steps that move an execution forward. decide()
 * runs them in order after the event's handler returns.
 */
export type Step =
  /** Move to stage `index` of the execution's version: enter, wait in front, or finish after the last. */
  | { readonly kind: "tryEnter"; readonly exec: ExecutionRuntime; readonly index: number }
  /** Enter stage `index` regardless of locks, transitions and waiters (a rollback, a waiter whose stage was dropped). */
  | { readonly kind: "enterStage"; readonly exec: ExecutionRuntime; readonly index: number }
  /** Continue the stage the execution is inside: next actions, a condition check, completion. */
  | { readonly kind: "progressStage"; readonly exec: ExecutionRuntime; readonly stageName: string }
  /** Act on a condition check that finished (pass, skip, fail, roll back). */
  | { readonly kind: "conditionDone"; readonly exec: ExecutionRuntime; readonly stageName: string; readonly cond: ConditionRun }
  /** End the execution with this status. */
  | { readonly kind: "finish"; readonly exec: ExecutionRuntime; readonly status: ExecutionStatus; readonly summary?: string }
  /** End a Stopping or cancelling execution once nothing of it runs. */
  | { readonly kind: "settle"; readonly exec: ExecutionRuntime }
  /** Let waiters into a stage that may have become free. */
  | { readonly kind: "admitWaiters"; readonly stageName: string };

/**
 * The working copy one decision changes, plus what it has produced so far.
 *
 * The copy is shallow where decide() only ever replaces a value: `spec`,
 * `retainedSpecs`, `requestTokens`, `rollbackTargets`, `retryable` and
 * `lastSourceRevisions` are shared with the input state and reassigned, never
 * changed in place. The stage slots are copied (two levels: slot and action
 * slot objects; whatever hangs below them is replaced, not changed). The
 * `executions` map is copied, but an execution itself only when the decision
 * changes it: code that changes an execution takes it through `liveExecution`
 * (or adds a new one with `addExecution`), so the input state stays untouched.
 */
export interface Draft {
  readonly state: PipelineRuntime;
  readonly ctx: DecideContext;
  readonly commands: ExecutionCommand[];
  readonly events: Emitted[];
  /** Steps left for the driver, oldest first. */
  readonly agenda: Step[];
  /** The execution the decision is about (a start or a rollback names it). */
  readonly executionId?: string;
  /** Ids of the executions that are this draft's own copies (or new): only those may be changed. */
  readonly owned: Set<string>;
}

/** What an event handler returns: a draft for the driver to finish, or a decision that changes nothing. */
export type Handled = Draft | Decision;

export function isDraft(handled: Handled): handled is Draft {
  return "agenda" in handled;
}

export function draftOf(state: PipelineRuntime, ctx: DecideContext, executionId?: string): Draft {
  const copy: PipelineRuntime = {
    ...state,
    executions: { ...state.executions },
    stages: state.stages.map((slot) => ({ ...slot, actions: slot.actions.map((a) => ({ ...a })) })),
    finished: [],
  };
  const d: Draft = { state: copy, ctx, commands: [], events: [], agenda: [], owned: new Set() };
  return executionId === undefined ? d : { ...d, executionId };
}

/**
 * The draft's own copy of an execution in flight (copied on first use), to
 * change; undefined when `executions` has no such id.
 */
export function liveExecution(d: Draft, executionId: string): ExecutionRuntime | undefined {
  const { executions } = d.state;
  if (!Object.hasOwn(executions, executionId)) return undefined;
  const exec = executions[executionId];
  if (exec === undefined || d.owned.has(executionId)) return exec;
  const copy = structuredClone(exec);
  executions[executionId] = copy;
  d.owned.add(executionId);
  return copy;
}

/** Puts an execution the draft made (a start, a rollback, a resumed one) into `executions`. */
export function addExecution(d: Draft, exec: ExecutionRuntime): void {
  d.state.executions[exec.id] = exec;
  d.owned.add(exec.id);
}

/**
 * The decision of a draft. Executions that ended Failed or Stopped are kept
 * (copied into `retryable`) while a retry may still resume them — the shell
 * archives and drops ended executions from `executions` — and copies and
 * retained older specs nobody can use any more are dropped.
 */
export function done(d: Draft): Decision {
  const { state, executionId } = d;
  for (const id of state.finished) {
    const exec = state.executions[id];
    if (exec === undefined || (exec.status !== "Failed" && exec.status !== "Stopped")) continue;
    state.retryable = [...(state.retryable ?? []).filter((e) => e.id !== id), structuredClone(exec)];
  }
  if (state.retryable !== undefined) {
    const kept = state.retryable.filter((e) => stillRetryable(state, e));
    if (kept.length === 0) delete state.retryable;
    else state.retryable = kept;
  }
  if (state.retainedSpecs !== undefined) {
    const used = new Set(Object.values(state.executions).filter((e) => !isTerminal(e.status)).map((e) => e.pipelineVersion));
    const kept = state.retainedSpecs.filter((s) => s.version !== state.spec.version && used.has(s.version));
    if (kept.length === 0) delete state.retainedSpecs;
    else state.retainedSpecs = kept;
  }
  const decision: Decision = { state, commands: d.commands, events: d.events };
  if (executionId !== undefined) decision.executionId = executionId;
  return decision;
}

/**
 * An ended execution is kept while it is still the latest execution of the
 * stage it failed or stopped in (AWS: it stops being retryable once a newer
 * execution entered that stage). One of an older pipeline version is kept
 * too, so a retry is refused for the right reason (the structure changed).
 */
function stillRetryable(state: PipelineRuntime, exec: ExecutionRuntime): boolean {
  if (exec.status !== "Failed" && exec.status !== "Stopped") return false;
  const last = exec.stages.at(-1);
  if (last === undefined || (last.status !== "Failed" && last.status !== "Stopped")) return false;
  return state.stages.find((s) => s.name === last.name)?.latest?.pipelineExecutionId === exec.id;
}

export function ignore(state: PipelineRuntime, reason: string, executionId?: string): Decision {
  const decision: Decision = { state, commands: [], events: [], ignored: reason };
  if (executionId !== undefined) decision.executionId = executionId;
  return decision;
}

// ---------------------------------------------------------------- modes and specs

/** The mode an execution runs under. */
export function modeOf(exec: ExecutionRuntime): ExecutionMode {
  return exec.executionMode ?? "SUPERSEDED";
}

/** Whether an execution takes stage locks (SUPERSEDED and QUEUED do, PARALLEL does not). */
export function takesLocks(exec: ExecutionRuntime): boolean {
  return modeOf(exec) !== "PARALLEL";
}

/**
 * The pipeline version an execution runs: the current one, or an older one
 * retained for a PARALLEL execution. An execution of an older version that
 * is being cancelled falls back to the current spec: it starts nothing new,
 * so only stage and action names are looked up.
 */
export function specFor(state: PipelineRuntime, exec: ExecutionRuntime): PipelineSpec {
  if (exec.pipelineVersion === state.spec.version) return state.spec;
  return state.retainedSpecs?.find((s) => s.version === exec.pipelineVersion) ?? state.spec;
}

/** The declared action in the version the execution runs, if that version has it. */
export function actionSpecOf(state: PipelineRuntime, exec: ExecutionRuntime, stageName: string, actionName: string): ActionSpec | undefined {
  return specFor(state, exec)
    .stages.find((s) => s.name === stageName)
    ?.actions.find((a) => a.name === actionName);
}

/** The slot of a stage of the current version, by name. */
export function slotByName(state: PipelineRuntime, stageName: string): StageSlot | undefined {
  return state.stages.find((s) => s.name === stageName);
}

/** The latest run of a stage in an execution. */
export function stageRunOf(exec: ExecutionRuntime, stageName: string): StageRun | undefined {
  return exec.stages.findLast((s) => s.name === stageName);
}

/** An execution in flight, or a Failed/Stopped one still kept for a retry. */
export function findExecution(state: PipelineRuntime, executionId: string): ExecutionRuntime | undefined {
  if (Object.hasOwn(state.executions, executionId)) return state.executions[executionId];
  return state.retryable?.find((e) => e.id === executionId);
}

// ---------------------------------------------------------------- waiters

/** Executions waiting in front of a stage, in arrival order. */
export function waitersOf(slot: StageSlot): string[] {
  if (slot.queue !== undefined) return [...slot.queue];
  return slot.waiting === undefined ? [] : [slot.waiting];
}

/** Replaces a stage's waiters; `waiting` always names the first. */
export function setWaiters(slot: StageSlot, ids: readonly string[]): void {
  const first = ids[0];
  if (first === undefined) {
    delete slot.waiting;
    delete slot.queue;
    return;
  }
  slot.waiting = first;
  if (ids.length > 1) slot.queue = [...ids];
  else delete slot.queue;
}

/** Removes an execution from whatever stage it waits in front of. */
export function removeWaiter(state: PipelineRuntime, exec: ExecutionRuntime): void {
  for (const slot of state.stages) {
    const ids = waitersOf(slot);
    if (ids.includes(exec.id)) setWaiters(slot, ids.filter((id) => id !== exec.id));
  }
  delete exec.waitingFor;
}

/** Frees the stage's lock when the execution holds it. */
export function releaseLock(state: PipelineRuntime, exec: ExecutionRuntime, stageName: string): void {
  const slot = slotByName(state, stageName);
  if (slot?.lock === exec.id) delete slot.lock;
}

/** Whether a stage's inbound transition lets executions in. */
export function transitionEnabled(slot: StageSlot | undefined): boolean {
  return slot?.transition?.enabled !== false;
}

// ---------------------------------------------------------------- GetPipelineState bookkeeping

export function rememberRevision(state: PipelineRuntime, revision: SourceRevisionRef): void {
  state.lastSourceRevisions = [...state.lastSourceRevisions.filter((r) => r.actionName !== revision.actionName), { ...revision }];
}

/** GetPipelineState's entry of an action, created on first use; undefined for a stage the current version lacks. */
export function actionSlot(d: Draft, stageName: string, actionName: string): ActionSlot | undefined {
  const stage = slotByName(d.state, stageName);
  if (stage === undefined) return undefined;
  let slot = stage.actions.find((a) => a.name === actionName);
  if (slot === undefined) {
    slot = { name: actionName };
    stage.actions.push(slot);
  }
  return slot;
}

/**
 * Updates GetPipelineState's latestExecution of the action. In PARALLEL a
 * newer execution may own the stage's state: an older one does not overwrite it.
 */
export function setLatest(d: Draft, exec: ExecutionRuntime, stageName: string, run: ActionRun): void {
  const stage = slotByName(d.state, stageName);
  if (stage?.latest !== undefined && stage.latest.pipelineExecutionId !== exec.id) return;
  const latest: NonNullable<ActionSlot["latest"]> = {
    pipelineExecutionId: exec.id,
    actionExecutionId: run.actionExecutionId,
    status: run.status,
    lastStatusChange: d.ctx.now,
  };
  if (run.summary !== undefined) latest.summary = run.summary;
  if (run.token !== undefined) latest.token = run.token;
  if (run.updatedBy !== undefined) latest.updatedBy = run.updatedBy;
  if (run.externalExecutionId !== undefined) latest.externalExecutionId = run.externalExecutionId;
  if (run.externalExecutionUrl !== undefined) latest.externalExecutionUrl = run.externalExecutionUrl;
  if (run.errorDetails !== undefined) latest.errorDetails = { ...run.errorDetails };
  if (run.percentComplete !== undefined) latest.percentComplete = run.percentComplete;
  if (run.startedAt !== undefined) latest.startedAt = run.startedAt;
  else if (run.status === "InProgress" && run.runnerPool !== undefined) {
    // Dispatched, and no runner said it started: it waits in its pool's queue.
    latest.queuedPool = run.runnerPool;
    latest.queuedSince = run.startTime;
  }
  const slot = actionSlot(d, stageName, run.name);
  if (slot !== undefined) slot.latest = latest;
}

/** Sets the stage's latestExecution status when the execution is the stage's latest. */
export function setStageLatest(d: Draft, exec: ExecutionRuntime, stageName: string, status: StageRun["status"]): void {
  const slot = slotByName(d.state, stageName);
  if (slot?.latest?.pipelineExecutionId === exec.id) slot.latest = { pipelineExecutionId: exec.id, status };
}

// ---------------------------------------------------------------- events out

/** Event ids must be unique per change: a resumed execution repeats states, so later attempts get a suffix. */
function attemptSuffix(exec: ExecutionRuntime): string {
  const attempt = exec.executionAttempt ?? 1;
  return attempt > 1 ? `:${attempt}` : "";
}

/** EventBridge states of pipeline events. */
export type PipelineEventState = "STARTED" | "STOPPING" | "STOPPED" | "SUCCEEDED" | "FAILED" | "CANCELED" | "SUPERSEDED" | "RESUMED";

export function emitPipeline(d: Draft, exec: ExecutionRuntime, state: PipelineEventState): void {
  const event: Emitted["event"] = {
    eventId: `${exec.id}:${state}${attemptSuffix(exec)}`,
    detailType: DETAIL_TYPES.pipeline,
    time: d.ctx.now,
    pipeline: d.state.pipelineName,
    executionId: exec.id,
    version: exec.pipelineVersion,
    state,
    executionTrigger: { ...exec.trigger },
    pipelineExecutionAttempt: exec.executionAttempt ?? 1,
  };
  if ((state === "STOPPING" || state === "STOPPED") && exec.stopTrigger !== undefined) {
    event.stopExecutionComments = exec.stopTrigger.reason;
  }
  d.events.push({ kind: "pipeline", event });
}

/** EventBridge states of stage events, plus SKIPPED (a beforeEntry SKIP; EventBridge documents no state for it). */
export type StageEventState = "STARTED" | "STOPPING" | "STOPPED" | "SUCCEEDED" | "FAILED" | "CANCELED" | "RESUMED" | "SKIPPED";

export function emitStage(d: Draft, exec: ExecutionRuntime, stage: string, state: StageEventState): void {
  d.events.push({
    kind: "stage",
    event: {
      eventId: `${exec.id}:${stage}:${state}${attemptSuffix(exec)}`,
      detailType: DETAIL_TYPES.stage,
      time: d.ctx.now,
      pipeline: d.state.pipelineName,
      executionId: exec.id,
      version: exec.pipelineVersion,
      stage,
      state,
      pipelineExecutionAttempt: exec.executionAttempt ?? 1,
    },
  });
}

/** EventBridge states of action events. */
export type ActionEventState = "STARTED" | "SUCCEEDED" | "FAILED" | "ABANDONED" | "CANCELED";

export function emitAction(d: Draft, exec: ExecutionRuntime, stage: string, action: ActionSpec | undefined, run: ActionRun, state: ActionEventState): void {
  const result: NonNullable<Emitted["event"]["executionResult"]> = {};
  if (run.externalExecutionId !== undefined) result.externalExecutionId = run.externalExecutionId;
  if (run.summary !== undefined && state !== "STARTED") result.externalExecutionSummary = run.summary;
  if (run.externalExecutionUrl !== undefined) result.externalExecutionUrl = run.externalExecutionUrl;
  if (run.errorDetails !== undefined) result.errorCode = run.errorDetails.code;
  const event: Emitted["event"] = {
    eventId: `${run.actionExecutionId}:${run.attempt}:${state}`,
    detailType: DETAIL_TYPES.action,
    time: d.ctx.now,
    pipeline: d.state.pipelineName,
    executionId: exec.id,
    version: exec.pipelineVersion,
    stage,
    action: run.name,
    state,
  };
  if (action !== undefined) {
    event.type = { owner: action.owner, category: action.category, provider: action.provider, version: action.providerVersion };
  }
  if (Object.keys(result).length > 0) event.executionResult = result;
  const inputs = run.inputArtifactIds.flatMap((id) => {
    const a = exec.artifacts.find((x) => x.artifactId === id);
    return a === undefined ? [] : [eventArtifact(a)];
  });
  if (inputs.length > 0) event.inputArtifacts = inputs;
  if (state === "SUCCEEDED") {
    const outputs = exec.artifacts.filter((a) => a.artifactId.startsWith(`${run.actionExecutionId}/`)).map(eventArtifact);
    if (outputs.length > 0) event.outputArtifacts = outputs;
  }
  d.events.push({ kind: "action", event });
}

function eventArtifact(a: { name: string; bucket: string; key: string }): EventArtifactSpec {
  return { name: a.name, s3location: { bucket: a.bucket, key: a.key } };
}
