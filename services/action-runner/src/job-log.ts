import { createHash } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Logger } from "@sluice/domain";
import type { Job, LogBatchSchema, LogLineSchema } from "@sluice/proto";

/**
 * One job's log: every line its providers write, masked, numbered and timestamped, published to
 * SLUICE_LOGS in small batches as it is written, and kept whole (up to a limit) so the job
 * runner can store it in the artifact store when the job ends.
 *
 * Batching: a line is sent at most `flushMs` after it was written (a slow printer's lines arrive
 * one by one), or at once when the pending lines reach `maxBatchBytes` (a fast printer's lines go
 * in few messages). Batches are published one after the other, so lines arrive in order. A
 * publish that fails is retried once, then its lines are dropped from the stream (the stored log
 * still has them): a job never fails because its live log could not be sent.
 */

export type LogStream = "stdout" | "stderr" | "system";

export type LogBatchInit = MessageInitShape<typeof LogBatchSchema>;
type LogLineInit = MessageInitShape<typeof LogLineSchema>;

/** Sends one batch to SLUICE_LOGS (the service binds it to the bus and the job's subject). */
export type LogPublisher = (batch: LogBatchInit, msgId: string) => Promise<void>;

/** A batch is sent this long after its first line at the latest. */
export const DEFAULT_FLUSH_MS = 100;
/** Pending lines of this many bytes are sent at once. */
export const DEFAULT_MAX_BATCH_BYTES = 64 * 1024;
/** Longest line kept; a longer one is cut and ends in "…" (NATS messages are bounded). */
export const MAX_LOG_LINE_CHARS = 16 * 1024;
/** Most bytes of the whole log kept for the artifact store; later lines are only streamed. */
export const MAX_STORED_LOG_BYTES = 32 * 1024 * 1024;
/** Batches waiting to be published beyond which new lines are not streamed (a stuck bus must not fill memory). */
const MAX_QUEUED_BATCHES = 256;
/** How long the end of a job waits for its queued batches; a slow bus must not hold its result back. */
export const DEFAULT_DRAIN_MS = 5_000;

export interface JobLogOptions {
  readonly job: Pick<Job, "jobId" | "actionExecutionId" | "attempt" | "pipelineName">;
  readonly publish: LogPublisher;
  /** Distinguishes this run of the job in message ids (a redelivered job is run again with the same id). */
  readonly runId: string;
  /** Masks every form of the job's secrets; applied to every line before it is kept or sent. */
  readonly mask: (text: string) => string;
  readonly logger: Logger;
  readonly flushMs?: number;
  readonly maxBatchBytes?: number;
  readonly maxStoredBytes?: number;
  /** How long `flush` and `end` wait for the queued batches before giving the rest up (default 5 s). */
  readonly drainMs?: number;
  readonly now?: () => Date;
}

/** The whole log as stored: JSON Lines, one `LogLine` (proto JSON names) per line. */
export interface StoredLog {
  readonly body: Buffer;
  readonly sha256: string;
  /** Lines written; more than the body holds when the stored-log limit was reached. */
  readonly lines: number;
  readonly truncated: boolean;
}

export interface JobLog {
  /** One line (without its newline) of the job's output or the runner's notes about the job. */
  write(stream: LogStream, text: string): void;
  /**
   * Sends what is pending now; resolves when every batch so far was published (or dropped), or
   * after `drainMs`, when the batches still queued are given up.
   */
  flush(): Promise<void>;
  /** The whole log so far, ready to upload. */
  stored(): StoredLog;
  /** Sends the pending lines and the final batch (saying whether the log was stored); later writes are ignored. */
  end(stored: boolean): Promise<void>;
}

