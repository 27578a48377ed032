// Stage conditions (AWS: "Conditions"): running a check, its rules,
// and OverrideStageCondition. This module changes only the condition runs
// (and their GetPipelineState copies) and dispatches or cancels rule jobs.
// A function that may finish a check returns the finished ConditionRun;
// what it does to its stage (enter, skip, fail, roll back) is the driver's
// (flow.ts `applyConditionOutcome`), which OverrideStageCondition leaves on
// the agenda as a conditionDone step.
//
// Semantics, where AWS's documentation is ambiguous:
// - A condition passes iff every rule passes. Rules start together; the first
//   rule that fails fails the condition at once and the others are abandoned
//   (their jobs cancelled).
// - beforeEntry and onSuccess engage their result when the condition FAILS
//   ("the stage performs the specified result only when the condition fails").
// - onFailure conditions engage ROLLBACK when the condition is MET, i.e. its
//   rules pass (AWS: "the action to be done when the condition is met. For
//   example, rolling back an execution for a failure condition"; a
//   CloudWatchAlarm rule in ALARM meets it). Rules that fail leave the stage
//   Failed without a rollback.
// - A condition fails as Errored (not Failed) when a rule could not be
//   evaluated: an unresolvable variable, a bad pattern, a timed-out or
//   cancelled job; Failed when a rule ran and did not pass.
// - ROLLBACK executions check no conditions: they restore a stage to a state
//   that already passed its checks, and an onFailure ROLLBACK of a failed
//   rollback would roll back again and again.
//
// VariableCheck rules are evaluated here, after variable resolution; Commands
// rules run on a runner as jobs on `sluice.jobs.<pool>.Rule.Commands`, whose
// JobResult answers the rule like an action's answers the action.

import { DomainError } from "../errors.js";
import { DEFAULT_RULE_TIMEOUT_MINUTES, MAX_CONDITION_RUNS } from "../limits.js";
import type {
  ConditionResult,
  ConditionRun,
  ConditionStatus,
  ConditionType,
  DecideContext,
  ErrorDetailsSpec,
  ExecutionEvent,
  ExecutionRuntime,
  JobOutcome,
  JobSpec,
  PipelineRuntime,
  RuleRun,
  RuleSpec,
  StageConditionsSpec,
  StageRun,
  StageSpec,
} from "./types.js";
import { draftOf, findExecution, isFinal, liveExecution, slotByName, specFor, stageRunOf } from "./draft.js";
import type { Draft, Handled } from "./draft.js";
import { bringBack } from "./resume.js";
import { compileSafePattern } from "./safe-regex.js";
import { DEFAULT_RUNNER_POOL } from "../validation/providers.js";
import { resolveScript, resolveValue } from "./variables.js";


/** The attempt number of every rule job: a rule runs once per check. */
const RULE_ATTEMPT = 1;

/** Whether an execution checks stage conditions: ROLLBACK executions do not (see the header). */
export function conditionsApply(exec: ExecutionRuntime): boolean {
  return exec.executionType !== "ROLLBACK";
}

/** The declared stage in the version the execution runs. */
export function stageSpecFor(state: PipelineRuntime, exec: ExecutionRuntime, stageName: string): StageSpec | undefined {
  return specFor(state, exec).stages.find((s) => s.name === stageName);
}

/** The declaration of a condition type of a stage. */
function conditionsOf(stage: StageSpec | undefined, type: ConditionType): StageConditionsSpec | undefined {
  if (stage === undefined) return undefined;
  return type === "BEFORE_ENTRY" ? stage.beforeEntry : type === "ON_SUCCESS" ? stage.onSuccess : stage.onFailure;
}

/** The check running in a stage run, if any. */
export function runningCondition(run: StageRun): ConditionRun | undefined {
  const last = run.conditions?.at(-1);
  return last?.status === "InProgress" ? last : undefined;
}

