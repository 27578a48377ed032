// The pure execution state machine (DESIGN §7, reference §4): SUPERSEDED mode.
//
// decide() copies the state, applies one event to the copy and returns it with
// the commands (jobs to dispatch) and state-change events it caused. It reads
// no clock and makes no ids of its own: both come from ctx, so a decision is
// reproducible. An event that must not change anything (a stale or duplicate
// job result, a source revision already seen, …) returns the input state
// itself with `ignored` saying why.

import type {
  ActionRun,
  ActionSlot,
  ActionSpec,
  DecideContext,
  Decision,
  Emitted,
  ErrorDetailsSpec,
  ExecutionCommand,
  ExecutionEvent,
  ExecutionRuntime,
  ExecutionStatus,
  JobOutcome,
  JobSpec,
  PipelineRuntime,
  PipelineSpec,
  SourceRevisionRef,
  StageSlot,
  StageStatus,
  TriggerSpec,
} from "./types.js";
import { resolveValue, VARIABLE_KEY_PATTERN } from "./variables.js";

/** EventBridge detail-types of the three state-change kinds. */
export const DETAIL_TYPES = {
  pipeline: "CodePipeline Pipeline Execution State Change",
  stage: "CodePipeline Stage Execution State Change",
  action: "CodePipeline Action Execution State Change",
} as const;

/**
 * How long after a job's deadline TimerFired fails the action. The runner
 * gives up at the deadline and reports a failure with its own detail; the
 * grace lets that report win over the orchestrator's generic timeout.
 */
export const TIMEOUT_GRACE_MS = 30_000;

const TERMINAL_EXECUTION: ReadonlySet<ExecutionStatus> = new Set(["Succeeded", "Failed", "Superseded", "Stopped", "Cancelled"]);

/** Whether an execution status is final (the execution never changes again). */
export function isTerminal(status: ExecutionStatus): boolean {
  return TERMINAL_EXECUTION.has(status);
}

/** The runtime of a pipeline that has never run. */
export function initialRuntime(spec: PipelineSpec): PipelineRuntime {
  return {
    pipelineName: spec.name,
    spec,
    executions: {},
    stages: spec.stages.map((s) => ({ name: s.name, actions: [] })),
    lastSourceRevisions: [],
    finished: [],
  };
}

/**
 * The earliest time (epoch ms) at which a TimerFired would fail an in-flight
 * action, or undefined when nothing is running. The shell stores it as an
 * indexed deadline and sends TimerFired once it is due.
 */
export function nextDeadline(state: PipelineRuntime): number | undefined {
  let next: number | undefined;
  for (const exec of Object.values(state.executions)) {
    if (isTerminal(exec.status)) continue;
    for (const stage of exec.stages) {
      for (const run of stage.actions) {
        if (run.status !== "InProgress") continue;
        const due = run.deadline + TIMEOUT_GRACE_MS;
        if (next === undefined || due < next) next = due;
      }
    }
  }
  return next;
}

/** Applies one event to a pipeline's runtime. Pure: `state` is not modified. */
export function decide(state: PipelineRuntime, event: ExecutionEvent, ctx: DecideContext): Decision {
  switch (event.type) {
    case "ExecutionRequested":
      return onExecutionRequested(state, event.executionId, event.trigger, event.pinnedRevisions ?? [], ctx);
    case "SourceChanged":
      return onSourceChanged(state, event, ctx);
    case "JobCompleted":
      return onJobCompleted(state, event.result, ctx);
    case "TimerFired":
      return onTimerFired(state, ctx);
    case "PipelineUpdated":
      return onPipelineUpdated(state, event.spec, ctx);
    case "PipelineDeleted":
      return onPipelineDeleted(state, ctx);
  }
}

// ---------------------------------------------------------------- the working copy

