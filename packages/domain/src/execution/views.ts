// Read views: the runtime shaped as AWS's GetPipelineState, GetPipelineExecution
// and ListPipelineExecutions responses (protobuf-es init objects), and the
// pieces the API's per-execution view (WatchPipelineExecution) shapes the same way.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type {
  ActionStateSchema,
  ArtifactRevisionSchema,
  GetPipelineStateResponseSchema,
  PipelineExecutionSchema,
  PipelineExecutionSummarySchema,
  StageConditionStateSchema,
  StageStateSchema,
  TransitionStateSchema,
} from "@sluice/proto";
import { findExecution, waitersOf } from "./draft.js";
import { stripUserinfo } from "./secrets.js";
import type {
  ActionAttempt,
  ActionLatest,
  ActionSlot,
  ActionSpec,
  ActionStatus,
  ArtifactRef,
  ConditionRun,
  ErrorDetailsSpec,
  ExecutionRuntime,
  PipelineRuntime,
  PipelineSpec,
  TransitionStateSpec,
} from "./types.js";

type ActionStateInit = MessageInitShape<typeof ActionStateSchema>;
type StageStateInit = MessageInitShape<typeof StageStateSchema>;

/** Pipeline metadata times (epoch ms), kept by the shell. */
export interface PipelineTimes {
  created: number;
  updated: number;
  /** The time of the answer: queued jobs' ages count to it. @default `updated` */
  now?: number;
}

/**
 * GetPipelineState: every declared stage and action of the current version,
 * with the latest stage and action executions, the approval token of an open
 * approval, the waiters in front of each stage (`inboundExecutions` in the
 * order they will enter; `inboundExecution` the first), the inbound
 * transition, the retries of each stage's latest execution and its latest
 * check of each condition kind (before entry, on success, on failure).
 */
export function pipelineStateView(state: PipelineRuntime, meta: PipelineTimes): MessageInitShape<typeof GetPipelineStateResponseSchema> {
  const stageStates = state.spec.stages.map((stage): StageStateInit => {
    const slot = state.stages.find((s) => s.name === stage.name);
    const view: StageStateInit = {
      stageName: stage.name,
      inboundTransitionState: transitionStateView(slot?.transition),
      actionStates: stage.actions.map((action) => actionStateView(action.name, slot?.actions.find((a) => a.name === action.name), meta.now ?? meta.updated)),
    };
    const waiters = slot === undefined ? [] : waitersOf(slot);
    if (waiters.length > 0) {
      const inbound = waiters.map((id) => ({ pipelineExecutionId: id, status: "InProgress", type: state.executions[id]?.executionType ?? "STANDARD" }));
      view.inboundExecutions = inbound;
      view.inboundExecution = inbound[0];
    }
    if (slot?.latest !== undefined) {
      const type = findExecution(state, slot.latest.pipelineExecutionId)?.executionType ?? "STANDARD";
      view.latestExecution = { pipelineExecutionId: slot.latest.pipelineExecutionId, status: slot.latest.status, type };
    }
    if (slot?.retryStageMetadata !== undefined) {
      const meta = slot.retryStageMetadata;
      view.retryStageMetadata = {
        autoStageRetryAttempt: meta.autoStageRetryAttempt,
        manualStageRetryAttempt: meta.manualStageRetryAttempt,
        latestRetryTrigger: meta.latestRetryTrigger ?? "",
      };
    }
    Object.assign(view, conditionStateFields(slot?.conditions ?? []));
    return view;
  });
  return {
    pipelineName: state.pipelineName,
    pipelineVersion: state.spec.version,
    stageStates,
    created: timestampFromMs(meta.created),
    updated: timestampFromMs(meta.updated),
  };
}

/** AWS TransitionState of a stage's inbound transition: enabled until someone changes it. */
export function transitionStateView(transition: TransitionStateSpec | undefined): MessageInitShape<typeof TransitionStateSchema> {
  if (transition === undefined) return { enabled: true };
  return {
    enabled: transition.enabled,
    lastChangedBy: transition.lastChangedBy,
    lastChangedAt: timestampFromMs(transition.lastChangedAt),
    disabledReason: transition.disabledReason ?? "",
  };
}