/** The job id of a Commands rule's job. */
function ruleJobId(rule: RuleRun): string {
  return `${rule.ruleExecutionId}:${RULE_ATTEMPT}`;
}

function defaultResult(type: ConditionType): ConditionResult {
  return type === "ON_FAILURE" ? "ROLLBACK" : "FAIL";
}

/**
 * Starts a check of the stage's condition of `type` in the stage the
 * execution is inside: VariableCheck rules are decided at once, Commands
 * rules dispatched. A check whose rules are all decided finishes at once:
 * then it is returned, for the driver to act on.
 */
export function startCondition(d: Draft, exec: ExecutionRuntime, stageName: string, type: ConditionType): ConditionRun | undefined {
  const condition = conditionsOf(stageSpecFor(d.state, exec, stageName), type)?.conditions[0];
  const run = stageRunOf(exec, stageName);
  if (condition === undefined || run === undefined) throw new Error(`stage ${stageName} has no ${type} condition to check`);
  const cond: ConditionRun = {
    conditionType: type,
    result: condition.result ?? defaultResult(type),
    status: "InProgress",
    startTime: d.ctx.now,
    lastUpdateTime: d.ctx.now,
    rules: [],
  };
  run.conditions = [...(run.conditions ?? []), cond].slice(-MAX_CONDITION_RUNS);
  exec.lastUpdateTime = d.ctx.now;
  for (const rule of condition.rules) startRule(d, exec, stageName, cond, rule);
  syncCondition(d, exec, stageName, cond);
  return evaluateCondition(d, exec, stageName);
}

function startRule(d: Draft, exec: ExecutionRuntime, stageName: string, cond: ConditionRun, rule: RuleSpec): void {
  const { ctx } = d;
  const ruleRun: RuleRun = {
    name: rule.name,
    ruleTypeId: { ...rule.ruleTypeId },
    ruleExecutionId: ctx.newId(),
    status: "InProgress",
    startTime: ctx.now,
    lastUpdateTime: ctx.now,
    inputArtifactIds: [],
  };
  cond.rules.push(ruleRun);
  const resolved: Record<string, string> = {};
  for (const [key, value] of Object.entries(rule.configuration)) {
    const r = resolveValue(value, exec.id, exec.variables);
    if (!r.ok) {
      const why = r.reference.startsWith("#{variables.") ? "the pipeline variable has no value in this execution" : "no earlier action of this execution produced it";
      endRule(d, ruleRun, "Failed", `configuration ${key}: variable ${r.reference} cannot be resolved (${why})`, { code: "ConfigurationError", message: `configuration ${key}: variable ${r.reference} cannot be resolved (${why})` });
      return;
    }
    resolved[key] = r.value;
  }
  ruleRun.resolvedConfiguration = resolved;
  switch (rule.ruleTypeId.provider) {
    case "VariableCheck": {
      const outcome = variableCheck(rule.configuration["Variable"] ?? "", resolved);
      endRule(d, ruleRun, outcome.passed ? "Succeeded" : "Failed", outcome.summary, outcome.error);
      return;
    }
    case "Commands":
      dispatchRule(d, exec, stageName, rule, ruleRun);
      return;
    default: {
      const message = `rule provider ${JSON.stringify(rule.ruleTypeId.provider)} is not supported (supported: Commands, VariableCheck)`;
      endRule(d, ruleRun, "Failed", message, { code: "ConfigurationError", message });
    }
  }
}

/** Outcome of a VariableCheck rule. */
export interface VariableCheckOutcome {
  passed: boolean;
  summary: string;
  /** Set when the rule could not be evaluated. */
  error?: ErrorDetailsSpec;
}

/**
 * Evaluates a VariableCheck rule on its resolved configuration (Variable,
 * Value, Operator): EQ, NE, CONTAINS (Value is a substring) or MATCHES (the
 * whole Variable matches the pattern Value; see safe-regex.ts). `reference`
 * is the unresolved Variable, for the summary.
 */