/** The mutable copy one decision works on, plus what it has produced so far. */
interface Draft {
  readonly state: PipelineRuntime;
  readonly ctx: DecideContext;
  readonly commands: ExecutionCommand[];
  readonly events: Emitted[];
}

function draftOf(state: PipelineRuntime, ctx: DecideContext): Draft {
  const copy = structuredClone(state);
  copy.finished = [];
  return { state: copy, ctx, commands: [], events: [] };
}

function done(d: Draft): Decision {
  return { state: d.state, commands: d.commands, events: d.events };
}

function ignore(state: PipelineRuntime, reason: string): Decision {
  return { state, commands: [], events: [], ignored: reason };
}

function slotAt(d: Draft, index: number): StageSlot {
  const slot = d.state.stages[index];
  const spec = d.state.spec.stages[index];
  if (slot === undefined || spec === undefined || slot.name !== spec.name) {
    // The shell builds stages with initialRuntime; a mismatch is a bug, not input.
    throw new Error(`runtime of pipeline ${d.state.pipelineName} has no slot for stage ${index}`);
  }
  return slot;
}

// ---------------------------------------------------------------- events

function onExecutionRequested(
  state: PipelineRuntime,
  executionId: string,
  trigger: TriggerSpec,
  pinned: readonly SourceRevisionRef[],
  ctx: DecideContext,
): Decision {
  if (Object.hasOwn(state.executions, executionId)) return ignore(state, `execution ${executionId} already exists`);
  const d = draftOf(state, ctx);
  startExecution(d, executionId, trigger, pinned);
  return done(d);
}

function onSourceChanged(
  state: PipelineRuntime,
  event: Extract<ExecutionEvent, { type: "SourceChanged" }>,
  ctx: DecideContext,
): Decision {
  const { actionName, revision } = event;
  const isSource = state.spec.stages.some((s) => s.actions.some((a) => a.name === actionName && a.category === "Source"));
  if (!isSource) return ignore(state, `"${actionName}" is not a source action of pipeline ${state.pipelineName}`);
  const last = state.lastSourceRevisions.find((r) => r.actionName === actionName);
  if (last?.revisionId === revision.revisionId) {
    return ignore(state, `revision ${revision.revisionId} of ${actionName} was already started`);
  }
  for (const exec of Object.values(state.executions)) {
    if (isTerminal(exec.status)) continue;
    if (exec.pinnedRevisions.some((p) => p.actionName === actionName && p.revisionId === revision.revisionId)) {
      return ignore(state, `revision ${revision.revisionId} of ${actionName} is being run by execution ${exec.id}`);
    }
  }
  if (Object.hasOwn(state.executions, event.executionId)) {
    return ignore(state, `execution ${event.executionId} already exists`);
  }
  const d = draftOf(state, ctx);
  const pinned: SourceRevisionRef = { ...revision, actionName };
  startExecution(d, event.executionId, event.trigger, [pinned]);
  return done(d);
}

function onJobCompleted(state: PipelineRuntime, result: JobOutcome, ctx: DecideContext): Decision {
  const found = findRun(state, result);
  if (typeof found === "string") return ignore(state, found);
  const d = draftOf(state, ctx);
  const exec = d.state.executions[found.executionId];
  const run = exec?.stages.find((s) => s.name === found.stageName)?.actions.find((a) => a.name === found.actionName);
  if (exec === undefined || run === undefined) throw new Error(`run ${found.actionName} vanished from the copy of the state`);
  applyResult(d, exec, found.stageName, actionSpecOf(d, found.stageName, found.actionName), run, result);
  afterActionEnded(d, exec, found.stageName);
  return done(d);
}

