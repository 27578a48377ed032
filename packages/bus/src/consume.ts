import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { AckPolicy, DeliverPolicy, JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { Consumer as JsConsumer, ConsumerConfig, ConsumerInfo, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { headers as createHeaders, nanos } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { SpanKind, SpanStatusCode, metrics, trace } from "@opentelemetry/api";
import type { Attributes, Counter, Span } from "@opentelemetry/api";
import { isDomainError } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { DeadLetterSchema } from "@sluice/proto";
import type { Subjects } from "./catalog.js";
import { TRACEPARENT, activeTraceparent, contextFromHeaders } from "./tracing.js";

/** What a handler gets besides the decoded message. */
export interface HandlerContext {
  /** The subject the message was published to. */
  readonly subject: string;
  /** 1 on first delivery, then 2, 3 … on redeliveries. */
  readonly deliveryCount: number;
  /** The message's sequence in its stream. */
  readonly streamSequence: number;
  /** The publisher's `Nats-Msg-Id`, or "" when it set none. */
  readonly msgId: string;
  /**
   * When the stream stored the message (the server's clock): the publish time, the same on every
   * redelivery. A runner measures dispatch latency from it on the first delivery.
   */
  readonly publishedAt: Date;
  /** A header of the message, or "" when it has none (e.g. the `Sluice-*` headers a dead letter carries over). */
  readonly header: (name: string) => string;
  /** Extends the lease: resets ack_wait. Call it more often than every ackWaitMs / 3 during long work. */
  working(): void;
  /** Aborted when the consumer stops; a handler should give up and throw soon after. */
  readonly signal: AbortSignal;
}

/** Handles one decoded message; resolve = ack, throw = retry or dead-letter (see `consume`). */
export type MessageHandler<S extends DescMessage> = (msg: MessageShape<S>, ctx: HandlerContext) => Promise<void>;

/** Options of `Bus.consume`. */
export interface ConsumeOptions<S extends DescMessage> {
  /** Resolved stream name, e.g. `bus.streams.jobs`. */
  readonly stream: string;
  /** Durable consumer name, shared by every replica that should split the work. */
  readonly durable: string;
  /**
   * Subjects this consumer takes; on a work-queue stream filters of different durables must not overlap.
   * Several subjects (server 2.10+ `filter_subjects`) let one loop, and so one `concurrency` limit,
   * cover them all — e.g. every provider queue a runner serves.
   */
  readonly filterSubject: string | readonly string[];
  /** The protobuf schema of the messages. */
  readonly schema: S;
  /** Deliveries before a failing message is dead-lettered (default 5). */
  readonly maxDeliver?: number | undefined;
  /**
   * Errors that mean "not now" rather than "bad message" (e.g. `isTransientError`: the database or
   * a peer is unreachable, a timeout, a lost write race). With it, such a failure is retried with
   * `transientBackoffMs` for as long as it lasts and never dead-lettered; the server's max_deliver
   * is unlimited, and `maxDeliver` counts every delivery only for the other errors. Without it,
   * every error but a non-retryable DomainError is retried `maxDeliver` times.
   */
  readonly isTransient?: ((err: unknown) => boolean) | undefined;
  /** Lease length; redelivered when the handler neither settles nor calls `working()` within it (default 30 000). */
  readonly ackWaitMs?: number | undefined;
  /** Handlers running at once (default 1); never more messages are pulled than free slots. */
  readonly concurrency?: number | undefined;
  /**
   * Slots shared with other consumers (see `createSharedSlots`), instead of `concurrency`: one
   * limit over several durables, e.g. a runner's consumers of several pools.
   */
  readonly slots?: SharedSlots | undefined;
  /** How long one pull request waits on the server for messages (default 10 000, minimum 1 000). */
  readonly pullExpiresMs?: number | undefined;
  readonly handler: MessageHandler<S>;
}

/**
 * A limit on messages handled at once, shared by several consume loops. A loop reserves slots
 * for the messages its open pull request asks for (at most its fair share, capacity / loops,
 * rounded up) and gives back what it did not receive; freed slots go first to the loops that
 * were waiting, in turn. So no consumer starves another for longer than one pull's expiry —
 * keep `pullExpiresMs` short when there are more loops than slots.
 */
export interface SharedSlots {
  readonly capacity: number;
}

/** Slots for `capacity` messages at once across the consumers given them. */
export function createSharedSlots(capacity: number): SharedSlots {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity: must be a positive integer, got ${capacity}`);
  return new Slots(capacity);
}

class Slots implements SharedSlots {
  private used = 0;
  private readonly waiting = new Set<() => void>();
  /** The loops sharing the slots, by their wake functions. */
  private readonly members = new Set<() => void>();
  /** Slots each loop holds. */
  private readonly held = new Map<() => void, number>();

  constructor(readonly capacity: number) {}

  /** A loop that shares these slots from now on. */
  join(wake: () => void): void {
    this.members.add(wake);
  }

  /**
   * Takes free slots up to the loop's fair share, or one more when nobody waits for it (possibly
   * none); with none, `wake` runs once one is given back.
   */
  take(wake: () => void): number {
    const free = this.capacity - this.used;
    const share = Math.ceil(this.capacity / Math.max(1, this.members.size)) - (this.held.get(wake) ?? 0);
    const othersWait = [...this.waiting].some((w) => w !== wake);
    const n = Math.min(free, share > 0 ? share : othersWait ? 0 : 1);
    if (n <= 0) {
      this.waiting.add(wake);
      return 0;
    }
    this.waiting.delete(wake);
    this.used += n;
    this.held.set(wake, (this.held.get(wake) ?? 0) + n);
    return n;
  }

  /** Gives back `n` of the loop's slots and wakes the waiting loops, oldest first. */
  give(wake: () => void, n: number): void {
    if (n <= 0) return;
    this.used -= n;
    const left = (this.held.get(wake) ?? n) - n;
    if (left > 0) this.held.set(wake, left);
    else this.held.delete(wake);
    for (const next of [...this.waiting]) {
      if (this.used >= this.capacity) return;
      this.waiting.delete(next);
      next();
    }
  }

  /** A stopped loop waits no more, and its share goes to the others (its slots come back through `give`). */
  leave(wake: () => void): void {
    this.waiting.delete(wake);
    this.members.delete(wake);
  }
}

/** A running consume loop. */
export interface Consumer {
  /** The durable consumer's name. */
  readonly durable: string;
  /** Stops pulling, aborts handlers' signals, waits for in-flight handlers to settle, flushes acks. Idempotent. */
  stop(): Promise<void>;
}

/** Redelivery delay after the n-th failed delivery: 250 ms × 2^(n-1), at most 10 s. */
export function backoffMs(deliveryCount: number): number {
  const exponent = Math.max(0, Math.min(deliveryCount - 1, 16));
  return Math.min(250 * 2 ** exponent, 10_000);
}

/** Redelivery delay after the n-th delivery failed for a transient reason: 100 ms × 2^(n-1), at most 30 s. */
export function transientBackoffMs(deliveryCount: number): number {
  const exponent = Math.max(0, Math.min(deliveryCount - 1, 16));
  return Math.min(100 * 2 ** exponent, 30_000);
}

/** Headers a dead letter carries over from the message it stands for (who it concerns). */
const CARRIED_HEADER_PREFIX = "Sluice-";

/** What the consume loop needs from the bus. */
export interface ConsumeDeps {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly subjects: Subjects;
  readonly logger: Logger;
}

const tracer = trace.getTracer("@sluice/bus");

/** Name of the dead-letter counter; the same instrument name as service-kit's `createMetrics().dlqMessages`. */
export const DLQ_MESSAGES_METRIC = "sluice.dlq.messages";

/**
 * The dead-letter counter of the meter provider registered now. Looked up per dead-letter (rare):
 * `@opentelemetry/api` has no proxy meter provider, so a counter made at import time, before
 * main.ts starts the SDK, would count into a no-op forever. The SDK returns the same storage for
 * a repeated registration.
 */
function dlqCounter(): Counter {
  return metrics.getMeter("@sluice/bus").createCounter(DLQ_MESSAGES_METRIC, { description: "Messages moved to the dead-letter stream", unit: "{message}" });
}

/** How a delivery was settled; recorded on the consumer span as `sluice.bus.outcome`. */
type Outcome = "ack" | "retry" | "dead-letter" | "handed-back";

/**
 * Creates or updates the durable pull consumer, then starts the loop. Dead-lettering is done
 * here rather than by the server: a work-queue stream keeps a message that hit max_deliver or
 * was `term()`ed forever, so we publish a `DeadLetter` and then ack. The server's max_deliver is
 * one more than ours: a delivery whose lease ran out on the last allowed attempt (crashed or hung
 * handler) still comes back once, and is dead-lettered without running the handler again.
 */
export async function startConsumer<S extends DescMessage>(deps: ConsumeDeps, opts: ConsumeOptions<S>): Promise<Consumer> {
  const config = resolveConsumeOptions(opts);
  await ensureConsumer(deps.jsm, config);
  const consumer = await deps.js.consumers.get(config.stream, config.durable);
  const loop = new ConsumeLoop(deps, config, consumer);
  loop.pump();
  return { durable: config.durable, stop: () => loop.stop() };
}

interface ResolvedConsumeOptions<S extends DescMessage> {
  readonly stream: string;
  readonly durable: string;
  /** One or more subjects, without duplicates, in the caller's order. */
  readonly filterSubjects: readonly string[];
  readonly schema: S;
  readonly maxDeliver: number;
  readonly isTransient: ((err: unknown) => boolean) | undefined;
  readonly ackWaitMs: number;
  readonly slots: Slots;
  readonly pullExpiresMs: number;
  readonly handler: MessageHandler<S>;
}

function resolveConsumeOptions<S extends DescMessage>(opts: ConsumeOptions<S>): ResolvedConsumeOptions<S> {
  const positiveInt = (field: string, value: number): number => {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${field}: must be a positive integer, got ${value}`);
    return value;
  };
  if (opts.durable === "" || /[.*>\s]/.test(opts.durable)) {
    throw new RangeError(`durable: must be non-empty without '.', '*', '>' or whitespace, got "${opts.durable}"`);
  }
  const filterSubjects = [...new Set(typeof opts.filterSubject === "string" ? [opts.filterSubject] : opts.filterSubject)];
  if (filterSubjects.length === 0) throw new RangeError("filterSubject: must name at least one subject");
  filterSubjects.forEach((subject, i) => {
    if (subject === "") throw new RangeError(typeof opts.filterSubject === "string" ? "filterSubject: must not be empty" : `filterSubject[${i}]: must not be empty`);
  });
  const pullExpiresMs = positiveInt("pullExpiresMs", opts.pullExpiresMs ?? 10_000);
  if (pullExpiresMs < 1000) throw new RangeError(`pullExpiresMs: must be at least 1000, got ${pullExpiresMs}`);
  return {
    stream: opts.stream,
    durable: opts.durable,
    filterSubjects,
    schema: opts.schema,
    maxDeliver: positiveInt("maxDeliver", opts.maxDeliver ?? 5),
    isTransient: opts.isTransient,
    ackWaitMs: positiveInt("ackWaitMs", opts.ackWaitMs ?? 30_000),
    slots: opts.slots instanceof Slots ? opts.slots : new Slots(positiveInt("concurrency", opts.concurrency ?? 1)),
    pullExpiresMs,
    handler: opts.handler,
  };
}

