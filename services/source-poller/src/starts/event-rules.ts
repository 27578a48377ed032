import { isTransientError } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import type { Client } from "@sluice/grpc";
import type { PipelineService, StateChangeEvent } from "@sluice/proto";
import { normaliseRepositoryUrl } from "../webhooks/repository-url.js";
import { gitSourcesOfFirstStage } from "./start-store.js";
import type { RuleSource, StartStore } from "./start-store.js";
import type { Pin, Starter } from "./starter.js";

const PIPELINE_EVENT = "CodePipeline Pipeline Execution State Change";

/**
 * Starts the pipelines whose event rules watch the event's pipeline and state. Each started
 * pipeline's Git sources that read the same repository and branch as one of the upstream's run
 * the upstream execution's revision; its other sources run their latest. The request token is
 * the rule and the upstream execution's state change, so a redelivered event starts nothing
 * twice. An error is thrown (the event is redelivered) only when nothing could be decided.
 */
export async function applyEventRules(event: StateChangeEvent, store: StartStore, starter: Starter, orchestrator: Client<typeof PipelineService>, logger: Logger): Promise<number> {
  if (event.detailType !== PIPELINE_EVENT) return 0;
  const rules = await store.rulesWatching(event.pipeline, event.state);
  if (rules.length === 0) return 0;
  const upstream = await upstreamRevisions(orchestrator, event);
  let started = 0;
  for (const rule of rules) {
    const pins = pinsFor(rule.sources, upstream);
    const detail = `rule ${rule.name}: pipeline ${event.pipeline} execution ${event.executionId} ${event.state}`;
    const log = logger.child({ pipeline: rule.pipelineName, rule: rule.name, upstream: event.pipeline, upstreamExecutionId: event.executionId, state: event.state });
    let executionId: string;
    try {
      executionId = await starter.start(rule.pipelineName, `rule:${rule._id}:${event.executionId}:${event.state}`, detail, pins);
    } catch (err) {
      // Down or slow: the event is redelivered, and rules already applied start nothing again.
      if (isTransientError(err)) throw err;
      // Refused (the pipeline is gone, its queue is full): the other rules still apply.
      log.warn("event rule could not start its pipeline", { error: err instanceof Error ? err.message : String(err) });
      continue;
    }
    started++;
    log.info("event rule started an execution", { executionId, pinned: pins.map((p) => p.actionName) });
  }
  return started;
}

/** A Git source of the upstream with the commit its execution ran. */
interface UpstreamRevision extends RuleSource {
  commitId: string;
}

/** What the upstream execution's Git sources ran, from its own pipeline version. */
async function upstreamRevisions(orchestrator: Client<typeof PipelineService>, event: StateChangeEvent): Promise<UpstreamRevision[]> {
  const { pipelineExecution } = await orchestrator.getPipelineExecution({ pipelineName: event.pipeline, pipelineExecutionId: event.executionId });
  if (pipelineExecution === undefined) return [];
  const { pipeline } = await orchestrator.getPipeline({ name: event.pipeline, version: pipelineExecution.pipelineVersion });
  if (pipeline === undefined) return [];
  const revisionOf = new Map(pipelineExecution.artifactRevisions.map((r) => [r.name, r.revisionId]));
  const actions = new Map((pipeline.stages[0]?.actions ?? []).map((a) => [a.name, a]));
  const revisions: UpstreamRevision[] = [];
  for (const source of gitSourcesOfFirstStage(pipeline)) {
    const artifact = actions.get(source.actionName)?.outputArtifacts[0]?.name;
    const commitId = artifact === undefined ? undefined : revisionOf.get(artifact);
    if (commitId !== undefined && commitId !== "") revisions.push({ ...source, commitId });
  }
  return revisions;
}

/** The downstream sources that share a repository and branch with an upstream source, pinned to its commit. */
export function pinsFor(sources: readonly RuleSource[], upstream: readonly UpstreamRevision[]): Pin[] {
  const pins: Pin[] = [];
  for (const source of sources) {
    const same = upstream.find((u) => sameRepository(u.repositoryUrl, source.repositoryUrl) && u.branch === source.branch);
    if (same !== undefined) pins.push({ actionName: source.actionName, commitId: same.commitId });
  }
  return pins;
}

/** One repository however the URL is written (credentials, case of the host, trailing `/` or `.git`). */
function sameRepository(a: string, b: string): boolean {
  const key = normaliseRepositoryUrl(a);
  return key !== undefined && key === normaliseRepositoryUrl(b);
}