function onTimerFired(state: PipelineRuntime, ctx: DecideContext): Decision {
  const due = nextDeadline(state);
  if (due === undefined || due > ctx.now) return ignore(state, "no deadline is due");
  const d = draftOf(state, ctx);
  // Ids first: failing one action may end its execution and start others.
  const expired: { execId: string; stageName: string; actionName: string; actionExecutionId: string }[] = [];
  for (const exec of Object.values(d.state.executions)) {
    if (isTerminal(exec.status)) continue;
    for (const stage of exec.stages) {
      for (const run of stage.actions) {
        if (run.status === "InProgress" && run.deadline + TIMEOUT_GRACE_MS <= ctx.now) {
          expired.push({ execId: exec.id, stageName: stage.name, actionName: run.name, actionExecutionId: run.actionExecutionId });
        }
      }
    }
  }
  for (const e of expired) {
    const exec = d.state.executions[e.execId];
    const run = exec?.stages.find((s) => s.name === e.stageName)?.actions.find((a) => a.actionExecutionId === e.actionExecutionId);
    if (exec === undefined || run === undefined || run.status !== "InProgress" || isTerminal(exec.status)) continue;
    const minutes = Math.round((run.deadline - run.startTime) / 60_000);
    failRun(d, exec, e.stageName, actionSpecOf(d, e.stageName, e.actionName), run, {
      code: "TimedOut",
      message: `the action did not finish within ${minutes} minutes`,
    });
    afterActionEnded(d, exec, e.stageName);
  }
  return done(d);
}

function onPipelineDeleted(state: PipelineRuntime, ctx: DecideContext): Decision {
  const live = Object.values(state.executions).filter((e) => !isTerminal(e.status));
  if (live.length === 0) return ignore(state, "no execution in flight");
  const d = draftOf(state, ctx);
  for (const { id } of live) {
    const exec = d.state.executions[id];
    if (exec === undefined) continue;
    for (const stage of exec.stages) {
      if (stage.status !== "InProgress") continue;
      for (const run of stage.actions) {
        if (run.status !== "InProgress") continue;
        run.status = "Abandoned";
        run.lastUpdateTime = ctx.now;
        emitAction(d, exec, stage.name, actionSpecOf(d, stage.name, run.name), run, "ABANDONED");
      }
      stage.status = "Cancelled";
      emitStage(d, exec, stage.name, "CANCELED");
    }
    finishExecution(d, exec, "Cancelled", "The pipeline was deleted");
  }
  for (const slot of d.state.stages) {
    delete slot.lock;
    delete slot.waiting;
  }
  return done(d);
}

function onPipelineUpdated(state: PipelineRuntime, spec: PipelineSpec, ctx: DecideContext): Decision {
  if (spec.version <= state.spec.version) {
    return ignore(state, `pipeline ${state.pipelineName} already runs version ${state.spec.version}`);
  }
  const d = draftOf(state, ctx);
  const old = d.state.stages;
  d.state.spec = structuredClone(spec);
  // Slots are matched by stage name: a stage kept by the update keeps its
  // lock (its execution still runs there), waiter and latest state.
  d.state.stages = spec.stages.map((stage): StageSlot => {
    const prev = old.find((s) => s.name === stage.name);
    if (prev === undefined) return { name: stage.name, actions: [] };
    return { ...prev, actions: prev.actions.filter((a) => stage.actions.some((x) => x.name === a.name)) };
  });
  const reason = `Cancelled by the update of the pipeline to version ${spec.version}`;
  for (const exec of Object.values(d.state.executions)) {
    if (isTerminal(exec.status)) continue;
    if (exec.waitingFor !== undefined) {
      for (const slot of d.state.stages) if (slot.waiting === exec.id) delete slot.waiting;
      finishExecution(d, exec, "Cancelled", reason);
      continue;
    }
    exec.cancelReason = reason;
    settleCancelling(d, exec);
  }
  return done(d);
}

// ---------------------------------------------------------------- matching results

interface RunLocation {
  executionId: string;
  stageName: string;
  actionName: string;
}

