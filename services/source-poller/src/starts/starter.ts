import { createHash } from "node:crypto";
import type { Client } from "@sluice/grpc";
import type { PipelineService } from "@sluice/proto";

/** A revision an event rule hands to a source action of the pipeline it starts. */
export interface Pin {
  actionName: string;
  commitId: string;
}

/** Starts executions for schedules and event rules. */
export interface Starter {
  /**
   * Starts `pipelineName` with trigger CloudWatchEvent. `key` names the occasion (a tick, an
   * upstream execution's end): it becomes the clientRequestToken, so however many replicas or
   * retries start the same occasion, the orchestrator starts one execution. Returns its id.
   */
  start: (pipelineName: string, key: string, triggerDetail: string, pins?: readonly Pin[]) => Promise<string>;
}

export function createStarter(orchestrator: Client<typeof PipelineService>): Starter {
  return {
    async start(pipelineName, key, triggerDetail, pins = []) {
      const res = await orchestrator.startPipelineExecution({
        name: pipelineName,
        clientRequestToken: requestToken(key),
        trigger: { triggerType: "CloudWatchEvent", triggerDetail },
        sourceRevisions: pins.map((p) => ({ actionName: p.actionName, revisionType: "COMMIT_ID", revisionValue: p.commitId })),
      });
      return res.pipelineExecutionId;
    },
  };
}

/** A clientRequestToken (1-128 of [a-zA-Z0-9-]) for an occasion. */
export function requestToken(key: string): string {
  return `start-${createHash("sha256").update(key).digest("hex").slice(0, 48)}`;
}
