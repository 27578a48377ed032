// Read views: the runtime shaped as AWS's GetPipelineState, GetPipelineExecution
// and ListPipelineExecutions responses (protobuf-es init objects).

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type {
  ActionStateSchema,
  ArtifactRevisionSchema,
  GetPipelineStateResponseSchema,
  PipelineExecutionSchema,
  PipelineExecutionSummarySchema,
  StageStateSchema,
} from "@sluice/proto";
import type { ActionLatest, ActionSlot, ExecutionRuntime, PipelineRuntime } from "./types.js";

type ActionStateInit = MessageInitShape<typeof ActionStateSchema>;
type StageStateInit = MessageInitShape<typeof StageStateSchema>;

/** Pipeline metadata times (epoch ms), kept by the shell. */
export interface PipelineTimes {
  created: number;
  updated: number;
}

/**
 * GetPipelineState: every declared stage and action of the current version,
 * with the latest stage and action executions, the approval token of an open
 * approval, and the waiter in front of each stage as `inboundExecution`.
 */
export function pipelineStateView(state: PipelineRuntime, meta: PipelineTimes): MessageInitShape<typeof GetPipelineStateResponseSchema> {
  const stageStates = state.spec.stages.map((stage): StageStateInit => {
    const slot = state.stages.find((s) => s.name === stage.name);
    const view: StageStateInit = {
      stageName: stage.name,
      // Transitions cannot be disabled yet: every inbound transition is enabled.
      inboundTransitionState: { enabled: true },
      actionStates: stage.actions.map((action) => actionStateView(action.name, slot?.actions.find((a) => a.name === action.name))),
    };
    if (slot?.waiting !== undefined) {
      view.inboundExecution = { pipelineExecutionId: slot.waiting, status: "InProgress", type: "STANDARD" };
    }
    if (slot?.latest !== undefined) {
      view.latestExecution = { pipelineExecutionId: slot.latest.pipelineExecutionId, status: slot.latest.status, type: "STANDARD" };
    }
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

function actionStateView(actionName: string, slot: ActionSlot | undefined): ActionStateInit {
  const view: ActionStateInit = { actionName };
  if (slot?.currentRevision !== undefined) {
    const rev = slot.currentRevision;
    view.currentRevision = {
      revisionId: rev.revisionId,
      revisionChangeId: rev.revisionChangeId ?? "",
      ...(rev.created !== undefined ? { created: timestampFromMs(rev.created) } : {}),
    };
  }
  if (slot?.latest !== undefined) view.latestExecution = actionExecutionView(slot.latest);
  return view;
}

function actionExecutionView(latest: ActionLatest): NonNullable<ActionStateInit["latestExecution"]> {
  return {
    actionExecutionId: latest.actionExecutionId,
    status: latest.status,
    summary: latest.summary ?? "",
    lastStatusChange: timestampFromMs(latest.lastStatusChange),
    token: latest.token ?? "",
    lastUpdatedBy: latest.updatedBy ?? "",
    externalExecutionId: latest.externalExecutionId ?? "",
    externalExecutionUrl: latest.externalExecutionUrl ?? "",
    ...(latest.errorDetails !== undefined ? { errorDetails: { ...latest.errorDetails } } : {}),
  };
}

/** GetPipelineExecution: status, trigger and the source artifacts' revisions. */
export function executionView(
  exec: ExecutionRuntime,
  pipelineName: string,
  executionMode: string,
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
  return {
    pipelineName,
    pipelineVersion: exec.pipelineVersion,
    pipelineExecutionId: exec.id,
    status: exec.status,
    statusSummary: exec.statusSummary ?? "",
    artifactRevisions,
    trigger: { ...exec.trigger },
    executionMode,
    executionType: "STANDARD",
  };
}

/** ListPipelineExecutions entry: times and one source revision per source action. */
export function executionSummaryView(
  exec: ExecutionRuntime,
  executionMode = "SUPERSEDED",
): MessageInitShape<typeof PipelineExecutionSummarySchema> {
  return {
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
    trigger: { ...exec.trigger },
    executionMode,
    executionType: "STANDARD",
  };
}