/** Finds the in-flight action run a result answers, or says why the result is ignored. */
function findRun(state: PipelineRuntime, result: JobOutcome): RunLocation | string {
  const exec = Object.hasOwn(state.executions, result.pipelineExecutionId) ? state.executions[result.pipelineExecutionId] : undefined;
  if (exec === undefined) return `execution ${result.pipelineExecutionId} is not in flight`;
  if (isTerminal(exec.status)) return `execution ${exec.id} already ended ${exec.status}`;
  for (const stage of exec.stages) {
    for (const run of stage.actions) {
      if (run.actionExecutionId !== result.actionExecutionId) continue;
      if (run.attempt !== result.attempt) {
        return `result for attempt ${result.attempt} of action execution ${run.actionExecutionId}, which is at attempt ${run.attempt}`;
      }
      if (run.status !== "InProgress") return `action execution ${run.actionExecutionId} already ended ${run.status}`;
      return { executionId: exec.id, stageName: stage.name, actionName: run.name };
    }
  }
  return `action execution ${result.actionExecutionId} is unknown in execution ${exec.id}`;
}

// ---------------------------------------------------------------- executions and stages

function startExecution(d: Draft, executionId: string, trigger: TriggerSpec, pinned: readonly SourceRevisionRef[]): void {
  const { ctx, state } = d;
  const exec: ExecutionRuntime = {
    id: executionId,
    pipelineVersion: state.spec.version,
    status: "InProgress",
    trigger: { ...trigger },
    startTime: ctx.now,
    lastUpdateTime: ctx.now,
    stages: [],
    artifacts: [],
    sourceRevisions: [],
    pinnedRevisions: pinned.map((p) => ({ ...p })),
    variables: {},
  };
  state.executions[executionId] = exec;
  // A started revision counts as seen: the same revision reported again by a
  // poller or a webhook must not start a second execution.
  for (const p of pinned) rememberRevision(state, p);
  emitPipeline(d, exec, "STARTED");
  tryEnter(d, exec, 0);
}

/** Moves an execution to stage `index`: enter it, wait in front of it, or finish after the last. */
function tryEnter(d: Draft, exec: ExecutionRuntime, index: number): void {
  if (index >= d.state.spec.stages.length) {
    finishExecution(d, exec, "Succeeded");
    return;
  }
  const slot = slotAt(d, index);
  if (slot.lock === undefined) {
    enterStage(d, exec, index);
    return;
  }
  // SUPERSEDED: one waiter per stage; the newer arrival replaces the older.
  if (slot.waiting !== undefined && slot.waiting !== exec.id) {
    const older = d.state.executions[slot.waiting];
    if (older !== undefined && !isTerminal(older.status)) {
      finishExecution(d, older, "Superseded", `Superseded by pipeline execution ${exec.id}`);
    }
  }
  slot.waiting = exec.id;
  delete exec.currentStage;
  exec.waitingFor = slot.name;
  exec.lastUpdateTime = d.ctx.now;
}

function enterStage(d: Draft, exec: ExecutionRuntime, index: number): void {
  const slot = slotAt(d, index);
  slot.lock = exec.id;
  if (slot.waiting === exec.id) delete slot.waiting;
  exec.currentStage = slot.name;
  delete exec.waitingFor;
  exec.lastUpdateTime = d.ctx.now;
  exec.stages.push({ name: slot.name, status: "InProgress", actions: [] });
  slot.latest = { pipelineExecutionId: exec.id, status: "InProgress" };
  emitStage(d, exec, slot.name, "STARTED");
  progressStage(d, exec, index);
}

/**
 * Drives the stage an execution is inside: waits while actions run, starts the
 * next runOrder group when the current one succeeded, and completes the stage
 * when everything succeeded or when something failed and nothing runs.
 */
