// Actions of an execution: dispatching a job (first attempt or a retry),
// recording a job's result, failing, abandoning and timing out. Changes only
// the action run, the execution's artifacts, variables and source revisions,
// and GetPipelineState's action entries, and adds the job commands and action
// events; what the stage does next is the driver's (flow.ts), which callers
// ask for after the run changed.

import type { ActionAttempt, ActionRun, ActionSpec, ErrorDetailsSpec, ExecutionRuntime, JobOutcome, JobSpec, StageRun } from "./types.js";
import { actionSlot, emitAction, rememberRevision, setLatest, specFor, stageRunOf } from "./draft.js";
import type { Draft } from "./draft.js";
import { MAX_OUTPUT_VARIABLES_BYTES, VARIABLE_KEY_PATTERN } from "../limits.js";
import { DEFAULT_RUNNER_POOL, RESERVED_RUNNER_POOLS, runnerPoolOf } from "../validation/providers.js";
import { resolveScript, resolveValue } from "./variables.js";
import { actionSecrets, maskDeep, scrubOutcome, viewMasker } from "./secrets.js";

/**
 * The id of a run's current job (also its Nats-Msg-Id): one per attempt, and one more per
 * follow-up job of a continued custom action, so JetStream never drops a follow-up as a repeat.
 */
export function jobIdOf(run: Pick<ActionRun, "actionExecutionId" | "attempt" | "continuations">): string {
  const base = `${run.actionExecutionId}:${run.attempt}`;
  return run.continuations === undefined ? base : `${base}:${run.continuations}`;
}

/**
 * Starts an action of the stage the execution is inside: a first run, or a
 * new attempt of an earlier run (a retry), which keeps the earlier attempt in
 * `attempts` and gets attempt + 1 and a new action execution id.
 */
export function startAction(d: Draft, exec: ExecutionRuntime, stageName: string, action: ActionSpec): void {
  const { ctx } = d;
  const stageRun = stageRunOf(exec, stageName);
  if (stageRun === undefined) throw new Error(`execution ${exec.id} has not entered stage ${stageName}`);
  // A new attempt must pass the onSuccess condition again.
  delete stageRun.successCleared;
  if (stageRun.pendingRerun !== undefined) {
    const rest = stageRun.pendingRerun.filter((n) => n !== action.name);
    if (rest.length === 0) delete stageRun.pendingRerun;
    else stageRun.pendingRerun = rest;
  }
  const actionExecutionId = ctx.newId();
  const isApproval = action.category === "Approval" || action.builtIn === "Manual";
  const previous = stageRun.actions.find((a) => a.name === action.name);
  const run: ActionRun = {
    name: action.name,
    actionExecutionId,
    attempt: previous === undefined ? 1 : previous.attempt + 1,
    status: "InProgress",
    startTime: ctx.now,
    lastUpdateTime: ctx.now,
    deadline: ctx.now + action.timeoutInMinutes * 60_000,
    inputArtifactIds: [],
    pipelineVersion: exec.pipelineVersion,
  };
  if (previous !== undefined) run.attempts = [...(previous.attempts ?? []), attemptOf(previous)];
  if (isApproval) run.token = ctx.newId();
  replaceRun(stageRun, run);

  const problem = prepare(exec, action, run);
  const script = problem === undefined ? shellScriptOf(exec, action) : problem;
  if ("code" in script) {
    failRun(d, exec, stageName, action, run, script);
    return;
  }
  const job = jobOf(d, exec, stageName, action, run, { ...run.resolvedConfiguration, ...script.configuration }, script);
  // Runners report when they start a job (JobStarted); until then it shows as queued in its pool.
  if (!isApproval && !RESERVED_RUNNER_POOLS.includes(job.pool)) run.runnerPool = job.pool;
  const pinned = exec.pinnedRevisions.find((p) => p.actionName === action.name);
  if (action.category === "Source" && pinned !== undefined) {
    if (pinned.revisionType === "S3_OBJECT_KEY") job.configuration = { ...job.configuration, S3ObjectKey: pinned.revisionId };
    else job.sourceRevision = pinned.revisionId;
  }
  if (run.token !== undefined) job.approvalToken = run.token;
  // The job carries the configuration as resolved; the state (views, archive) keeps it without secrets or URL credentials.
  if (run.resolvedConfiguration !== undefined) run.resolvedConfiguration = maskDeep(run.resolvedConfiguration, viewMasker(actionSecrets(action)));
  d.commands.push({ type: "DispatchJob", job });
  setLatest(d, exec, stageName, run);
  emitAction(d, exec, stageName, action, run, "STARTED");
}