/** Creates the log of one job. */
export function createJobLog(opts: JobLogOptions): JobLog {
  const flushMs = opts.flushMs ?? DEFAULT_FLUSH_MS;
  const maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  const maxStoredBytes = opts.maxStoredBytes ?? MAX_STORED_LOG_BYTES;
  const now = opts.now ?? (() => new Date());
  const drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
  const { job, logger } = opts;
  const identity = { jobId: job.jobId, actionExecutionId: job.actionExecutionId, attempt: job.attempt, pipelineName: job.pipelineName };

  let sequence = 0n;
  let pending: LogLineInit[] = [];
  let pendingBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();
  let queued = 0;
  let droppedLines = 0;
  let ended = false;
  // Set when a drain timed out: batches still queued are not sent any more.
  let abandoned = false;
  let warned = false;
  const storedChunks: string[] = [];
  let storedBytes = 0;
  let truncated = false;

  const send = async (batch: LogBatchInit, msgId: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      if (abandoned) {
        droppedLines += batch.lines?.length ?? 0;
        return;
      }
      try {
        await opts.publish(batch, msgId);
        return;
      } catch (err) {
        if (attempt >= 2) {
          droppedLines += batch.lines?.length ?? 0;
          // Once per job: a bus that refuses one batch usually refuses the next ones too.
          if (!warned) logger.warn("log lines not streamed: publishing failed", { lines: batch.lines?.length ?? 0, err: String(err) });
          warned = true;
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  };

  const enqueue = (batch: LogBatchInit, msgId: string): void => {
    queued++;
    chain = chain.then(() => send(batch, msgId)).finally(() => queued--);
  };

  const flushPending = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    pendingBytes = 0;
    if (queued >= MAX_QUEUED_BATCHES) {
      droppedLines += lines.length;
      return;
    }
    // De-duplicated by JetStream should the same batch be published twice.
    enqueue({ ...identity, lines }, `log:${job.jobId}:${opts.runId}:${String(lines[0]?.sequence ?? 0n)}`);
  };

  /** Waits for the queued batches, at most `drainMs`; then gives up the ones still queued. */
  const drain = async (): Promise<void> => {
    let deadline: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      deadline = setTimeout(() => resolve(true), drainMs);
    });
    const gaveUp = await Promise.race([chain.then(() => false), timedOut]);
    clearTimeout(deadline);
    if (gaveUp && !abandoned) {
      abandoned = true;
      logger.warn("log batches still queued were given up: the bus is too slow", { queued });
    }
  };

  return {
    write(stream, raw) {
      if (ended) return;
      const masked = opts.mask(raw);
      const text = masked.length > MAX_LOG_LINE_CHARS ? `${masked.slice(0, MAX_LOG_LINE_CHARS - 1)}…` : masked;
      sequence += 1n;
      const time = now();
      const line: LogLineInit = { sequence, stream, text, time: timestampFromDate(time) };
      if (!truncated) {
        const json = `${JSON.stringify({ sequence: String(sequence), stream, text, time: time.toISOString() })}\n`;
        const bytes = Buffer.byteLength(json);
        if (storedBytes + bytes > maxStoredBytes) {
          truncated = true;
          const note = `${JSON.stringify({ sequence: String(sequence), stream: "system", text: `log truncated: the stored log keeps at most ${maxStoredBytes} bytes`, time: time.toISOString() })}\n`;
          storedChunks.push(note);
          storedBytes += Buffer.byteLength(note);
        } else {
          storedChunks.push(json);
          storedBytes += bytes;
        }
      }
      pending.push(line);
      pendingBytes += text.length + 48;
      if (pendingBytes >= maxBatchBytes) flushPending();
      else timer ??= setTimeout(flushPending, flushMs);
    },

    flush() {
      flushPending();
      return drain();
    },

    stored() {
      const body = Buffer.from(storedChunks.join(""), "utf8");
      return { body, sha256: createHash("sha256").update(body).digest("hex"), lines: Number(sequence), truncated };
    },

    async end(stored) {
      if (ended) return drain();
      flushPending();
      ended = true;
      enqueue({ ...identity, lines: [], final: true, stored }, `log:${job.jobId}:${opts.runId}:final`);
      await drain();
      if (droppedLines > 0) logger.warn("some log lines were not streamed", { lines: droppedLines });
    },
  };
}
