import { isRpcError } from "@sluice/grpc";
import type { Logger } from "@sluice/domain";
import type { StartStore } from "./start-store.js";
import type { Starter } from "./starter.js";

/**
 * Starts every schedule that is due, once per tick. A schedule is started first and advanced
 * after, so a poller that dies in between leaves it due and the next round starts the same tick
 * again — under the same request token, so the orchestrator starts nothing twice. Ticks missed
 * while no poller ran are one due tick: one execution, then the next tick after now.
 */
export async function fireDueSchedules(store: StartStore, starter: Starter, logger: Logger, now: number): Promise<number> {
  let started = 0;
  for (const doc of await store.dueSchedules(now, 100)) {
    const log = logger.child({ pipeline: doc.pipelineName, schedule: doc.name });
    const tick = new Date(doc.nextRunAt).toISOString();
    try {
      const executionId = await starter.start(doc.pipelineName, `schedule:${doc._id}:${doc.nextRunAt}`, `schedule ${doc.name} (${doc.expression}${doc.timeZone === "" ? "" : ` ${doc.timeZone}`}) tick ${tick}`);
      if (await store.advanceSchedule(doc, now, { executionId })) {
        started++;
        log.info("scheduled execution started", { tick, executionId, missed: doc.nextRunAt < now - 60_000 });
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // The orchestrator is unreachable: the tick stays due and the next round tries again.
      if (!isRpcError(err) || !isRefusal(err)) {
        log.warn("scheduled start failed; retrying", { tick, error: message });
        continue;
      }
      if (err.errorCode === "PipelineNotFoundException") {
        // Deleted while its declaration event was lost: its schedules go with it.
        log.warn("scheduled pipeline no longer exists; its schedules are removed", { tick });
        await store.removePipeline(doc.pipelineName);
        continue;
      }
      // Refused for good (a full queue, a required variable): this tick is given up, visibly.
      log.warn("scheduled start refused; the tick is skipped", { tick, error: message });
      await store.advanceSchedule(doc, now, { error: message });
    }
  }
  return started;
}

/** An answer the same request would get again: not worth retrying this tick. */
function isRefusal(err: { errorCode?: string | undefined }): boolean {
  return ["PipelineNotFoundException", "ValidationException", "ConcurrentPipelineExecutionsLimitExceededException", "AccessDeniedException"].includes(err.errorCode ?? "");
}