/**
 * The filter field of a consumer configuration: `filter_subject` for one subject (as before
 * multi-filter consumers existed, so existing durables stay unchanged), `filter_subjects` for
 * several. The server refuses both set at once; see `ensureConsumer` for switching.
 */
function filterFields(subjects: readonly string[]): { filter_subject: string } | { filter_subjects: string[] } {
  return subjects.length === 1 && subjects[0] !== undefined ? { filter_subject: subjects[0] } : { filter_subjects: [...subjects] };
}

/** The subjects an existing consumer filters on, whichever field holds them (sorted, for comparison). */
function existingFilters(config: { filter_subject?: string | undefined; filter_subjects?: string[] | undefined }): string[] {
  const many = config.filter_subjects ?? [];
  if (many.length > 0) return [...many].sort();
  return config.filter_subject === undefined || config.filter_subject === "" ? [] : [config.filter_subject];
}

/** Idempotent: creates the durable, or updates the fields that may change between releases. */
async function ensureConsumer(jsm: JetStreamManager, cfg: ResolvedConsumeOptions<DescMessage>): Promise<ConsumerInfo> {
  const wanted = {
    ack_wait: nanos(cfg.ackWaitMs),
    // Unlimited when transient failures retry until they pass: the server must never stop
    // redelivering (a work-queue stream would keep the message, undelivered, forever).
    max_deliver: cfg.isTransient === undefined ? cfg.maxDeliver + 1 : -1,
    ...filterFields(cfg.filterSubjects),
  };
  let existing: ConsumerInfo | undefined;
  try {
    existing = await jsm.consumers.info(cfg.stream, cfg.durable);
  } catch (err) {
    if (!isConsumerNotFound(err)) throw err;
  }
  if (existing === undefined) {
    const full: Partial<ConsumerConfig> = {
      durable_name: cfg.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ...wanted,
    };
    // Two replicas starting together both try to create; identical configs make that harmless.
    return jsm.consumers.add(cfg.stream, full);
  }
  if (existing.config.ack_policy !== AckPolicy.Explicit || existing.config.deliver_subject !== undefined) {
    throw new Error(`consumer ${cfg.stream}/${cfg.durable}: exists as a non-explicit-ack or push consumer; delete it first`);
  }
  const same =
    existing.config.ack_wait === wanted.ack_wait &&
    existing.config.max_deliver === wanted.max_deliver &&
    existingFilters(existing.config).join("\n") === [...cfg.filterSubjects].sort().join("\n");
  if (same) return existing;
  // `update` merges into the current configuration: when switching between one and several
  // subjects, clear the form no longer used ("" and [] are the server's "unset"), or the server
  // would see both filter fields.
  const wantsOne = "filter_subject" in wanted;
  const hadMany = (existing.config.filter_subjects ?? []).length > 0;
  const clear = wantsOne && hadMany ? { filter_subjects: [] } : !wantsOne && !hadMany ? { filter_subject: "" } : {};
  return jsm.consumers.update(cfg.stream, cfg.durable, { ...clear, ...wanted });
}

