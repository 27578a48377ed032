// Request checks of the execution-control operations, and the state-machine
// event each valid request becomes. Pure: the API handlers load the pipeline,
// call these, and apply the event; decide() then enforces the execution rules
// (retryable, stoppable, latest execution, ...).

import {
  CLIENT_REQUEST_TOKEN_PATTERN,
  COMMIT_ID_PATTERN,
  DomainError,
  LIMITS,
  MAX_SOURCE_REVISIONS,
  MAX_START_VARIABLES,
  MAX_STOP_REASON,
  MAX_TRANSITION_REASON,
  OVERRIDABLE_CONDITION_TYPES,
  SOURCE_REVISION_TYPES,
  STAGE_RETRY_MODES,
  TRANSITION_REASON_PATTERN,
  TRANSITION_TYPES,
  VARIABLE_KEY_PATTERN,
} from "@sluice/domain";
import type { ExecutionEvent, PipelineSpec, PipelineVariableOverride, SourceRevisionRef, StageRetryMode, TriggerSpec } from "@sluice/domain";
import type {
  DisableStageTransitionRequest,
  EnableStageTransitionRequest,
  OverrideStageConditionRequest,
  PipelineDeclaration,
  PutActionRevisionRequest,
  RetryActionExecutionRequest,
  RetryStageExecutionRequest,
  RollbackStageRequest,
  StartPipelineExecutionRequest,
  StopPipelineExecutionRequest,
} from "@sluice/proto";
import { checks } from "./request-validation.js";

/** Trigger types a Sluice service may record on a start it makes (schedules, event rules). */
const SERVICE_START_TRIGGERS: readonly string[] = ["CloudWatchEvent"];

/**
 * The trigger of a StartPipelineExecution: the caller, or the trigger a Sluice service names
 * (role `service` only, so nobody else can make an execution look scheduled).
 */
export function startTrigger(req: StartPipelineExecutionRequest, principal: { id: string; roles: readonly string[] }): TriggerSpec {
  const named = req.trigger;
  if (named === undefined) {
    if (!principal.roles.includes("operator") && !principal.roles.includes("admin")) {
      throw new DomainError("AccessDeniedException", `${principal.id} may start executions only with a trigger of its own (field trigger)`);
    }
    return { triggerType: "StartPipelineExecution", triggerDetail: principal.id };
  }
  if (!principal.roles.includes("service")) {
    throw new DomainError("AccessDeniedException", "trigger: only Sluice's own services (role service) may name the trigger of a start");
  }
  if (!SERVICE_START_TRIGGERS.includes(named.triggerType)) {
    throw invalidField("trigger.triggerType", `must be one of ${SERVICE_START_TRIGGERS.join(", ")}, got "${named.triggerType}"`);
  }
  if (named.triggerDetail.length > 1024) throw invalidField("trigger.triggerDetail", "must be at most 1024 characters");
  return { triggerType: named.triggerType, triggerDetail: named.triggerDetail };
}

function invalidField(field: string, message: string): DomainError {
  return new DomainError("ValidationException", `${field}: ${message}`, [{ field, message }]);
}

/** The revision types that pin an ObjectStore source (AWS's S3 source's). */
const OBJECT_SOURCE_REVISION_TYPES: readonly string[] = ["S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY"];

/** What StartPipelineExecution adds to ExecutionRequested. */
export interface StartOptions {
  variables?: PipelineVariableOverride[];
  pinnedRevisions?: SourceRevisionRef[];
  clientRequestToken?: string;
}

/**
 * Checks StartPipelineExecution's variables, clientRequestToken and
 * sourceRevisions against AWS's limits and what Sluice supports (a pinned
 * source must be Git, its revision a commit id). Throws ValidationException
 * naming every bad field. What depends on the pipeline's runtime (a variable
 * must be declared, a pinned action must be a source action, each once) is
 * decide()'s to check.
 */