/** What a Commands job runs, from `shellScriptOf`. */
type Script = { commands: string[]; configuration: Record<string, string>; environment: ActionSpec["environmentVariables"] };

/** The job of a run's current attempt (or follow-up), with `configuration` as resolved. */
function jobOf(d: Draft, exec: ExecutionRuntime, stageName: string, action: ActionSpec, run: ActionRun, configuration: Record<string, string>, script: Script): JobSpec {
  return {
    jobId: jobIdOf(run),
    actionExecutionId: run.actionExecutionId,
    attempt: run.attempt,
    pipelineName: d.state.pipelineName,
    pipelineVersion: exec.pipelineVersion,
    pipelineExecutionId: exec.id,
    stageName,
    actionName: action.name,
    actionTypeId: { category: action.category, owner: action.owner, provider: action.provider, version: action.providerVersion },
    // Approvals keep the default pool's subject, the approval service's queue.
    pool: action.builtIn === "Manual" ? DEFAULT_RUNNER_POOL : runnerPoolOf(action.configuration),
    category: action.category,
    builtIn: action.builtIn,
    configuration,
    commands: script.commands,
    environmentVariables: [...resolvedEnvironment(exec, action), ...script.environment],
    outputVariables: [...action.outputVariables],
    outputArtifacts: action.outputArtifacts.map((o) => ({ name: o.name, files: [...o.files] })),
    deadline: run.deadline,
    artifactBucket: specFor(d.state, exec).artifactBucket,
    inputArtifactIds: [...run.inputArtifactIds],
    outputNames: action.outputArtifacts.map((o) => o.name),
    ...(action.secretConfiguration === undefined ? {} : { secretConfigurationKeys: [...action.secretConfiguration] }),
  };
}

/**
 * A job worker's success with a continuation token (AWS continuationToken): the action is not
 * done. It stays InProgress under the same action execution and deadline, shows the result's
 * summary and percentComplete, and a follow-up job with a new id carries the token to a worker.
 * The configuration is resolved again because the state keeps it masked.
 */
function continueRun(d: Draft, exec: ExecutionRuntime, stageName: string, action: ActionSpec, run: ActionRun, continuationToken: string): void {
  const configuration: Record<string, string> = {};
  for (const [key, value] of Object.entries(action.configuration)) {
    const r = resolveValue(value, exec.id, exec.variables);
    if (!r.ok) {
      failRun(d, exec, stageName, action, run, unresolvable(`configuration ${key}`, r.reference));
      return;
    }
    configuration[key] = r.value;
  }
  const script = shellScriptOf(exec, action);
  if ("code" in script) {
    failRun(d, exec, stageName, action, run, script);
    return;
  }
  run.continuations = (run.continuations ?? 0) + 1;
  const job = jobOf(d, exec, stageName, action, run, { ...configuration, ...script.configuration }, script);
  job.continuationToken = continuationToken;
  d.commands.push({ type: "DispatchJob", job });
  setLatest(d, exec, stageName, run);
}

function replaceRun(stageRun: StageRun, run: ActionRun): void {
  const i = stageRun.actions.findIndex((a) => a.name === run.name);
  if (i >= 0) stageRun.actions[i] = run;
  else stageRun.actions.push(run);
}