class ConsumeLoop<S extends DescMessage> {
  private stopped = false;
  private stopping: Promise<void> | undefined;
  /** Messages asked for by open pull requests and not yet received (each holds a slot, as a handled message does). */
  private requested = 0;
  private readonly wake = (): void => this.pump();
  private readonly fetches = new Set<ConsumerMessages>();
  private readonly handlers = new Set<Promise<void>>();
  private readonly pulls = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly logger: Logger;
  private retryTimer: NodeJS.Timeout | undefined;
  private pullFailures = 0;

  constructor(
    private readonly deps: ConsumeDeps,
    private readonly cfg: ResolvedConsumeOptions<S>,
    private readonly consumer: JsConsumer,
  ) {
    this.logger = deps.logger.child({ stream: cfg.stream, durable: cfg.durable });
    cfg.slots.join(this.wake);
  }

  /**
   * Opens a pull request for exactly the free slots. Pulling only what can be handled right away
   * keeps unhandled messages from sitting in a local buffer while their lease runs out.
   */
  pump(): void {
    if (this.stopped || this.retryTimer !== undefined || this.deps.nc.isClosed()) return;
    const want = this.cfg.slots.take(this.wake);
    if (want <= 0) return;
    this.requested += want;
    const pull = this.pull(want);
    this.pulls.add(pull);
    void pull.finally(() => this.pulls.delete(pull));
  }