export function variableCheck(reference: string, resolved: Readonly<Record<string, string>>): VariableCheckOutcome {
  const actual = resolved["Variable"];
  const expected = resolved["Value"];
  const operator = resolved["Operator"];
  if (actual === undefined || expected === undefined || operator === undefined) {
    const message = "configuration needs Variable, Value and Operator";
    return { passed: false, summary: message, error: { code: "ConfigurationError", message } };
  }
  let passed: boolean;
  switch (operator) {
    case "EQ":
      passed = actual === expected;
      break;
    case "NE":
      passed = actual !== expected;
      break;
    case "CONTAINS":
      passed = actual.includes(expected);
      break;
    case "MATCHES": {
      const compiled = compileSafePattern(expected);
      if (!compiled.ok) {
        const message = `configuration Value: ${JSON.stringify(short(expected))} is not a pattern Sluice can match: ${compiled.message}`;
        return { passed: false, summary: message, error: { code: "ConfigurationError", message } };
      }
      passed = compiled.pattern.matches(actual);
      break;
    }
    default: {
      const message = `configuration Operator: ${JSON.stringify(operator)} is not EQ, NE, CONTAINS or MATCHES`;
      return { passed: false, summary: message, error: { code: "ConfigurationError", message } };
    }
  }
  const summary = `${reference} is ${JSON.stringify(short(actual))}: ${operator} ${JSON.stringify(short(expected))} ${passed ? "holds" : "does not hold"}`;
  return { passed, summary };
}