/** The history entry of a run's current attempt. */
function attemptOf(run: ActionRun): ActionAttempt {
  const a: ActionAttempt = {
    actionExecutionId: run.actionExecutionId,
    attempt: run.attempt,
    status: run.status,
    startTime: run.startTime,
    lastUpdateTime: run.lastUpdateTime,
    inputArtifactIds: [...run.inputArtifactIds],
  };
  if (run.summary !== undefined) a.summary = run.summary;
  if (run.errorDetails !== undefined) a.errorDetails = { ...run.errorDetails };
  if (run.externalExecutionId !== undefined) a.externalExecutionId = run.externalExecutionId;
  if (run.externalExecutionUrl !== undefined) a.externalExecutionUrl = run.externalExecutionUrl;
  if (run.token !== undefined) a.token = run.token;
  if (run.updatedBy !== undefined) a.updatedBy = run.updatedBy;
  if (run.outputVariables !== undefined) a.outputVariables = { ...run.outputVariables };
  if (run.resolvedConfiguration !== undefined) a.resolvedConfiguration = { ...run.resolvedConfiguration };
  if (run.pipelineVersion !== undefined) a.pipelineVersion = run.pipelineVersion;
  return a;
}

/**
 * Resolves the configuration and finds the input artifacts, recording both on
 * the run; returns the problem that keeps the action from starting.
 */