function progressStage(d: Draft, exec: ExecutionRuntime, index: number): void {
  if (exec.cancelReason !== undefined) {
    settleCancelling(d, exec);
    return;
  }
  const stageSpec = d.state.spec.stages[index];
  const run = exec.stages.find((s) => s.name === stageSpec?.name);
  if (stageSpec === undefined || run === undefined || run.status !== "InProgress") return;
  for (;;) {
    const running = run.actions.some((a) => a.status === "InProgress");
    if (running) return;
    const failed = run.actions.find((a) => a.status === "Failed");
    if (failed !== undefined) {
      completeStage(d, exec, index, "Failed", failed);
      return;
    }
    const remaining = stageSpec.actions.filter((a) => !run.actions.some((r) => r.name === a.name));
    if (remaining.length === 0) {
      completeStage(d, exec, index, "Succeeded");
      return;
    }
    const order = Math.min(...remaining.map((a) => a.runOrder));
    for (const action of remaining) {
      if (action.runOrder === order) startAction(d, exec, index, action);
    }
  }
}

function completeStage(d: Draft, exec: ExecutionRuntime, index: number, status: StageStatus, failed?: ActionRun): void {
  const slot = slotAt(d, index);
  const run = exec.stages.find((s) => s.name === slot.name);
  if (run !== undefined) run.status = status;
  slot.latest = { pipelineExecutionId: exec.id, status };
  if (slot.lock === exec.id) delete slot.lock;
  delete exec.currentStage;
  exec.lastUpdateTime = d.ctx.now;
  emitStage(d, exec, slot.name, status === "Succeeded" ? "SUCCEEDED" : "FAILED");
  if (status === "Succeeded") {
    tryEnter(d, exec, index + 1);
  } else {
    const why = failed?.errorDetails?.message ?? failed?.summary ?? "the action failed";
    const summary =
      failed === undefined
        ? `Stage "${slot.name}" failed`
        : `Action "${failed.name}" in stage "${slot.name}" failed: ${why}`;
    finishExecution(d, exec, "Failed", summary);
  }
  admitWaiter(d, index);
}

/** On unlock the waiter in front of the stage enters it. */
function admitWaiter(d: Draft, index: number): void {
  const slot = slotAt(d, index);
  if (slot.lock !== undefined || slot.waiting === undefined) return;
  const waiter = d.state.executions[slot.waiting];
  delete slot.waiting;
  if (waiter === undefined || isTerminal(waiter.status)) return;
  enterStage(d, waiter, index);
}

/** Continues an execution after one of its actions ended (result or timeout). */
function afterActionEnded(d: Draft, exec: ExecutionRuntime, stageName: string): void {
  if (exec.cancelReason !== undefined) {
    settleCancelling(d, exec);
    return;
  }
  const index = d.state.spec.stages.findIndex((s) => s.name === stageName);
  if (index >= 0) progressStage(d, exec, index);
}

/**
 * Ends an execution marked for cancellation once nothing of it runs: its
 * stage is Cancelled, the stage's lock released and the waiter admitted.
 */
function settleCancelling(d: Draft, exec: ExecutionRuntime): void {
  if (exec.cancelReason === undefined || isTerminal(exec.status)) return;
  const stage = exec.stages.find((s) => s.name === exec.currentStage && s.status === "InProgress");
  if (stage?.actions.some((a) => a.status === "InProgress")) return;
  const index = d.state.stages.findIndex((s) => s.name === stage?.name);
  if (stage !== undefined) {
    stage.status = "Cancelled";
    const slot = d.state.stages[index];
    if (slot !== undefined) {
      if (slot.latest?.pipelineExecutionId === exec.id) slot.latest = { pipelineExecutionId: exec.id, status: "Cancelled" };
      if (slot.lock === exec.id) delete slot.lock;
    }
    emitStage(d, exec, stage.name, "CANCELED");
  }
  finishExecution(d, exec, "Cancelled", exec.cancelReason);
  if (index >= 0) admitWaiter(d, index);
}

/** The declared action, if the current version still has it. */
function actionSpecOf(d: Draft, stageName: string, actionName: string): ActionSpec | undefined {
  return d.state.spec.stages.find((s) => s.name === stageName)?.actions.find((a) => a.name === actionName);
}

