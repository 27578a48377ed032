import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { GetPipelineStateResponse, PipelineExecution, PipelineExecutionSnapshot, StageState, StateChangeEvent } from "@sluice/proto";

const MARK: Record<string, string> = {
  Succeeded: "✔",
  Failed: "✘",
  InProgress: "…",
  Stopped: "■",
  Stopping: "■",
  Superseded: "↷",
  Cancelled: "⊘",
  Abandoned: "⊘",
  Skipped: "↷",
  Errored: "✘",
  Overridden: "⤼",
};

/** Names of the condition kinds in stage views. */
const CONDITION_KINDS = [
  ["beforeEntryConditionState", "before entry"],
  ["onSuccessConditionState", "on success"],
  ["onFailureConditionState", "on failure"],
] as const;

/** A stage-by-stage, action-by-action text view of GetPipelineState. */
export function renderPipelineState(state: GetPipelineStateResponse): string {
  return [`Pipeline ${state.pipelineName} (version ${state.pipelineVersion})`, ...stageLines(state.stageStates, true)].join("\n");
}

/** WatchPipelineExecution's snapshot: the execution's status line, then its stages and actions. */
export function renderSnapshot(snapshot: PipelineExecutionSnapshot): string {
  const e = snapshot.pipelineExecution;
  const head = e
    ? `Execution ${e.pipelineExecutionId} of ${e.pipelineName} (version ${e.pipelineVersion}): ${MARK[e.status] ?? " "} ${e.status}`
    : "Execution (unknown)";
  const lines = [head];
  if (e?.statusSummary) lines.push(`  ${e.statusSummary.split("\n")[0] ?? ""}`);
  if (e?.stopTrigger?.reason) lines.push(`  stop reason: ${e.stopTrigger.reason}`);
  lines.push(...stageLines(snapshot.stageStates, false));
  return lines.join("\n");
}

/** One line for a state-change event: time, what changed, and its new state. */
export function renderEvent(event: StateChangeEvent): string {
  const time = event.time ? timestampDate(event.time).toISOString().slice(11, 19) : "--:--:--";
  const where = event.action ? `action ${event.stage}/${event.action}` : event.stage ? `stage ${event.stage}` : "pipeline";
  const error = event.executionResult?.errorCode ? ` (${event.executionResult.errorCode})` : "";
  const comments = event.stopExecutionComments ? `: ${event.stopExecutionComments}` : "";
  return `[${time}] ${where} ${event.state}${error}${comments}`;
}

function stageLines(stageStates: readonly StageState[], showExecution: boolean): string[] {
  const lines: string[] = [];
  for (const stage of stageStates) {
    const latest = stage.latestExecution;
    const status = latest ? `${MARK[latest.status] ?? " "} ${latest.status}` : "  -";
    const exec = latest && showExecution ? `  execution ${latest.pipelineExecutionId.slice(0, 8)}` : "";
    const inbound = stage.inboundExecutions.length > 0 ? stage.inboundExecutions : stage.inboundExecution ? [stage.inboundExecution] : [];
    const waiting = inbound.length > 0 ? `  (waiting: ${inbound.map((w) => w.pipelineExecutionId.slice(0, 8)).join(", ")})` : "";
    const transition = stage.inboundTransitionState && !stage.inboundTransitionState.enabled ? `  [transition disabled: ${stage.inboundTransitionState.disabledReason}]` : "";
    const retries = stage.retryStageMetadata && stage.retryStageMetadata.manualStageRetryAttempt + stage.retryStageMetadata.autoStageRetryAttempt > 0
      ? `  (retried ${stage.retryStageMetadata.manualStageRetryAttempt + stage.retryStageMetadata.autoStageRetryAttempt}x)`
      : "";
    lines.push(`  ${stage.stageName.padEnd(16)} ${status.padEnd(14)}${exec}${waiting}${transition}${retries}`);
    for (const [field, label] of CONDITION_KINDS) {
      const check = stage[field];
      const run = check?.latestExecution;
      if (run === undefined) continue;
      const rules = (check?.conditionStates[0]?.ruleStates ?? []).map((r) => `${r.ruleName} ${MARK[r.latestExecution?.status ?? ""] ?? "?"}`).join(", ");
      lines.push(`    (condition ${label}: ${MARK[run.status] ?? " "} ${run.status}${rules === "" ? "" : ` — ${rules}`})`);
    }
    for (const action of stage.actionStates) {
      const e = action.latestExecution;
      const parts = [`    ${action.actionName.padEnd(16)}`, e ? `${MARK[e.status] ?? " "} ${e.status}`.padEnd(14) : "  -".padEnd(14)];
      if (action.currentRevision?.revisionId) parts.push(`revision ${action.currentRevision.revisionId.slice(0, 10)}`);
      if (e?.summary) parts.push(e.summary.split("\n")[0]?.slice(0, 80) ?? "");
      if (e?.errorDetails?.message) parts.push(`error: ${e.errorDetails.message.split("\n")[0]?.slice(0, 120) ?? ""}`);
      if (e?.token && e.status === "InProgress") parts.push(`token ${e.token}`);
      lines.push(parts.join(" "));
    }
  }
  return lines;
}

export function renderExecution(e: PipelineExecution): string {
  const lines = [
    `Execution ${e.pipelineExecutionId} of ${e.pipelineName} (version ${e.pipelineVersion}): ${e.status}`,
  ];
  if (e.statusSummary) lines.push(`  ${e.statusSummary}`);
  if (e.trigger) lines.push(`  trigger: ${e.trigger.triggerType} ${e.trigger.triggerDetail}`);
  if (e.rollbackMetadata) lines.push(`  rollback to: ${e.rollbackMetadata.rollbackTargetPipelineExecutionId}`);
  if (e.stopTrigger?.reason) lines.push(`  stop reason: ${e.stopTrigger.reason}`);
  for (const v of e.variables) lines.push(`  variable ${v.name} = ${v.resolvedValue}`);
  for (const r of e.artifactRevisions) {
    const created = r.created ? timestampDate(r.created).toISOString() : "";
    lines.push(`  artifact ${r.name}: ${r.revisionId} ${r.revisionSummary.split("\n")[0] ?? ""} ${created}`.trimEnd());
  }
  return lines.join("\n");
}
