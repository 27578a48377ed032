import type { JobResult } from "@sluice/proto";

/**
 * What a runner knows about the job ids it holds, so that a job id is never run twice here and
 * a job whose lease may have passed to another runner does not report a result.
 *
 * - **Running**: a delivery of a job id that already runs here (its message redelivered because
 *   a heartbeat did not reach the server in time, or the same job published twice) is not started
 *   again. It joins the running job: its own `working()` is heartbeated from then on, so this
 *   runner keeps the newest lease too, and it is acked with the job's result. Naking it instead
 *   would only bounce it to another runner that would run the job a second time.
 * - **Finished**: a delivery of a job id that finished here recently gets the stored result
 *   republished (JetStream drops it as a duplicate by `Nats-Msg-Id` inside the dedupe window) and
 *   is acked, without running the job again.
 * - **Deliveries**: the runner reports each delivery it starts or joins to the orchestrator (a
 *   "started" report), and the result names the highest one it holds. The orchestrator refuses
 *   a result of a lower delivery than the highest started one (a stale attempt; see the domain's
 *   fencing.ts): the backstop for a runner that does not notice it lost the lease (paused right
 *   before it published).
 * - **Lease lost**: every heartbeat is `working()` followed by a flush (a PING/PONG round trip),
 *   so the runner knows when the server last heard from it. If no heartbeat was confirmed for
 *   nine tenths of the ack wait, the server may already have handed the job to another runner:
 *   the job is aborted, its result is not published, and the delivery is handed back (nak). A nak
 *   can at worst cause one more delivery of a job someone else is running; an ack could drop the
 *   job for good if nobody else had it.
 */

/** One job running here. */
export interface HeldJob {
  /**
   * Adds delivery `delivery`'s `working()` to the heartbeat; returns the function that removes
   * it. The job's result then names the highest delivery attached (the newest lease).
   */
  attach(delivery: number, working: () => void): () => void;
  /** The highest JetStream delivery of the job this runner holds: the result names it. */
  readonly delivery: number;
  /** Settles when the job has a result (undefined: it was interrupted or its lease lost). */
  readonly done: Promise<JobResult | undefined>;
}

/** Options of {@link createJobLeases}. */
export interface JobLeasesOptions {
  /** Recently finished job ids remembered (default 1000). */
  readonly maxFinished?: number;
  /** How long a finished job's result is remembered (default 10 minutes). */
  readonly finishedTtlMs?: number;
  readonly now?: () => number;
}

/** The registry of job ids held by this runner. */
export interface JobLeases {
  /** The running job of that id, if any. */
  running(jobId: string): HeldJob | undefined;
  /** The result of a job of that id finished here recently, if any. */
  finished(jobId: string): JobResult | undefined;
  /**
   * Registers a job that starts now. `settle` must be called exactly once when it ends:
   * with its result (remembered as finished) or undefined.
   */
  begin(jobId: string, delivery: number, working: () => void): { heartbeat(): void; settle(result: JobResult | undefined): void; held: HeldJob };
}

/** Creates the registry. */
export function createJobLeases(opts: JobLeasesOptions = {}): JobLeases {
  const maxFinished = opts.maxFinished ?? 1000;
  const ttlMs = opts.finishedTtlMs ?? 10 * 60_000;
  const now = opts.now ?? Date.now;
  const running = new Map<string, HeldJob>();
  const finished = new Map<string, { result: JobResult; at: number }>();

  const prune = (): void => {
    const cutoff = now() - ttlMs;
    for (const [id, entry] of finished) {
      if (finished.size <= maxFinished && entry.at > cutoff) break;
      finished.delete(id);
    }
  };

  return {
    running: (jobId) => running.get(jobId),
    finished(jobId) {
      prune();
      return finished.get(jobId)?.result;
    },
    begin(jobId, delivery, working) {
      const heartbeats = new Set<() => void>([working]);
      let highest = delivery;
      let resolveDone!: (result: JobResult | undefined) => void;
      const done = new Promise<JobResult | undefined>((resolve) => (resolveDone = resolve));
      const held: HeldJob = {
        attach(d, w) {
          highest = Math.max(highest, d);
          heartbeats.add(w);
          return () => heartbeats.delete(w);
        },
        get delivery() {
          return highest;
        },
        done,
      };
      running.set(jobId, held);
      return {
        held,
        heartbeat() {
          for (const w of heartbeats) w();
        },
        settle(result) {
          if (running.get(jobId) === held) running.delete(jobId);
          if (result !== undefined) {
            finished.delete(jobId);
            finished.set(jobId, { result, at: now() });
            prune();
          }
          resolveDone(result);
        },
      };
    },
  };
}

/** Thrown by the job handler when the job's lease may have passed to another runner. */
export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
  constructor(
    readonly jobId: string,
    silentMs: number,
  ) {
    super(`job ${jobId}: no heartbeat reached the server for ${silentMs} ms, so the lease may be another runner's; the job was aborted and its result not published`);
  }
}