const PIPELINE_STATE: Record<ExecutionStatus, string> = {
  InProgress: "STARTED",
  Succeeded: "SUCCEEDED",
  Failed: "FAILED",
  Superseded: "SUPERSEDED",
  Stopped: "STOPPED",
  Stopping: "STOPPING",
  Cancelled: "CANCELED",
};

function finishExecution(d: Draft, exec: ExecutionRuntime, status: ExecutionStatus, summary?: string): void {
  exec.status = status;
  if (summary !== undefined) exec.statusSummary = summary;
  exec.lastUpdateTime = d.ctx.now;
  delete exec.currentStage;
  delete exec.waitingFor;
  d.state.finished.push(exec.id);
  emitPipeline(d, exec, PIPELINE_STATE[status]);
}

// ---------------------------------------------------------------- actions

function startAction(d: Draft, exec: ExecutionRuntime, index: number, action: ActionSpec): void {
  const { ctx, state } = d;
  const stageName = slotAt(d, index).name;
  const actionExecutionId = ctx.newId();
  const isApproval = action.category === "Approval" || action.builtIn === "Manual";
  const run: ActionRun = {
    name: action.name,
    actionExecutionId,
    attempt: 1,
    status: "InProgress",
    startTime: ctx.now,
    lastUpdateTime: ctx.now,
    deadline: ctx.now + action.timeoutInMinutes * 60_000,
    inputArtifactIds: [],
  };
  if (isApproval) run.token = ctx.newId();
  const stageRun = exec.stages.find((s) => s.name === stageName);
  if (stageRun === undefined) throw new Error(`execution ${exec.id} has not entered stage ${stageName}`);
  stageRun.actions.push(run);

  const problem = prepare(exec, action, run);
  if (problem !== undefined) {
    failRun(d, exec, stageName, action, run, problem);
    return;
  }
  const job: JobSpec = {
    jobId: `${actionExecutionId}:${run.attempt}`,
    actionExecutionId,
    attempt: run.attempt,
    pipelineName: state.pipelineName,
    pipelineVersion: exec.pipelineVersion,
    pipelineExecutionId: exec.id,
    stageName,
    actionName: action.name,
    actionTypeId: { category: action.category, owner: action.owner, provider: action.provider, version: action.providerVersion },
    category: action.category,
    builtIn: action.builtIn,
    configuration: { ...run.resolvedConfiguration },
    commands: [...action.commands],
    environmentVariables: resolvedEnvironment(exec, action),
    outputVariables: [...action.outputVariables],
    outputArtifacts: action.outputArtifacts.map((o) => ({ name: o.name, files: [...o.files] })),
    deadline: run.deadline,
    artifactBucket: state.spec.artifactBucket,
    inputArtifactIds: [...run.inputArtifactIds],
    outputNames: action.outputArtifacts.map((o) => o.name),
  };
  const pinned = exec.pinnedRevisions.find((p) => p.actionName === action.name);
  if (action.category === "Source" && pinned !== undefined) job.sourceRevision = pinned.revisionId;
  if (run.token !== undefined) job.approvalToken = run.token;
  d.commands.push({ type: "DispatchJob", job });
  setLatest(d, exec, stageName, run);
  emitAction(d, exec, stageName, action, run, "STARTED");
}

/**
 * Resolves the configuration and finds the input artifacts, recording both on
 * the run; returns the problem that keeps the action from starting.
 */