  private async pull(batch: number): Promise<void> {
    let received = 0;
    let iter: ConsumerMessages | undefined;
    try {
      iter = await this.consumer.fetch({ max_messages: batch, expires: this.cfg.pullExpiresMs });
      this.fetches.add(iter);
      // Stopped while the pull request was being set up: close now; the loop below drains it.
      // (Not awaited: close() resolves only once the iterator is consumed.)
      if (this.stopped) void iter.close();
      for await (const m of iter) {
        received++;
        this.requested--;
        if (this.stopped) {
          // Arrived after stop(): hand it straight back so another replica takes it now.
          m.nak();
          this.cfg.slots.give(this.wake, 1);
          continue;
        }
        this.dispatch(m);
      }
      this.pullFailures = 0;
    } catch (err) {
      if (!this.stopped && !this.deps.nc.isClosed()) {
        this.pullFailures++;
        const delay = backoffMs(this.pullFailures);
        this.logger.warn("pull failed; retrying", { err, retryInMs: delay });
        this.scheduleRetry(delay);
      }
    } finally {
      if (iter !== undefined) this.fetches.delete(iter);
      this.requested -= batch - received;
      this.cfg.slots.give(this.wake, batch - received);
      this.pump();
    }
  }

  private scheduleRetry(delayMs: number): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delayMs);
    this.retryTimer.unref();
  }

  private dispatch(m: JsMsg): void {
    const handled = this.handle(m).finally(() => {
      this.handlers.delete(handled);
      this.cfg.slots.give(this.wake, 1);
      this.pump();
    });
    this.handlers.add(handled);
  }

  /**
   * Settles one message: ack, nak with backoff, or dead-letter. Never rejects. Runs in a consumer
   * span `process <subject>`, child of the publisher's span (from `traceparent`), so the handler's
   * own publishes and calls continue the trace.
   */
  private handle(m: JsMsg): Promise<void> {
    const { deliveryCount, streamSequence } = m.info;
    const msgId = m.headers?.get("Nats-Msg-Id") ?? "";
    const attributes: Attributes = {
      "messaging.system": "nats",
      "messaging.operation.type": "process",
      "messaging.destination.name": m.subject,
      "messaging.consumer.group.name": this.cfg.durable,
      "sluice.bus.stream": this.cfg.stream,
      "sluice.bus.sequence": streamSequence,
      "sluice.bus.delivery_count": deliveryCount,
    };
    if (msgId !== "") attributes["messaging.message.id"] = msgId;
    return tracer.startActiveSpan(`process ${m.subject}`, { kind: SpanKind.CONSUMER, attributes }, contextFromHeaders(m.headers), async (span) => {
      try {
        const outcome = await this.settle(m, msgId, span);
        span.setAttribute("sluice.bus.outcome", outcome);
      } finally {
        span.end();
      }
    });
  }

  private async settle(m: JsMsg, msgId: string, span: Span): Promise<Outcome> {
    const { deliveryCount, streamSequence } = m.info;
    const { maxDeliver, schema } = this.cfg;
    // With transient retries the count includes them, so an expired lease is just redelivered.
    if (deliveryCount > maxDeliver && this.cfg.isTransient === undefined) {
      return this.deadLetter(m, `delivery limit ${maxDeliver} reached: the last delivery's lease expired without an ack`, span);
    }
    let decoded: MessageShape<S>;
    try {
      decoded = fromBinary(schema, m.data);
    } catch (err) {
      return this.deadLetter(m, `cannot decode ${schema.typeName}: ${errorMessage(err)}`, span);
    }
    const ctx: HandlerContext = {
      subject: m.subject,
      deliveryCount,
      streamSequence,
      msgId,
      // The stream's store time, carried in the delivery's reply subject.
      publishedAt: m.time,
      header: (name) => m.headers?.get(name) ?? "",
      working: () => m.working(),
      signal: this.abort.signal,
    };
    try {
      await this.cfg.handler(decoded, ctx);
      m.ack();
      return "ack";
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
      if (this.abort.signal.aborted) {
        // Stopping: hand the message back untouched for another replica (or our next start).
        m.nak();
        this.logger.info("handler interrupted by stop; message handed back", { subject: m.subject, streamSequence });
        return "handed-back";
      } else if (isDomainError(err) && !err.retryable) {
        return this.deadLetter(m, `${err.code}: ${err.message}`, span, err.code);
      }
      const transient = this.cfg.isTransient?.(err) === true;
      if (!transient && deliveryCount >= maxDeliver) {
        return this.deadLetter(m, `failed ${deliveryCount} deliveries, last error: ${errorMessage(err)}`, span);
      }
      const delay = transient ? transientBackoffMs(deliveryCount) : backoffMs(deliveryCount);
      m.nak(delay);
      this.logger.warn(
        transient ? "handler failed for a transient reason; retrying until it passes" : "handler failed; message will be redelivered",
        { subject: m.subject, streamSequence, deliveryCount, retryInMs: delay, err },
      );
      return "retry";
    }
  }

  /**
   * Publishes a `DeadLetter` (deduplicated by stream sequence, so a crash between publish and
   * ack does not dead-letter twice), then acks the original so messages behind it flow.
   * Counts `sluice.dlq.messages` (by stream) once the letter is stored.
   */
  private async deadLetter(m: JsMsg, reason: string, span: Span, errorCode = ""): Promise<Outcome> {
    const { stream, streamSequence, deliveryCount } = m.info;
    span.setStatus({ code: SpanStatusCode.ERROR, message: `dead-lettered: ${reason}` });
    const letter = create(DeadLetterSchema, {
      stream,
      subject: m.subject,
      streamSequence: BigInt(streamSequence),
      deliveries: deliveryCount,
      reason,
      errorCode,
      data: m.data,
      time: timestampNow(),
    });
    const hdrs = createHeaders();
    const originalId = m.headers?.get("Nats-Msg-Id");
    for (const [name, values] of m.headers ?? []) {
      const value = values[0];
      if (name.startsWith(CARRIED_HEADER_PREFIX) && value !== undefined) hdrs.set(name, value);
    }
    if (originalId !== undefined && originalId !== "") hdrs.set("Sluice-Original-Msg-Id", originalId);
    // The consumer span is active: whoever inspects the dead letter finds the trace it came from.
    const traceparent = activeTraceparent();
    if (traceparent !== undefined) hdrs.set(TRACEPARENT, traceparent);
    try {
      await this.deps.js.publish(this.deps.subjects.dlqSubject(stream), toBinary(DeadLetterSchema, letter), {
        msgID: `dlq:${stream}:${streamSequence}`,
        headers: hdrs,
      });
      m.ack();
      dlqCounter().add(1, { stream });
      this.logger.warn("message dead-lettered", { subject: m.subject, streamSequence, deliveryCount, reason });
      return "dead-letter";
    } catch (err) {
      const delay = backoffMs(deliveryCount);
      m.nak(delay);
      this.logger.error("dead-letter publish failed; message will be redelivered", {
        subject: m.subject,
        streamSequence,
        reason,
        retryInMs: delay,
        err,
      });
      return "retry";
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    this.cfg.slots.leave(this.wake);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.abort.abort(new Error(`consumer ${this.cfg.durable} stopping`));
    await Promise.allSettled([...this.fetches].map((f) => f.close()));
    await Promise.allSettled([...this.pulls]);
    await Promise.allSettled([...this.handlers]);
    // Acks and naks are fire-and-forget publishes; make sure they reached the server.
    if (!this.deps.nc.isClosed()) await this.deps.nc.flush().catch(() => undefined);
    this.logger.debug("consumer stopped");
  }
}

/** True when a JetStream API call failed because the consumer does not exist. */
export function isConsumerNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
