import { fromBinary } from "@bufbuild/protobuf";
import type { Bus } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import { CancelJobSchema } from "@sluice/proto";

/**
 * Job cancellation on the runner. The orchestrator publishes a `CancelJob` on the core NATS
 * subject `sluice.control.cancel` when an action is abandoned (StopPipelineExecution with
 * abandon) or times out; every runner receives it. The runner that runs the job aborts it (the
 * job's process group is killed, the git process or the upload stopped) and reports a Failed
 * result with `JobCancelled`; every other runner remembers the id for a while, because the
 * cancel may overtake the job itself (still queued, or in flight to a runner).
 *
 * The memory is in-process only, and that is enough: by the time a CancelJob is sent the
 * orchestrator has already marked the action Abandoned or Failed and ignores any later result
 * of that attempt, so a cancel that is forgotten (runner restart, more than `maxRecent` cancels,
 * older than `recentTtlMs`) costs only the work of running a job nobody waits for — and the
 * job's stored deadline still ends it. Durable storage would buy nothing the deadline does not.
 */

/** Options of {@link createCancellations}. */
export interface CancellationsOptions {
  /** Most recently cancelled job ids remembered for jobs that have not arrived yet (default 1000). */
  readonly maxRecent?: number;
  /** How long such an id is remembered (default 10 minutes). */
  readonly recentTtlMs?: number;
  /** Clock; tests may pin it. */
  readonly now?: () => number;
}

/** A job registered as running; `signal` aborts (reason: a {@link JobCancelledReason}) when it is cancelled. */
export interface RunningJob {
  readonly signal: AbortSignal;
  /** Unregisters the job; call when it finished, whatever the outcome. */
  end(): void;
}

/** The abort reason of a cancelled job's signal. */
export class JobCancelledReason extends Error {
  override readonly name = "JobCancelledReason";
  constructor(
    readonly jobId: string,
    readonly reason: string,
  ) {
    super(reason === "" ? `job ${jobId} was cancelled` : reason);
  }
}

/** What became of a cancel request. */
export type CancelOutcome = "aborted" | "remembered";

/** Running jobs by id, and the ids cancelled recently. */
export interface Cancellations {
  /**
   * Registers a job that is about to run. When the job was cancelled before it arrived, the
   * returned signal is already aborted.
   */
  begin(jobId: string): RunningJob;
  /** Aborts the job when it runs here, else remembers the id for a job that may still arrive. */
  cancel(jobId: string, reason: string): CancelOutcome;
  /** Jobs running now (for tests and logs). */
  readonly running: number;
}

/** Creates the registry. */
export function createCancellations(opts: CancellationsOptions = {}): Cancellations {
  const maxRecent = opts.maxRecent ?? 1000;
  const ttlMs = opts.recentTtlMs ?? 10 * 60_000;
  const now = opts.now ?? Date.now;
  // A job id may be delivered twice at once only if its lease ran out; each delivery gets its own controller.
  const running = new Map<string, Set<AbortController>>();
  // Insertion order = cancel order, so the oldest entries are first to go.
  const recent = new Map<string, { reason: string; at: number }>();

  const prune = (): void => {
    const cutoff = now() - ttlMs;
    for (const [id, entry] of recent) {
      if (recent.size <= maxRecent && entry.at > cutoff) break;
      recent.delete(id);
    }
  };

  return {
    begin(jobId) {
      const controller = new AbortController();
      prune();
      const early = recent.get(jobId);
      if (early !== undefined) controller.abort(new JobCancelledReason(jobId, early.reason));
      let set = running.get(jobId);
      if (set === undefined) {
        set = new Set();
        running.set(jobId, set);
      }
      set.add(controller);
      return {
        signal: controller.signal,
        end() {
          const current = running.get(jobId);
          current?.delete(controller);
          if (current?.size === 0) running.delete(jobId);
        },
      };
    },

    cancel(jobId, reason) {
      const controllers = running.get(jobId);
      if (controllers !== undefined && controllers.size > 0) {
        for (const c of controllers) c.abort(new JobCancelledReason(jobId, reason));
        return "aborted";
      }
      // Re-inserted so a repeated cancel counts as recent again.
      recent.delete(jobId);
      recent.set(jobId, { reason, at: now() });
      prune();
      return "remembered";
    },

    get running() {
      let n = 0;
      for (const set of running.values()) n += set.size;
      return n;
    },
  };
}

/** Longest cancel reason kept; the rest is cut (it ends up in a JobResult's error message). */
const MAX_REASON_CHARS = 1000;

/**
 * Subscribes to `<prefix.>sluice.control.cancel` (core NATS) and feeds every CancelJob into
 * `cancellations`. A message that does not decode or names no job is logged and dropped: a
 * bad control message must never take the runner down. Returns the unsubscribe function.
 */
export function subscribeCancellations(bus: Bus, cancellations: Cancellations, logger: Logger): { stop(): void } {
  const subject = bus.subjects.controlSubject("cancel");
  const sub = bus.nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err !== null) {
        logger.warn("cancel subscription error", { subject, err: err.message });
        return;
      }
      try {
        const cancel = fromBinary(CancelJobSchema, msg.data);
        if (cancel.jobId === "") {
          logger.warn("CancelJob without jobId dropped", { subject, actionExecutionId: cancel.actionExecutionId });
          return;
        }
        const reason = cancel.reason.length > MAX_REASON_CHARS ? `${cancel.reason.slice(0, MAX_REASON_CHARS - 1)}…` : cancel.reason;
        const outcome = cancellations.cancel(cancel.jobId, reason);
        const fields = { jobId: cancel.jobId, pipeline: cancel.pipelineName, reason };
        if (outcome === "aborted") logger.info("job cancelled", fields);
        else logger.debug("cancel remembered for a job not running here", fields);
      } catch (decodeErr) {
        logger.warn("undecodable CancelJob dropped", {
          subject,
          bytes: msg.data.length,
          err: decodeErr instanceof Error ? decodeErr.message : String(decodeErr),
        });
      }
    },
  });
  return {
    stop() {
      sub.unsubscribe();
    },
  };
}
