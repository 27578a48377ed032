import { CUSTOM_JOBS_POOL, isTransientError } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { DomainError } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { JobSchema } from "@sluice/proto";
import type { JobStore } from "./job-store.js";

/** Durable consumer name of the custom jobs, shared by every replica. */
export const CUSTOM_JOBS_DURABLE = "orchestrator-custom-jobs";

/**
 * `sluice.jobs.custom.*.*.*`: every custom action type's jobs (see `Subjects.customJobSubject`).
 * Exactly their five tokens after `sluice`, not `custom.>`: on the work-queue stream filters of
 * different consumers must not overlap, and `custom.>` would overlap the approval service's
 * `sluice.jobs.*.Approval.Manual`.
 */
export function customJobsFilter(bus: Pick<Bus, "subjects">): string {
  return bus.subjects.streamFilter("jobs").replace(/>$/, `${CUSTOM_JOBS_POOL}.*.*.*`);
}

/**
 * `sluice.jobs.*.*.*`: every runner pool's jobs and none of the custom ones, for consumers that
 * take every pool's jobs (test taps, the benchmark) next to the orchestrator's custom consumer.
 */
export function runnerJobsFilter(bus: Pick<Bus, "subjects">): string {
  return bus.subjects.streamFilter("jobs").replace(/>$/, "*.*.*");
}

/**
 * Moves each custom action job from the jobs stream into the `jobs` collection, where polls can
 * filter on action type and configuration; acked once stored (a redelivery stores nothing
 * twice). A job without an id or action type is dead-lettered: the dead-letter consumer fails
 * its action.
 */
export function startJobIntake(bus: Bus, jobs: JobStore, logger: Logger, clock: () => number): Promise<Consumer> {
  return bus.consume({
    stream: bus.streams.jobs,
    durable: CUSTOM_JOBS_DURABLE,
    filterSubject: customJobsFilter(bus),
    schema: JobSchema,
    // An outage (MongoDB) retries until it passes: a job is never dropped for it.
    isTransient: isTransientError,
    handler: async (job) => {
      if (job.jobId === "" || job.actionTypeId === undefined) {
        throw new DomainError("ValidationException", "a custom job needs jobId and actionTypeId", [{ field: job.jobId === "" ? "jobId" : "actionTypeId", message: "is required" }]);
      }
      await jobs.insert(job, clock());
      logger.debug("custom job queued", { jobId: job.jobId, pipeline: job.pipelineName });
    },
  });
}