/** The StageState fields of the latest check of each condition kind (later checks replace earlier ones). */
export function conditionStateFields(
  conditions: readonly ConditionRun[],
): Pick<StageStateInit, "beforeEntryConditionState" | "onSuccessConditionState" | "onFailureConditionState"> {
  const fields: Pick<StageStateInit, "beforeEntryConditionState" | "onSuccessConditionState" | "onFailureConditionState"> = {};
  for (const cond of conditions) {
    const state = conditionStateView(cond);
    if (cond.conditionType === "BEFORE_ENTRY") fields.beforeEntryConditionState = state;
    else if (cond.conditionType === "ON_SUCCESS") fields.onSuccessConditionState = state;
    else fields.onFailureConditionState = state;
  }
  return fields;
}

/**
 * AWS StageConditionState of one check: the check's status at both levels
 * (a stage has one condition per kind) and each rule's latest run.
 */
export function conditionStateView(cond: ConditionRun): MessageInitShape<typeof StageConditionStateSchema> {
  const summary = cond.summary ?? "";
  return {
    latestExecution: { status: cond.status, summary },
    conditionStates: [
      {
        latestExecution: { status: cond.status, summary, lastStatusChange: timestampFromMs(cond.lastUpdateTime) },
        ruleStates: cond.rules.map((rule) => ({
          ruleName: rule.name,
          latestExecution: {
            ruleExecutionId: rule.ruleExecutionId,
            status: rule.status,
            summary: rule.summary ?? "",
            lastStatusChange: timestampFromMs(rule.lastUpdateTime),
            lastUpdatedBy: rule.updatedBy ?? "",
            externalExecutionId: rule.externalExecutionId ?? "",
            externalExecutionUrl: rule.externalExecutionUrl ?? "",
            ...(rule.errorDetails !== undefined ? { errorDetails: { ...rule.errorDetails } } : {}),
          },
        })),
      },
    ],
  };
}

function actionStateView(actionName: string, slot: ActionSlot | undefined, now: number): ActionStateInit {
  const view: ActionStateInit = { actionName };
  if (slot?.currentRevision !== undefined) {
    const rev = slot.currentRevision;
    view.currentRevision = {
      revisionId: rev.revisionId,
      revisionChangeId: rev.revisionChangeId ?? "",
      ...(rev.created !== undefined ? { created: timestampFromMs(rev.created) } : {}),
    };
  }
  if (slot?.latest !== undefined) {
    const latest = actionExecutionView(slot.latest, slot.latest.lastStatusChange);
    const { queuedPool, queuedSince, startedAt } = slot.latest;
    if (latest.status === "InProgress" && queuedPool !== undefined && queuedSince !== undefined) {
      latest.queued = { pool: queuedPool, since: timestampFromMs(queuedSince), ageSeconds: BigInt(Math.max(0, Math.floor((now - queuedSince) / 1000))) };
      if (latest.summary === "") latest.summary = queuedSummary(queuedPool, queuedSince);
    }
    if (startedAt !== undefined) latest.startedAt = timestampFromMs(startedAt);
    view.latestExecution = latest;
  }
  return view;
}

/** The summary of an action whose job no runner has started yet. */
export function queuedSummary(pool: string, since: number): string {
  return `Queued since ${new Date(since).toISOString()} in runner pool ${pool}: no runner of the pool has started the job yet`;
}

/** What AWS ActionExecution shows of an action's latest attempt (a slot's latest, or one execution's run). */
export type ActionExecutionFields = Pick<
  ActionLatest,
  "actionExecutionId" | "status" | "summary" | "token" | "updatedBy" | "externalExecutionId" | "externalExecutionUrl" | "errorDetails" | "percentComplete"
>;

/** AWS ActionExecution of an action's latest attempt, whose status last changed at `lastStatusChange` (epoch ms). */
export function actionExecutionView(latest: ActionExecutionFields, lastStatusChange: number): NonNullable<ActionStateInit["latestExecution"]> {
  return {
    actionExecutionId: latest.actionExecutionId,
    status: latest.status,
    summary: latest.summary ?? "",
    lastStatusChange: timestampFromMs(lastStatusChange),
    // What an approver answers with, only while the approval is open: a decided token is history.
    token: latest.status === "InProgress" ? (latest.token ?? "") : "",
    lastUpdatedBy: latest.updatedBy ?? "",
    externalExecutionId: latest.externalExecutionId ?? "",
    externalExecutionUrl: latest.externalExecutionUrl ?? "",
    ...(latest.errorDetails !== undefined ? { errorDetails: { ...latest.errorDetails } } : {}),
    ...(latest.percentComplete !== undefined ? { percentComplete: latest.percentComplete } : {}),
  };
}