function prepare(exec: ExecutionRuntime, action: ActionSpec, run: ActionRun): ErrorDetailsSpec | undefined {
  const resolved: Record<string, string> = {};
  for (const [key, value] of Object.entries(action.configuration)) {
    const r = resolveValue(value, exec.id, exec.variables);
    if (!r.ok) {
      return {
        code: "ConfigurationError",
        message: `configuration ${key}: variable ${r.reference} cannot be resolved (no earlier action of this execution produced it)`,
      };
    }
    resolved[key] = r.value;
  }
  for (const variable of action.environmentVariables) {
    if (variable.type !== "PLAINTEXT") continue;
    const r = resolveValue(variable.value, exec.id, exec.variables);
    if (!r.ok) {
      return {
        code: "ConfigurationError",
        message: `environment variable ${variable.name}: variable ${r.reference} cannot be resolved (no earlier action of this execution produced it)`,
      };
    }
  }
  run.resolvedConfiguration = resolved;
  for (const name of action.inputArtifacts) {
    const artifact = exec.artifacts.findLast((a) => a.name === name);
    if (artifact === undefined) {
      return { code: "ConfigurationError", message: `input artifact ${name} was not produced by an earlier action of this execution` };
    }
    run.inputArtifactIds.push(artifact.artifactId);
  }
  return undefined;
}

function resolvedEnvironment(exec: ExecutionRuntime, action: ActionSpec): ActionSpec["environmentVariables"] {
  return action.environmentVariables.map((v) => {
    if (v.type !== "PLAINTEXT") return { ...v };
    const r = resolveValue(v.value, exec.id, exec.variables);
    return { ...v, value: r.ok ? r.value : v.value };
  });
}

/**
 * Records an accepted job result on the run and, when the action is still
 * declared, the execution's artifacts, revisions and variables.
 */
function applyResult(d: Draft, exec: ExecutionRuntime, stageName: string, action: ActionSpec | undefined, run: ActionRun, result: JobOutcome): void {
  run.lastUpdateTime = d.ctx.now;
  if (result.updatedBy !== undefined) run.updatedBy = result.updatedBy;
  if (result.externalExecutionId !== undefined) run.externalExecutionId = result.externalExecutionId;
  if (result.externalExecutionUrl !== undefined) run.externalExecutionUrl = result.externalExecutionUrl;
  if (result.summary !== undefined) run.summary = result.summary;

  if (result.status !== "Succeeded") {
    failRun(d, exec, stageName, action, run, result.errorDetails ?? { code: "JobFailed", message: result.summary ?? "the job failed" });
    return;
  }
  if (action === undefined) {
    // Removed by an update: the execution is being cancelled; only the outcome matters.
    run.status = "Succeeded";
    emitAction(d, exec, stageName, action, run, "SUCCEEDED");
    return;
  }
  // A success must deliver what the declaration promises; later actions depend on it.
  const missing = action.outputArtifacts.find((o) => !result.outputArtifacts.some((p) => p.name === o.name));
  if (missing !== undefined) {
    failRun(d, exec, stageName, action, run, { code: "JobFailed", message: `the job succeeded without output artifact ${missing.name}` });
    return;
  }
  const badKey = Object.keys(result.outputVariables).find((k) => !VARIABLE_KEY_PATTERN.test(k));
  if (badKey !== undefined) {
    failRun(d, exec, stageName, action, run, { code: "JobFailed", message: `output variable name ${JSON.stringify(badKey)} is invalid (allowed: [A-Za-z0-9@_-], 1-128)` });
    return;
  }

  const revision: SourceRevisionRef | undefined =
    action.category === "Source" && result.revision !== undefined ? { ...result.revision, actionName: action.name } : undefined;
  for (const out of action.outputArtifacts) {
    const produced = result.outputArtifacts.find((p) => p.name === out.name);
    if (produced === undefined) continue;
    const ref: ExecutionRuntime["artifacts"][number] = {
      name: out.name,
      artifactId: produced.artifactId,
      bucket: produced.bucket,
      key: produced.key,
      sha256: produced.sha256,
      sizeBytes: produced.sizeBytes,
    };
    if (revision !== undefined) {
      ref.revisionId = revision.revisionId;
      if (revision.revisionSummary !== undefined) ref.revisionSummary = revision.revisionSummary;
      if (revision.created !== undefined) ref.created = revision.created;
      if (revision.revisionUrl !== undefined) ref.revisionUrl = revision.revisionUrl;
    }
    exec.artifacts.push(ref);
  }
  if (Object.keys(result.outputVariables).length > 0) {
    run.outputVariables = { ...result.outputVariables };
    if (action.namespace !== undefined) {
      exec.variables[action.namespace] = { ...exec.variables[action.namespace], ...result.outputVariables };
    }
  }
  if (revision !== undefined) {
    exec.sourceRevisions = [...exec.sourceRevisions.filter((r) => r.actionName !== action.name), revision];
    rememberRevision(d.state, revision);
    const slot = actionSlot(d, stageName, action.name);
    if (slot !== undefined) {
      slot.currentRevision = { revisionId: revision.revisionId };
      if (revision.created !== undefined) slot.currentRevision.created = revision.created;
    }
  }
  run.status = "Succeeded";
  setLatest(d, exec, stageName, run);
  emitAction(d, exec, stageName, action, run, "SUCCEEDED");
}

