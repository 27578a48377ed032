import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { GetPipelineStateResponse, PipelineExecution } from "@sluice/proto";

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
};

/** A stage-by-stage, action-by-action text view of GetPipelineState. */
export function renderPipelineState(state: GetPipelineStateResponse): string {
  const lines = [`Pipeline ${state.pipelineName} (version ${state.pipelineVersion})`];
  for (const stage of state.stageStates) {
    const latest = stage.latestExecution;
    const status = latest ? `${MARK[latest.status] ?? " "} ${latest.status}` : "  -";
    const exec = latest ? `  execution ${latest.pipelineExecutionId.slice(0, 8)}` : "";
    const waiting = stage.inboundExecution ? `  (waiting: ${stage.inboundExecution.pipelineExecutionId.slice(0, 8)})` : "";
    lines.push(`  ${stage.stageName.padEnd(16)} ${status.padEnd(14)}${exec}${waiting}`);
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
  return lines.join("\n");
}

export function renderExecution(e: PipelineExecution): string {
  const lines = [
    `Execution ${e.pipelineExecutionId} of ${e.pipelineName} (version ${e.pipelineVersion}): ${e.status}`,
  ];
  if (e.statusSummary) lines.push(`  ${e.statusSummary}`);
  if (e.trigger) lines.push(`  trigger: ${e.trigger.triggerType} ${e.trigger.triggerDetail}`);
  for (const r of e.artifactRevisions) {
    const created = r.created ? timestampDate(r.created).toISOString() : "";
    lines.push(`  artifact ${r.name}: ${r.revisionId} ${r.revisionSummary.split("\n")[0] ?? ""} ${created}`.trimEnd());
  }
  return lines.join("\n");
}