/**
 * GetPipelineExecution: status, trigger, the source artifacts' revisions, the
 * resolved pipeline variables and the stop trigger. `executionMode` is used
 * for executions stored before they recorded their own mode.
 */
export function executionView(
  exec: ExecutionRuntime,
  pipelineName: string,
  executionMode = "SUPERSEDED",
): MessageInitShape<typeof PipelineExecutionSchema> {
  const artifactRevisions = exec.artifacts
    .filter((a) => a.revisionId !== undefined)
    .map(
      (a): MessageInitShape<typeof ArtifactRevisionSchema> => ({
        name: a.name,
        revisionId: a.revisionId ?? "",
        revisionSummary: a.revisionSummary ?? "",
        revisionUrl: a.revisionUrl ?? "",
        ...(a.created !== undefined ? { created: timestampFromMs(a.created) } : {}),
      }),
    );
  const view: MessageInitShape<typeof PipelineExecutionSchema> = {
    pipelineName,
    pipelineVersion: exec.pipelineVersion,
    pipelineExecutionId: exec.id,
    status: exec.status,
    statusSummary: exec.statusSummary ?? "",
    artifactRevisions,
    trigger: { ...exec.trigger, triggerDetail: stripUserinfo(exec.trigger.triggerDetail) },
    executionMode: exec.executionMode ?? executionMode,
    executionType: exec.executionType ?? "STANDARD",
    variables: (exec.pipelineVariables ?? []).map((v) => ({ name: v.name, resolvedValue: v.resolvedValue })),
  };
  if (exec.stopTrigger !== undefined) view.stopTrigger = { reason: exec.stopTrigger.reason };
  if (exec.rollbackMetadata !== undefined) view.rollbackMetadata = { ...exec.rollbackMetadata };
  return view;
}

/** ListPipelineExecutions entry: times, one source revision per source action, the stop trigger. */
export function executionSummaryView(
  exec: ExecutionRuntime,
  executionMode = "SUPERSEDED",
): MessageInitShape<typeof PipelineExecutionSummarySchema> {
  const view: MessageInitShape<typeof PipelineExecutionSummarySchema> = {
    pipelineExecutionId: exec.id,
    status: exec.status,
    statusSummary: exec.statusSummary ?? "",
    startTime: timestampFromMs(exec.startTime),
    lastUpdateTime: timestampFromMs(exec.lastUpdateTime),
    sourceRevisions: exec.sourceRevisions.map((r) => ({
      actionName: r.actionName,
      revisionId: r.revisionId,
      revisionSummary: r.revisionSummary ?? "",
      revisionUrl: r.revisionUrl ?? "",
    })),
    trigger: { ...exec.trigger, triggerDetail: stripUserinfo(exec.trigger.triggerDetail) },
    executionMode: exec.executionMode ?? executionMode,
    executionType: exec.executionType ?? "STANDARD",
  };
  if (exec.stopTrigger !== undefined) view.stopTrigger = { reason: exec.stopTrigger.reason };
  if (exec.rollbackMetadata !== undefined) view.rollbackMetadata = { ...exec.rollbackMetadata };
  return view;
}

// ---------------------------------------------------------------- ListActionExecutions

/** An artifact and where it is stored (AWS ArtifactDetail). */
export interface ArtifactDetailSpec {
  name: string;
  s3location: { bucket: string; key: string };
}