function failRun(d: Draft, exec: ExecutionRuntime, stageName: string, action: ActionSpec | undefined, run: ActionRun, error: ErrorDetailsSpec): void {
  run.status = "Failed";
  run.errorDetails = { ...error };
  run.summary ??= error.message;
  run.lastUpdateTime = d.ctx.now;
  setLatest(d, exec, stageName, run);
  emitAction(d, exec, stageName, action, run, "FAILED");
}

function rememberRevision(state: PipelineRuntime, revision: SourceRevisionRef): void {
  state.lastSourceRevisions = [...state.lastSourceRevisions.filter((r) => r.actionName !== revision.actionName), { ...revision }];
}

/** GetPipelineState's entry of an action, created on first use; undefined for a stage the current version lacks. */
function actionSlot(d: Draft, stageName: string, actionName: string): ActionSlot | undefined {
  const stage = d.state.stages.find((s) => s.name === stageName);
  if (stage === undefined) return undefined;
  let slot = stage.actions.find((a) => a.name === actionName);
  if (slot === undefined) {
    slot = { name: actionName };
    stage.actions.push(slot);
  }
  return slot;
}

/** Updates GetPipelineState's latestExecution of the action. */
function setLatest(d: Draft, exec: ExecutionRuntime, stageName: string, run: ActionRun): void {
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
  const slot = actionSlot(d, stageName, run.name);
  if (slot !== undefined) slot.latest = latest;
}

// ---------------------------------------------------------------- events out

function emitPipeline(d: Draft, exec: ExecutionRuntime, state: string): void {
  d.events.push({
    kind: "pipeline",
    event: {
      eventId: `${exec.id}:${state}`,
      detailType: DETAIL_TYPES.pipeline,
      time: d.ctx.now,
      pipeline: d.state.pipelineName,
      executionId: exec.id,
      version: exec.pipelineVersion,
      state,
      executionTrigger: { ...exec.trigger },
    },
  });
}

function emitStage(d: Draft, exec: ExecutionRuntime, stage: string, state: string): void {
  d.events.push({
    kind: "stage",
    event: {
      eventId: `${exec.id}:${stage}:${state}`,
      detailType: DETAIL_TYPES.stage,
      time: d.ctx.now,
      pipeline: d.state.pipelineName,
      executionId: exec.id,
      version: exec.pipelineVersion,
      stage,
      state,
    },
  });
}

/** EventBridge states of action events Sluice emits. */
type ActionEventState = "STARTED" | "SUCCEEDED" | "FAILED" | "ABANDONED";

function emitAction(d: Draft, exec: ExecutionRuntime, stage: string, action: ActionSpec | undefined, run: ActionRun, state: ActionEventState): void {
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
  d.events.push({ kind: "action", event });
}