export function startOptions(req: StartPipelineExecutionRequest, spec: PipelineSpec): StartOptions {
  const c = checks().name("name", req.name);
  if (req.variables.length > MAX_START_VARIABLES) c.add("variables", `must have at most ${MAX_START_VARIABLES} entries`);
  req.variables.forEach((v, i) => {
    c.matching(`variables[${i}].name`, v.name, 1, LIMITS.maxPipelineVariableNameLength, VARIABLE_KEY_PATTERN, "[A-Za-z0-9@_-]");
    c.text(`variables[${i}].value`, v.value, 1, LIMITS.maxPipelineVariableValueLength);
  });
  if (req.clientRequestToken !== "") {
    c.matching("clientRequestToken", req.clientRequestToken, 1, 128, CLIENT_REQUEST_TOKEN_PATTERN, "[a-zA-Z0-9-]");
  }
  if (req.sourceRevisions.length > MAX_SOURCE_REVISIONS) c.add("sourceRevisions", `must have at most ${MAX_SOURCE_REVISIONS} entries`);
  const sources = spec.stages[0]?.actions ?? [];
  req.sourceRevisions.forEach((r, i) => {
    const field = `sourceRevisions[${i}]`;
    c.name(`${field}.actionName`, r.actionName);
    const action = sources.find((a) => a.name === r.actionName && a.category === "Source");
    const objectSource = action?.builtIn === "ObjectStore";
    if (action !== undefined && action.builtIn !== "Git" && !objectSource) {
      c.add(`${field}.actionName`, `"${r.actionName}" is neither a Git nor an ObjectStore source; only those can be pinned`);
    }
    if (r.revisionType === "") c.add(`${field}.revisionType`, "is required");
    else if (!(SOURCE_REVISION_TYPES as readonly string[]).includes(r.revisionType)) c.add(`${field}.revisionType`, `must be one of ${SOURCE_REVISION_TYPES.join(", ")}`);
    else if (objectSource && !OBJECT_SOURCE_REVISION_TYPES.includes(r.revisionType)) {
      c.add(`${field}.revisionType`, `"${r.actionName}" is an ObjectStore source: pin it with ${OBJECT_SOURCE_REVISION_TYPES.join(" or ")}, not ${r.revisionType}`);
    } else if (!objectSource && r.revisionType !== "COMMIT_ID") {
      const hint = OBJECT_SOURCE_REVISION_TYPES.includes(r.revisionType) ? " (S3 revision types pin ObjectStore sources)" : "";
      c.add(`${field}.revisionType`, `${r.revisionType} is not supported for a Git source: pin it with COMMIT_ID${hint}`);
    }
    if (r.revisionValue === "") c.add(`${field}.revisionValue`, "is required");
    else if (r.revisionType === "COMMIT_ID" && !COMMIT_ID_PATTERN.test(r.revisionValue)) c.add(`${field}.revisionValue`, "must be a Git commit id (4-64 hex digits)");
    else if (r.revisionType === "S3_OBJECT_KEY" && (r.revisionValue.startsWith("/") || r.revisionValue.length > 1024)) {
      c.add(`${field}.revisionValue`, "must be an object key of at most 1024 characters, not starting with \"/\"");
    } else if (r.revisionType === "S3_OBJECT_VERSION_ID" && r.revisionValue.length > 1024) c.add(`${field}.revisionValue`, "must be at most 1024 characters");
  });
  c.throwIfAny();
  const options: StartOptions = {};
  if (req.variables.length > 0) options.variables = req.variables.map((v) => ({ name: v.name, value: v.value }));
  if (req.sourceRevisions.length > 0) options.pinnedRevisions = req.sourceRevisions.map((r) => ({
      actionName: r.actionName,
      revisionId: r.revisionValue,
      ...(r.revisionType === "S3_OBJECT_KEY" ? { revisionType: "S3_OBJECT_KEY" as const } : {}),
    }));
  if (req.clientRequestToken !== "") options.clientRequestToken = req.clientRequestToken;
  return options;
}

/** StopPipelineExecution → StopRequested. */
export function stopEvent(req: StopPipelineExecutionRequest, by: string): Extract<ExecutionEvent, { type: "StopRequested" }> {
  const c = checks().name("pipelineName", req.pipelineName).executionId("pipelineExecutionId", req.pipelineExecutionId);
  if (req.reason.length > MAX_STOP_REASON) c.add("reason", `must be at most ${MAX_STOP_REASON} characters`);
  c.throwIfAny();
  return { type: "StopRequested", executionId: req.pipelineExecutionId, abandon: req.abandon, reason: req.reason, by };
}