/** One attempt of one action of one execution (AWS ActionExecutionDetail), as plain data; times epoch ms. */
export interface ActionExecutionDetailSpec {
  pipelineExecutionId: string;
  actionExecutionId: string;
  pipelineVersion: number;
  stageName: string;
  actionName: string;
  /** 1 for the first run, +1 per retry. */
  attempt: number;
  startTime: number;
  lastUpdateTime: number;
  updatedBy?: string;
  status: ActionStatus;
  input: {
    /** Absent when the pipeline version is unknown to `specOf`. */
    actionTypeId?: { category: string; owner: string; provider: string; version: string };
    configuration: Record<string, string>;
    resolvedConfiguration: Record<string, string>;
    inputArtifacts: ArtifactDetailSpec[];
    namespace?: string;
  };
  output: {
    outputArtifacts: ArtifactDetailSpec[];
    executionResult: {
      externalExecutionId?: string;
      externalExecutionSummary?: string;
      externalExecutionUrl?: string;
      errorDetails?: ErrorDetailsSpec;
    };
    outputVariables: Record<string, string>;
  };
}

/**
 * ListActionExecutions' entries for `executions`: every attempt of every
 * action (earlier attempts of retried actions included), newest first (start
 * time, then action execution id, descending). `specOf` gives the spec of a
 * pipeline version, for the declared type, configuration and namespace.
 */
export function actionExecutionDetails(
  executions: readonly ExecutionRuntime[],
  specOf: (version: number) => PipelineSpec | undefined,
): ActionExecutionDetailSpec[] {
  const out: ActionExecutionDetailSpec[] = [];
  for (const exec of executions) {
    for (const stage of exec.stages) {
      for (const run of stage.actions) {
        for (const attempt of [...(run.attempts ?? []), run]) {
          const version = attempt.pipelineVersion ?? exec.pipelineVersion;
          const action = specOf(version)?.stages.find((s) => s.name === stage.name)?.actions.find((a) => a.name === run.name);
          out.push(attemptDetail(exec, stage.name, run.name, attempt, version, action));
        }
      }
    }
  }
  return out.sort(newestFirst);
}

/** ListActionExecutions' order: start time descending, then action execution id descending. */
export function newestFirst(a: { startTime: number; actionExecutionId: string }, b: { startTime: number; actionExecutionId: string }): number {
  if (a.startTime !== b.startTime) return b.startTime - a.startTime;
  return a.actionExecutionId < b.actionExecutionId ? 1 : a.actionExecutionId > b.actionExecutionId ? -1 : 0;
}

function attemptDetail(
  exec: ExecutionRuntime,
  stageName: string,
  actionName: string,
  a: ActionAttempt,
  version: number,
  action: ActionSpec | undefined,
): ActionExecutionDetailSpec {
  const artifact = (ref: ArtifactRef): ArtifactDetailSpec => ({ name: ref.name, s3location: { bucket: ref.bucket, key: ref.key } });
  const inputs = a.inputArtifactIds.flatMap((id) => {
    const ref = exec.artifacts.find((r) => r.artifactId === id);
    return ref === undefined ? [] : [artifact(ref)];
  });
  const result: ActionExecutionDetailSpec["output"]["executionResult"] = {};
  if (a.externalExecutionId !== undefined) result.externalExecutionId = a.externalExecutionId;
  if (a.summary !== undefined) result.externalExecutionSummary = a.summary;
  if (a.externalExecutionUrl !== undefined) result.externalExecutionUrl = a.externalExecutionUrl;
  if (a.errorDetails !== undefined) result.errorDetails = { ...a.errorDetails };
  const detail: ActionExecutionDetailSpec = {
    pipelineExecutionId: exec.id,
    actionExecutionId: a.actionExecutionId,
    pipelineVersion: version,
    stageName,
    actionName,
    attempt: a.attempt,
    startTime: a.startTime,
    lastUpdateTime: a.lastUpdateTime,
    status: a.status,
    input: {
      configuration: { ...(action?.configuration ?? {}) },
      resolvedConfiguration: { ...(a.resolvedConfiguration ?? {}) },
      inputArtifacts: inputs,
    },
    output: {
      outputArtifacts: exec.artifacts.filter((r) => r.artifactId.startsWith(`${a.actionExecutionId}/`)).map(artifact),
      executionResult: result,
      outputVariables: { ...(a.outputVariables ?? {}) },
    },
  };
  if (a.updatedBy !== undefined) detail.updatedBy = a.updatedBy;
  if (action !== undefined) {
    detail.input.actionTypeId = { category: action.category, owner: action.owner, provider: action.provider, version: action.providerVersion };
    if (action.namespace !== undefined) detail.input.namespace = action.namespace;
  }
  return detail;
}