function short(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Dispatches a Commands rule as a job (category Rule, built-in Commands). */
function dispatchRule(d: Draft, exec: ExecutionRuntime, stageName: string, rule: RuleSpec, ruleRun: RuleRun): void {
  for (const name of rule.inputArtifacts) {
    const artifact = exec.artifacts.findLast((a) => a.name === name);
    if (artifact === undefined) {
      const message = `input artifact ${name} was not produced by an earlier action of this execution`;
      endRule(d, ruleRun, "Failed", message, { code: "ConfigurationError", message });
      return;
    }
    ruleRun.inputArtifactIds.push(artifact.artifactId);
  }
  // Values reach the shell only as environment variables (see shell-references.ts).
  const script = resolveScript(rule.commands, exec.id, exec.variables);
  if (!script.ok) {
    const message =
      script.reference !== undefined
        ? `commands[${script.piece}]: variable ${script.reference} cannot be resolved`
        : `commands[${script.piece}]: ${script.message}`;
    endRule(d, ruleRun, "Failed", message, { code: "ConfigurationError", message });
    return;
  }
  ruleRun.deadline = d.ctx.now + (rule.timeoutInMinutes ?? DEFAULT_RULE_TIMEOUT_MINUTES) * 60_000;
  const job: JobSpec = {
    jobId: ruleJobId(ruleRun),
    actionExecutionId: ruleRun.ruleExecutionId,
    attempt: RULE_ATTEMPT,
    pipelineName: d.state.pipelineName,
    pipelineVersion: exec.pipelineVersion,
    pipelineExecutionId: exec.id,
    stageName,
    actionName: rule.name,
    actionTypeId: { ...rule.ruleTypeId },
    // Rules have no pool choice: the default pool's runners run them.
    pool: DEFAULT_RUNNER_POOL,
    category: "Rule",
    builtIn: "Commands",
    configuration: { ...ruleRun.resolvedConfiguration },
    commands: script.pieces,
    environmentVariables: script.environment,
    outputVariables: [],
    outputArtifacts: [],
    deadline: ruleRun.deadline,
    artifactBucket: specFor(d.state, exec).artifactBucket,
    inputArtifactIds: [...ruleRun.inputArtifactIds],
    outputNames: [],
  };
  d.commands.push({ type: "DispatchJob", job });
}

function endRule(d: Draft, rule: RuleRun, status: "Succeeded" | "Failed" | "Abandoned", summary: string, error?: ErrorDetailsSpec): void {
  rule.status = status;
  rule.summary = summary;
  if (error !== undefined) rule.errorDetails = { ...error };
  rule.lastUpdateTime = d.ctx.now;
}

/** Records an accepted job result of a Commands rule and re-evaluates its condition; returns the check if that finished it. */
export function applyRuleResult(d: Draft, exec: ExecutionRuntime, stageName: string, rule: RuleRun, result: JobOutcome): ConditionRun | undefined {
  if (result.updatedBy !== undefined) rule.updatedBy = result.updatedBy;
  if (result.externalExecutionId !== undefined) rule.externalExecutionId = result.externalExecutionId;
  if (result.externalExecutionUrl !== undefined) rule.externalExecutionUrl = result.externalExecutionUrl;
  if (result.status === "Succeeded") {
    endRule(d, rule, "Succeeded", result.summary ?? "the commands succeeded");
  } else {
    const error = result.errorDetails ?? { code: "JobFailed", message: result.summary ?? "the commands failed" };
    endRule(d, rule, "Failed", result.summary ?? error.message, error);
  }
  const run = stageRunOf(exec, stageName);
  const cond = run === undefined ? undefined : runningCondition(run);
  if (cond !== undefined) syncCondition(d, exec, stageName, cond);
  return evaluateCondition(d, exec, stageName);
}

/** Fails a Commands rule whose deadline passed and cancels its job; returns the check if that finished it. */
export function timeOutRule(d: Draft, exec: ExecutionRuntime, stageName: string, rule: RuleRun): ConditionRun | undefined {
  const minutes = Math.round(((rule.deadline ?? rule.startTime) - rule.startTime) / 60_000);
  const message = `rule "${rule.name}" timed out after ${minutes === 1 ? "1 minute" : `${minutes} minutes`}`;
  endRule(d, rule, "Failed", message, { code: "JobTimedOut", message });
  cancelRuleJob(d, rule, message);
  const run = stageRunOf(exec, stageName);
  const cond = run === undefined ? undefined : runningCondition(run);
  if (cond !== undefined) syncCondition(d, exec, stageName, cond);
  return evaluateCondition(d, exec, stageName);
}

function cancelRuleJob(d: Draft, rule: RuleRun, reason: string): void {
  if (rule.deadline === undefined) return; // only Commands rules have jobs
  d.commands.push({ type: "CancelJob", jobId: ruleJobId(rule), actionExecutionId: rule.ruleExecutionId, pipelineName: d.state.pipelineName, reason });
}

/** Abandons the running rules of a check (their jobs are cancelled). */
function abandonRules(d: Draft, cond: ConditionRun, reason: string): void {
  for (const rule of cond.rules) {
    if (rule.status !== "InProgress") continue;
    endRule(d, rule, "Abandoned", reason);
    cancelRuleJob(d, rule, reason);
  }
}

/** Errors that mean a rule could not be evaluated (the condition is Errored rather than Failed). */
const EVALUATION_ERRORS: ReadonlySet<string> = new Set(["ConfigurationError", "JobTimedOut", "JobCancelled", "SystemUnavailable", "ArtifactIntegrityError", "PermissionError"]);

/** Finishes the running check of a stage once a rule failed or every rule passed; returns it when it finished. */
function evaluateCondition(d: Draft, exec: ExecutionRuntime, stageName: string): ConditionRun | undefined {
  const run = stageRunOf(exec, stageName);
  const cond = run === undefined ? undefined : runningCondition(run);
  if (cond === undefined) return undefined;
  const failed = cond.rules.find((r) => r.status === "Failed");
  if (failed !== undefined) {
    abandonRules(d, cond, `condition ${cond.conditionType} failed: rule "${failed.name}" failed`);
    const errored = cond.rules.some((r) => r.status === "Failed" && r.errorDetails !== undefined && EVALUATION_ERRORS.has(r.errorDetails.code));
    finishCondition(d, exec, stageName, cond, errored ? "Errored" : "Failed", `Rule "${failed.name}" ${errored ? "could not be evaluated" : "failed"}: ${failed.summary ?? "no details"}`);
    return cond;
  }
  if (cond.rules.every((r) => r.status === "Succeeded")) {
    finishCondition(d, exec, stageName, cond, "Succeeded", cond.rules.length === 1 ? "The rule succeeded" : `All ${cond.rules.length} rules succeeded`);
    return cond;
  }
  return undefined;
}

function finishCondition(d: Draft, exec: ExecutionRuntime, stageName: string, cond: ConditionRun, status: ConditionStatus, summary: string): void {
  cond.status = status;
  cond.summary = summary;
  cond.lastUpdateTime = d.ctx.now;
  exec.lastUpdateTime = d.ctx.now;
  syncCondition(d, exec, stageName, cond);
}

/**
 * Ends the running check of a stage run without an outcome (the execution is
 * stopping, abandoned, cancelled or deleted): rules Abandoned, jobs cancelled.
 */
export function cancelCondition(d: Draft, exec: ExecutionRuntime, stageName: string, status: "Cancelled" | "Abandoned", reason: string): void {
  const run = stageRunOf(exec, stageName);
  const cond = run === undefined ? undefined : runningCondition(run);
  if (cond === undefined) return;
  abandonRules(d, cond, reason);
  cond.status = status;
  cond.summary = reason;
  cond.lastUpdateTime = d.ctx.now;
  syncCondition(d, exec, stageName, cond);
}

/** GetPipelineState keeps the latest check of each type of the stage's latest execution. */
function syncCondition(d: Draft, exec: ExecutionRuntime, stageName: string, cond: ConditionRun): void {
  const slot = slotByName(d.state, stageName);
  if (slot?.latest?.pipelineExecutionId !== exec.id) return;
  slot.conditions = [...(slot.conditions ?? []).filter((c) => c.conditionType !== cond.conditionType), structuredClone(cond)];
}

/** Where a rule run is: its execution, stage and the run itself. */
export interface RuleLocation {
  executionId: string;
  stageName: string;
  rule: RuleRun;
}

/** Finds the rule run of a job result in an execution, or undefined. */
export function findRuleRun(exec: ExecutionRuntime, ruleExecutionId: string): RuleLocation | undefined {
  for (const stage of exec.stages) {
    for (const cond of stage.conditions ?? []) {
      const rule = cond.rules.find((r) => r.ruleExecutionId === ruleExecutionId);
      if (rule !== undefined) return { executionId: exec.id, stageName: stage.name, rule };
    }
  }
  return undefined;
}

/** Running Commands rules of an execution (for deadlines). */
export function runningRules(exec: ExecutionRuntime): { stageName: string; rule: RuleRun }[] {
  const out: { stageName: string; rule: RuleRun }[] = [];
  for (const stage of exec.stages) {
    const cond = runningCondition(stage);
    if (cond === undefined) continue;
    for (const rule of cond.rules) if (rule.status === "InProgress" && rule.deadline !== undefined) out.push({ stageName: stage.name, rule });
  }
  return out;
}

// ---------------------------------------------------------------- OverrideStageCondition

type ConditionOverridden = Extract<ExecutionEvent, { type: "ConditionOverridden" }>;

/**
 * OverrideStageCondition: the check of the stage's BEFORE_ENTRY or ON_SUCCESS
 * condition in the stage's latest execution counts as passed (status
 * Overridden) and the stage proceeds: its actions run, or it succeeds and the
 * execution moves on. A running check ends at once (running rules are
 * abandoned); an execution that a failed check failed resumes (Sluice also
 * lets an override lift a check that already failed, as AWS's console does
 * for a blocked execution). Conditions with result SKIP are not overridable.
 */
export function onConditionOverridden(state: PipelineRuntime, event: ConditionOverridden, ctx: DecideContext): Handled {
  const { executionId, stageName, conditionType } = event;
  const slot = slotByName(state, stageName);
  if (slot === undefined) throw new DomainError("StageNotFoundException", `pipeline ${state.pipelineName} has no stage ${stageName}`);
  if ((conditionType as string) !== "BEFORE_ENTRY" && (conditionType as string) !== "ON_SUCCESS") {
    throw new DomainError("ValidationException", `conditionType: must be BEFORE_ENTRY or ON_SUCCESS, got ${JSON.stringify(conditionType)}`);
  }
  const latest = slot.latest?.pipelineExecutionId;
  if (latest !== executionId) {
    throw new DomainError(
      "NotLatestPipelineExecutionException",
      latest === undefined
        ? `no execution has run stage ${stageName} of pipeline ${state.pipelineName}`
        : `pipeline execution ${executionId} is not the latest execution of stage ${stageName} (the latest is ${latest})`,
    );
  }
  const declared = conditionsOf(state.spec.stages.find((s) => s.name === stageName), conditionType)?.conditions[0];
  if (declared === undefined) {
    throw new DomainError("ConditionNotOverridableException", `stage ${stageName} of pipeline ${state.pipelineName} has no ${conditionType} condition`);
  }
  if ((declared.result ?? "FAIL") === "SKIP") {
    throw new DomainError("ConditionNotOverridableException", `the ${conditionType} condition of stage ${stageName} skips the stage when it fails (result SKIP); SKIP conditions cannot be overridden`);
  }
  const exec = findExecution(state, executionId);
  const run = exec?.stages.at(-1);
  const cond = run?.name === stageName ? run.conditions?.findLast((c) => c.conditionType === conditionType) : undefined;
  if (exec === undefined || run === undefined || cond === undefined || isFinal(exec.status)) {
    throw new DomainError("ConditionNotOverridableException", `no ${conditionType} check of stage ${stageName} is running or failed in pipeline execution ${executionId}`);
  }
  if (exec.status === "Stopping") throw new DomainError("ConflictException", `pipeline execution ${executionId} is stopping`);
  const running = cond.status === "InProgress";
  const failedIt = exec.status === "Failed" && run.status === "Failed" && run.failedBy === conditionType && (cond.status === "Failed" || cond.status === "Errored");
  if (!running && !failedIt) {
    throw new DomainError(
      "ConditionNotOverridableException",
      `the ${conditionType} check of stage ${stageName} in pipeline execution ${executionId} is ${cond.status}; only a running or failed check can be overridden`,
    );
  }
  if (failedIt) {
    if (exec.pipelineVersion !== state.spec.version) {
      throw new DomainError("ConditionNotOverridableException", `pipeline execution ${executionId} ran version ${exec.pipelineVersion} of the pipeline, which has changed to version ${state.spec.version}`);
    }
    if (slot.lock !== undefined) throw new DomainError("ConflictException", `stage ${stageName} is occupied by pipeline execution ${slot.lock}`);
  }
  const d = draftOf(state, ctx);
  const live = failedIt ? bringBack(d, exec) : liveExecution(d, executionId);
  const liveRun = live === undefined ? undefined : stageRunOf(live, stageName);
  const liveCond = liveRun?.conditions?.findLast((c) => c.conditionType === conditionType);
  if (live === undefined || liveRun === undefined || liveCond === undefined) throw new Error(`execution ${executionId} vanished from the copy of the state`);
  delete liveRun.failedBy;
  abandonRules(d, liveCond, `condition ${conditionType} overridden by ${event.by}`);
  liveCond.status = "Overridden";
  liveCond.summary = `Overridden by ${event.by}`;
  liveCond.overriddenBy = event.by;
  liveCond.lastUpdateTime = ctx.now;
  live.lastUpdateTime = ctx.now;
  syncCondition(d, live, stageName, liveCond);
  d.agenda.push({ kind: "conditionDone", exec: live, stageName, cond: liveCond });
  return d;
}