/** RetryStageExecution → StageRetryRequested; the stage must exist in the current declaration. */
export function stageRetryEvent(req: RetryStageExecutionRequest, declaration: PipelineDeclaration | undefined, by: string): Extract<ExecutionEvent, { type: "StageRetryRequested" }> {
  const c = checks().name("pipelineName", req.pipelineName).name("stageName", req.stageName).executionId("pipelineExecutionId", req.pipelineExecutionId);
  c.oneOf("retryMode", req.retryMode, STAGE_RETRY_MODES).throwIfAny();
  if (declaration !== undefined) stageOf(declaration, req.stageName);
  return { type: "StageRetryRequested", executionId: req.pipelineExecutionId, stageName: req.stageName, retryMode: req.retryMode as StageRetryMode, by };
}

/** RetryActionExecution → ActionRetryRequested; stage and action must exist in the current declaration. */
export function actionRetryEvent(req: RetryActionExecutionRequest, declaration: PipelineDeclaration | undefined, by: string): Extract<ExecutionEvent, { type: "ActionRetryRequested" }> {
  checks()
    .name("pipelineName", req.pipelineName)
    .name("stageName", req.stageName)
    .name("actionName", req.actionName)
    .executionId("pipelineExecutionId", req.pipelineExecutionId)
    .throwIfAny();
  if (declaration !== undefined) {
    const stage = stageOf(declaration, req.stageName);
    if (!stage.actions.some((a) => a.name === req.actionName)) {
      throw new DomainError("ActionNotFoundException", `stage "${req.stageName}" has no action "${req.actionName}"`, [
        { field: "actionName", message: `action "${req.actionName}" does not exist` },
      ]);
    }
  }
  return { type: "ActionRetryRequested", executionId: req.pipelineExecutionId, stageName: req.stageName, actionName: req.actionName, by };
}

/**
 * Disable/EnableStageTransition → TransitionChanged. Only Inbound transitions
 * exist in Sluice (an execution finishing a stage and waiting at the next one's
 * inbound transition is the same as AWS's Outbound block, so one kind suffices).
 */
export function transitionEvent(
  req: DisableStageTransitionRequest | EnableStageTransitionRequest,
  enabled: boolean,
  declaration: PipelineDeclaration | undefined,
  by: string,
): Extract<ExecutionEvent, { type: "TransitionChanged" }> {
  const c = checks().name("pipelineName", req.pipelineName).name("stageName", req.stageName).oneOf("transitionType", req.transitionType, TRANSITION_TYPES);
  if (req.transitionType === "Outbound") c.add("transitionType", "Sluice supports only Inbound transitions: disable the next stage's Inbound transition instead");
  const reason = "reason" in req ? req.reason : "";
  if (!enabled) c.matching("reason", reason, 1, MAX_TRANSITION_REASON, TRANSITION_REASON_PATTERN, "[a-zA-Z0-9!@ ().*?-]");
  c.throwIfAny();
  if (declaration !== undefined) stageOf(declaration, req.stageName);
  return { type: "TransitionChanged", stageName: req.stageName, enabled, reason, by };
}

/** OverrideStageCondition → ConditionOverridden; the stage must exist in the current declaration. */
export function overrideEvent(
  req: OverrideStageConditionRequest,
  declaration: PipelineDeclaration | undefined,
  by: string,
): Extract<ExecutionEvent, { type: "ConditionOverridden" }> {
  checks()
    .name("pipelineName", req.pipelineName)
    .name("stageName", req.stageName)
    .executionId("pipelineExecutionId", req.pipelineExecutionId)
    .oneOf("conditionType", req.conditionType, OVERRIDABLE_CONDITION_TYPES)
    .throwIfAny();
  if (declaration !== undefined) stageOf(declaration, req.stageName);
  return {
    type: "ConditionOverridden",
    executionId: req.pipelineExecutionId,
    stageName: req.stageName,
    conditionType: req.conditionType as "BEFORE_ENTRY" | "ON_SUCCESS",
    by,
  };
}