function prepare(exec: ExecutionRuntime, action: ActionSpec, run: ActionRun): ErrorDetailsSpec | undefined {
  const resolved: Record<string, string> = {};
  for (const [key, value] of Object.entries(action.configuration)) {
    const r = resolveValue(value, exec.id, exec.variables);
    if (!r.ok) return unresolvable(`configuration ${key}`, r.reference);
    resolved[key] = r.value;
  }
  for (const variable of action.environmentVariables) {
    if (variable.type !== "PLAINTEXT") continue;
    const r = resolveValue(variable.value, exec.id, exec.variables);
    if (!r.ok) return unresolvable(`environment variable ${variable.name}`, r.reference);
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

/**
 * The script a Commands job runs: its references turned into `${SLUICE_REF_n}`
 * and their values into environment variables, so no value is ever parsed as
 * shell text. `resolvedConfiguration` keeps the pasted text for people to read.
 */
function shellScriptOf(exec: ExecutionRuntime, action: ActionSpec): Script | ErrorDetailsSpec {
  if (action.builtIn !== "Commands") return { commands: [...action.commands], configuration: {}, environment: [] };
  const fromList = action.commands.length > 0 || !Object.hasOwn(action.configuration, "Commands");
  const pieces = fromList ? action.commands : [action.configuration["Commands"] ?? ""];
  const r = resolveScript(pieces, exec.id, exec.variables);
  const where = (piece: number): string => (fromList ? `commands[${piece}]` : "configuration Commands");
  if (!r.ok) {
    return r.reference !== undefined ? unresolvable(where(r.piece), r.reference) : { code: "ConfigurationError", message: `${where(r.piece)}: ${r.message}` };
  }
  return fromList
    ? { commands: r.pieces, configuration: {}, environment: r.environment }
    : { commands: [], configuration: { Commands: r.pieces[0] ?? "" }, environment: r.environment };
}

function unresolvable(where: string, reference: string): ErrorDetailsSpec {
  const why = reference.startsWith("#{variables.")
    ? "the pipeline variable has no value in this execution"
    : "no earlier action of this execution produced it";
  return { code: "ConfigurationError", message: `${where}: variable ${reference} cannot be resolved (${why})` };
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
export function applyResult(d: Draft, exec: ExecutionRuntime, stageName: string, action: ActionSpec | undefined, run: ActionRun, raw: JobOutcome): void {
  const oversized = outputVariablesOverLimit(raw.outputVariables);
  const result = scrubOutcome(oversized === undefined ? raw : { ...raw, outputVariables: {} }, actionSecrets(action));
  run.lastUpdateTime = d.ctx.now;
  if (result.updatedBy !== undefined) run.updatedBy = result.updatedBy;
  if (result.externalExecutionId !== undefined) run.externalExecutionId = result.externalExecutionId;
  if (result.externalExecutionUrl !== undefined) run.externalExecutionUrl = result.externalExecutionUrl;
  if (result.summary !== undefined) run.summary = result.summary;
  if (result.percentComplete !== undefined) run.percentComplete = result.percentComplete;

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
  if (result.continuationToken !== undefined) {
    continueRun(d, exec, stageName, action, run, result.continuationToken);
    return;
  }
  // A success must deliver what the declaration promises; later actions depend on it.
  const missing = action.outputArtifacts.find((o) => !result.outputArtifacts.some((p) => p.name === o.name));
  if (missing !== undefined) {
    failRun(d, exec, stageName, action, run, { code: "JobFailed", message: `the job succeeded without output artifact ${missing.name}` });
    return;
  }
  if (oversized !== undefined) {
    run.summary = oversized;
    failRun(d, exec, stageName, action, run, { code: "JobFailed", message: oversized });
    return;
  }
  const badKey = Object.keys(result.outputVariables).find((k) => !VARIABLE_KEY_PATTERN.test(k));
  if (badKey !== undefined) {
    failRun(d, exec, stageName, action, run, { code: "JobFailed", message: `output variable name ${JSON.stringify(badKey)} is invalid (allowed: [A-Za-z0-9@_-], 1-128)` });
    return;
  }

  const revision = action.category === "Source" && result.revision !== undefined ? { ...result.revision, actionName: action.name } : undefined;
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


/** Why a result's output variables are too big (naming the largest), or undefined. */
export function outputVariablesOverLimit(vars: Readonly<Record<string, string>>): string | undefined {
  let total = 0;
  let largest = { name: "", bytes: -1 };
  for (const [name, value] of Object.entries(vars)) {
    const bytes = utf8Length(name) + utf8Length(value);
    total += bytes;
    if (bytes > largest.bytes) largest = { name, bytes };
  }
  if (total <= MAX_OUTPUT_VARIABLES_BYTES) return undefined;
  return `output variables are ${total} bytes, more than the ${MAX_OUTPUT_VARIABLES_BYTES} allowed per action; the largest is ${JSON.stringify(largest.name)} (${largest.bytes} bytes)`;
}

function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

function failRun(d: Draft, exec: ExecutionRuntime, stageName: string, action: ActionSpec | undefined, run: ActionRun, error: ErrorDetailsSpec): void {
  run.status = "Failed";
  run.errorDetails = { ...error };
  run.summary ??= error.message;
  run.lastUpdateTime = d.ctx.now;
  setLatest(d, exec, stageName, run);
  emitAction(d, exec, stageName, action, run, "FAILED");
}

/** Marks a running action Abandoned and tells runners to kill its job. */
export function abandonRun(d: Draft, exec: ExecutionRuntime, stageName: string, action: ActionSpec | undefined, run: ActionRun, reason: string): void {
  run.status = "Abandoned";
  run.summary ??= reason;
  run.lastUpdateTime = d.ctx.now;
  setLatest(d, exec, stageName, run);
  emitAction(d, exec, stageName, action, run, "ABANDONED");
  cancelJob(d, run, reason);
}

function cancelJob(d: Draft, run: ActionRun, reason: string): void {
  d.commands.push({ type: "CancelJob", jobId: jobIdOf(run), actionExecutionId: run.actionExecutionId, pipelineName: d.state.pipelineName, reason });
}

/** A timeout in words: whole days for long ones (approvals), minutes otherwise. */
function durationText(minutes: number): string {
  if (minutes >= 1440 && minutes % 1440 === 0) return minutes === 1440 ? "1 day" : `${minutes / 1440} days`;
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

/** Fails a run whose deadline passed and cancels its job; the error names the timeout. */
export function timeOutRun(d: Draft, exec: ExecutionRuntime, stageName: string, action: ActionSpec | undefined, run: ActionRun): void {
  const minutes = Math.round((run.deadline - run.startTime) / 60_000);
  const isApproval = run.token !== undefined;
  const message = isApproval
    ? `approval "${run.name}" expired: no answer within ${durationText(minutes)} (the approval timeout)`
    : `action "${run.name}" timed out after ${durationText(minutes)}`;
  failRun(d, exec, stageName, action, run, { code: "JobTimedOut", message });
  cancelJob(d, run, message);
}
