// WatchPipelineExecution: a snapshot of one execution, then one message per
// state change of it (each with a fresh snapshot), until it is terminal.

import { create, toBinary } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { EventSubscription } from "@sluice/bus";
import { DomainError } from "@sluice/domain";
import { PipelineExecutionSnapshotSchema } from "@sluice/proto";
import type { StateChangeEvent, WatchPipelineExecutionResponseSchema } from "@sluice/proto";

type SnapshotInit = MessageInitShape<typeof PipelineExecutionSnapshotSchema>;
type ResponseInit = MessageInitShape<typeof WatchPipelineExecutionResponseSchema>;

/** One read of the watched execution. */
export interface WatchedState {
  snapshot: SnapshotInit;
  /** The execution reached a terminal status. */
  terminal: boolean;
}

/** Where a watch gets its data. */
export interface WatchSource {
  /** Reads the execution as it is now; throws (PipelineExecutionNotFoundException, ...) when it cannot. */
  read(): Promise<WatchedState>;
  /** Subscribes to the pipeline's state-change events that are published from now on. */
  subscribe(handler: (event: StateChangeEvent) => void): Promise<EventSubscription>;
}

/** Pipeline event states after which the execution does not change (unless retried: a new watch). */
const TERMINAL_PIPELINE_STATES: ReadonlySet<string> = new Set(["SUCCEEDED", "FAILED", "STOPPED", "SUPERSEDED", "CANCELED"]);
const PIPELINE_DETAIL_TYPE = "CodePipeline Pipeline Execution State Change";

/**
 * The stream of one watch. The subscription starts before the first read, so
 * no change between the two is lost (one seen twice is harmless: every message
 * carries a fresh snapshot). When no event came for `resyncMs`, the execution
 * is read again: an event may have been lost or delayed (a crash before an
 * outbox entry was published), and a change or the end is then reported from
 * the snapshot alone. Ends when the execution is terminal, or when `signal`
 * aborts (the caller cancelled, the server is shutting down).
 */
export async function* watchExecution(source: WatchSource, executionId: string, signal: AbortSignal, resyncMs: number): AsyncGenerator<ResponseInit, void, undefined> {
  const queue = new EventQueue();
  const seen = new Set<string>();
  const subscription = await source.subscribe((event) => {
    if (event.executionId !== executionId || seen.has(event.eventId)) return;
    seen.add(event.eventId);
    queue.push(event);
  });
  try {
    let current = await source.read();
    let last = fingerprint(current.snapshot);
    yield { snapshot: current.snapshot };
    if (current.terminal) return;
    while (!signal.aborted) {
      const next = await queue.next(signal, resyncMs);
      if (next === "aborted") return;
      current = await source.read();
      const print = fingerprint(current.snapshot);
      if (next === "timeout") {
        if (print !== last) yield { snapshot: current.snapshot };
        last = print;
        if (current.terminal) return;
        continue;
      }
      last = print;
      yield { snapshot: current.snapshot, event: next };
      // The snapshot decides: a replayed terminal event of an execution resumed since does not end the watch.
      if (current.terminal && next.detailType === PIPELINE_DETAIL_TYPE && TERMINAL_PIPELINE_STATES.has(next.state)) return;
    }
  } finally {
    await subscription.stop();
  }
}

function fingerprint(snapshot: SnapshotInit): string {
  return Buffer.from(toBinary(PipelineExecutionSnapshotSchema, create(PipelineExecutionSnapshotSchema, snapshot))).toString("base64");
}

/** Events in arrival order, awaited one at a time with a timeout and an abort signal. */
class EventQueue {
  private readonly items: StateChangeEvent[] = [];
  private wake: (() => void) | undefined;

  push(event: StateChangeEvent): void {
    this.items.push(event);
    this.wake?.();
  }

  /** The next event; "timeout" after `timeoutMs` without one; "aborted" once `signal` aborts. */
  async next(signal: AbortSignal, timeoutMs: number): Promise<StateChangeEvent | "timeout" | "aborted"> {
    const ready = this.items.shift();
    if (ready !== undefined) return ready;
    if (signal.aborted) return "aborted";
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const outcome = await new Promise<"event" | "timeout" | "aborted">((resolve) => {
        this.wake = () => resolve("event");
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
        onAbort = () => resolve("aborted");
        signal.addEventListener("abort", onAbort, { once: true });
      });
      if (outcome !== "event") return outcome;
      return this.items.shift() ?? "timeout";
    } finally {
      this.wake = undefined;
      clearTimeout(timer);
      if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
    }
  }
}

/**
 * Counts open watches per principal and in all. Each watch holds an events
 * consumer, a timer and a stream, so one caller opening thousands would starve
 * everyone: the call over a cap gets LimitExceededException (gRPC
 * RESOURCE_EXHAUSTED) before it subscribes to anything.
 */
export class WatchLimits {
  private readonly open = new Map<string, number>();
  private total = 0;

  constructor(
    readonly maxPerPrincipal: number,
    readonly maxTotal: number,
  ) {}

  /** Takes a slot for `principal`; the returned function gives it back (once). */
  acquire(principal: string): () => void {
    const mine = this.open.get(principal) ?? 0;
    if (mine >= this.maxPerPrincipal) {
      throw new DomainError(
        "LimitExceededException",
        `${principal} already has ${mine} open WatchPipelineExecution streams, the most one caller may have (WATCH_MAX_PER_PRINCIPAL=${this.maxPerPrincipal}); close one first`,
      );
    }
    if (this.total >= this.maxTotal) {
      throw new DomainError(
        "LimitExceededException",
        `this orchestrator already serves ${this.total} WatchPipelineExecution streams, its limit (WATCH_MAX_TOTAL=${this.maxTotal}); retry later`,
        [],
        true,
      );
    }
    this.open.set(principal, mine + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.open.get(principal) ?? 1) - 1;
      if (left <= 0) this.open.delete(principal);
      else this.open.set(principal, left);
    };
  }

  /** Open watches of a principal (tests). */
  openFor(principal: string): number {
    return this.open.get(principal) ?? 0;
  }
}