/**
 * RollbackStage → RollbackRequested for the new execution `executionId`
 * (trigger ManualRollback, detail = the caller); the stage must exist in the
 * current declaration.
 */
export function rollbackEvent(
  req: RollbackStageRequest,
  declaration: PipelineDeclaration | undefined,
  executionId: string,
  by: string,
): Extract<ExecutionEvent, { type: "RollbackRequested" }> {
  checks()
    .name("pipelineName", req.pipelineName)
    .name("stageName", req.stageName)
    .executionId("targetPipelineExecutionId", req.targetPipelineExecutionId)
    .throwIfAny();
  if (declaration !== undefined) stageOf(declaration, req.stageName);
  return {
    type: "RollbackRequested",
    executionId,
    stageName: req.stageName,
    targetExecutionId: req.targetPipelineExecutionId,
    trigger: { triggerType: "ManualRollback", triggerDetail: by },
  };
}

/**
 * PutActionRevision → SourceChanged pinned to the revision handed in. The action must be a
 * source action of the first stage; a Git source's revision must be a commit id, which is what
 * it fetches. decide() answers a revision the action already ran or runs by ignoring it.
 */
export function actionRevisionEvent(
  req: PutActionRevisionRequest,
  declaration: PipelineDeclaration,
  spec: PipelineSpec,
  now: number,
  newId: () => string,
  by: string,
): Extract<ExecutionEvent, { type: "SourceChanged" }> {
  const c = checks().name("pipelineName", req.pipelineName).name("stageName", req.stageName).name("actionName", req.actionName);
  const revision = req.actionRevision;
  if (revision === undefined) c.add("actionRevision", "is required");
  else {
    c.text("actionRevision.revisionId", revision.revisionId, 1, 1500);
    c.text("actionRevision.revisionChangeId", revision.revisionChangeId, 1, 100);
  }
  c.throwIfAny();
  const stage = stageOf(declaration, req.stageName);
  if (!stage.actions.some((a) => a.name === req.actionName)) {
    throw new DomainError("ActionNotFoundException", `stage "${req.stageName}" has no action "${req.actionName}"`, [
      { field: "actionName", message: `action "${req.actionName}" does not exist` },
    ]);
  }
  const action = spec.stages[0]?.actions.find((a) => a.name === req.actionName);
  if (spec.stages[0]?.name !== req.stageName || action?.category !== "Source") {
    throw new DomainError("ValidationException", `"${req.actionName}" is not a source action of the first stage`, [
      { field: "actionName", message: `"${req.actionName}" is not a source action of the first stage (${spec.stages[0]?.name ?? ""})` },
    ]);
  }
  const { revisionId, revisionChangeId, created } = revision as NonNullable<typeof revision>;
  if (action.builtIn === "Git" && !COMMIT_ID_PATTERN.test(revisionId)) {
    throw new DomainError("ValidationException", "actionRevision.revisionId: must be a Git commit id", [
      { field: "actionRevision.revisionId", message: `must be a Git commit id (4-64 hex digits): "${req.actionName}" is a Git source` },
    ]);
  }
  return {
    type: "SourceChanged",
    executionId: newId(),
    actionName: req.actionName,
    revision: {
      actionName: req.actionName,
      revisionId,
      revisionSummary: revisionChangeId,
      created: created === undefined ? now : Number(created.seconds) * 1000 + Math.floor(created.nanos / 1e6),
    },
    trigger: { triggerType: "PutActionRevision", triggerDetail: by },
    // The caller waits for the answer: a pipeline without room is an error it hears about.
    limitIsError: true,
  };
}

/** The named stage of a declaration, or StageNotFoundException naming `stageName`. */
function stageOf(declaration: PipelineDeclaration, stageName: string): PipelineDeclaration["stages"][number] {
  const stage = declaration.stages.find((s) => s.name === stageName);
  if (stage === undefined) {
    throw new DomainError("StageNotFoundException", `pipeline "${declaration.name}" has no stage "${stageName}"`, [
      { field: "stageName", message: `stage "${stageName}" does not exist` },
    ]);
  }
  return stage;
}
