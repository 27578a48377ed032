import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { ConsumerMessages, JetStreamClient, JetStreamManager, OrderedConsumerOptions } from "@nats-io/jetstream";
import { PermissionViolationError, connect, headers as createHeaders } from "@nats-io/transport-node";
import type { ConnectionOptions, NatsConnection } from "@nats-io/transport-node";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Logger } from "@sluice/domain";
import { StateChangeEventSchema } from "@sluice/proto";
import type { StateChangeEvent } from "@sluice/proto";
import { createCatalog } from "./catalog.js";
import type { Catalog, StreamNames, Subjects } from "./catalog.js";
import { errorMessage, startConsumer } from "./consume.js";
import type { ConsumeOptions, Consumer } from "./consume.js";
import { TRACEPARENT, activeTraceparent } from "./tracing.js";

const tracer = trace.getTracer("@sluice/bus");

/** Options of `connectBus`. */
export interface BusOptions {
  /** NATS server URL(s); a comma-separated string or a list. */
  readonly servers: string | readonly string[];
  /** Connection name shown by the server (e.g. the service name). */
  readonly name: string;
  readonly logger: Logger;
  /** Result/source partitions (default 8). */
  readonly partitions?: number | undefined;
  /** Stream and subject prefix for isolated tests (see `createCatalog`). */
  readonly prefix?: string | undefined;
  /** How long a publish waits for its PubAck (default 5 000). */
  readonly publishTimeoutMs?: number | undefined;
  /** NATS user and password (`NATS_USER`, `NATS_PASSWORD`); unset: connect without credentials. */
  readonly credentials?: BusCredentials | undefined;
  /**
   * Prefix of this connection's reply inboxes (see `inboxPrefixFor` in permissions.ts); a user
   * may subscribe only to its own prefix, so it must connect with it. Default `_INBOX_<user>`
   * with credentials, `_INBOX` without.
   */
  readonly inboxPrefix?: string | undefined;
  /** TLS files (`NATS_TLS_CA`, `NATS_TLS_CERT`, `NATS_TLS_KEY`); unset: TLS only when the URL is `tls://`. */
  readonly tls?: BusTls | undefined;
  /** How often `ensureStreams` checks for streams it may not create itself (default 1 000 ms). */
  readonly streamWaitMs?: number | undefined;
}

/** A NATS user. */
export interface BusCredentials {
  readonly user: string;
  readonly password: string;
}

/** TLS settings of the NATS connection: a CA to verify the server, and a client certificate for mutual TLS. */
export interface BusTls {
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

/** Options of `Bus.publish`. */
export interface PublishOptions {
  /** The message's own id; JetStream drops a repeat within the 2-minute duplicate window. */
  readonly msgId: string;
  /** Extra headers. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** The PubAck of a publish. */
export interface PublishResult {
  readonly stream: string;
  readonly seq: number;
  /** True when the server dropped the message as a repeat of `msgId`. */
  readonly duplicate: boolean;
}

/** Where an event came from. */
export interface EventMeta {
  readonly subject: string;
  readonly streamSequence: number;
}

/** Called for each event, in stream order; a throw is logged and the next event follows. */
export type EventHandler = (event: StateChangeEvent, meta: EventMeta) => void | Promise<void>;

/** Options of `Bus.subscribeEvents`. */
export interface SubscribeEventsOptions {
  /** Deliver events stored since this time instead of only new ones. */
  readonly since?: Date | undefined;
}

/** An ephemeral event subscription. */
export interface EventSubscription {
  /** Stops delivery and waits for the handler in progress. Idempotent. */
  stop(): Promise<void>;
}

/** One connection to NATS with the Sluice catalog bound to it. */
export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly catalog: Catalog;
  /** Resolved stream names (prefixed in tests). */
  readonly streams: StreamNames;
  /** Subject builders bound to this bus's prefix and partitions. */
  readonly subjects: Subjects;
  /**
   * Creates every stream of the catalog, or updates it to the catalog's configuration. Idempotent.
   * A user the server does not allow to create streams (every service but the orchestrator and
   * admin) waits instead until each stream exists, checking every `streamWaitMs`.
   */
  ensureStreams(signal?: AbortSignal): Promise<void>;
  /**
   * Publishes a protobuf message and waits for the stream's PubAck (throws when none arrives).
   * Sets `Nats-Msg-Id`; runs in a producer span `publish <subject>` (child of the active span)
   * whose context travels as `traceparent`, so the consumer's span joins the same trace.
   */
  publish<S extends DescMessage>(subject: string, schema: S, message: MessageInitShape<S>, opts: PublishOptions): Promise<PublishResult>;
  /** Starts a durable pull-consumer loop (see `ConsumeOptions`); resolves once the consumer exists. */
  consume<S extends DescMessage>(opts: ConsumeOptions<S>): Promise<Consumer>;
  /**
   * Follows `SLUICE_EVENTS` with an ordered ephemeral consumer, from now (or `since`).
   * Resolves once the server-side consumer exists, so events published afterwards are seen.
   */
  subscribeEvents(subjectFilter: string, handler: EventHandler, opts?: SubscribeEventsOptions): Promise<EventSubscription>;
  /** Stops this bus's consumers and subscriptions (in-flight handlers finish), then drains the connection. Idempotent. */
  close(): Promise<void>;
}

/** Connects to NATS and checks that JetStream is enabled. */
export async function connectBus(opts: BusOptions): Promise<Bus> {
  const catalog = createCatalog({ prefix: opts.prefix, partitions: opts.partitions });
  const servers = typeof opts.servers === "string" ? opts.servers.split(",").map((s) => s.trim()).filter((s) => s !== "") : [...opts.servers];
  if (servers.length === 0) throw new RangeError("servers: at least one NATS URL is required");
  const logger = opts.logger.child({ component: "bus" });
  // Keep reconnecting for as long as the process lives: a restarted nats-server must not kill services.
  const nc = await connect(connectionOptions(opts, servers));
  try {
    const jsm = await jetstreamManager(nc, { timeout: opts.publishTimeoutMs ?? 5_000 });
    const js = jetstream(nc, { timeout: opts.publishTimeoutMs ?? 5_000 });
    return new NatsBus(nc, js, jsm, catalog, logger, opts.streamWaitMs ?? 1_000);
  } catch (err) {
    await nc.close();
    throw err;
  }
}

function connectionOptions(opts: BusOptions, servers: string[]): ConnectionOptions {
  const options: ConnectionOptions = { servers, name: opts.name, maxReconnectAttempts: -1 };
  if (opts.credentials !== undefined) {
    if (opts.credentials.user === "") throw new RangeError("credentials.user: must not be empty");
    options.user = opts.credentials.user;
    options.pass = opts.credentials.password;
  }
  // A user may subscribe only to `_INBOX_<user>.>` (see permissions.ts), so that is its default.
  const inboxPrefix = opts.inboxPrefix ?? (opts.credentials === undefined ? undefined : `_INBOX_${opts.credentials.user}`);
  if (inboxPrefix !== undefined) {
    if (!/^[A-Za-z0-9_-]+$/.test(inboxPrefix)) throw new RangeError(`inboxPrefix: must be one token of letters, digits, '_' and '-', got "${inboxPrefix}"`);
    options.inboxPrefix = inboxPrefix;
  }
  const tls = opts.tls;
  if (tls !== undefined && (tls.caFile !== undefined || tls.certFile !== undefined || tls.keyFile !== undefined)) {
    if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw new RangeError("tls: certFile and keyFile must be given together");
    options.tls = {
      ...(tls.caFile === undefined ? {} : { caFile: tls.caFile }),
      ...(tls.certFile === undefined ? {} : { certFile: tls.certFile }),
      ...(tls.keyFile === undefined ? {} : { keyFile: tls.keyFile }),
    };
  }
  return options;
}

class NatsBus implements Bus {
  readonly streams: StreamNames;
  readonly subjects: Subjects;
  private readonly consumers = new Set<Consumer>();
  private readonly subscriptions = new Set<EventSubscription>();
  private closing: Promise<void> | undefined;

  constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly catalog: Catalog,
    private readonly logger: Logger,
    private readonly streamWaitMs: number,
  ) {
    this.streams = catalog.streams;
    this.subjects = catalog.subjects;
    void this.watchStatus();
  }

  /** Logs disconnects and reconnects; ends when the connection closes. */
  private async watchStatus(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (s.type === "disconnect") this.logger.warn("nats disconnected", { server: s.server });
        else if (s.type === "reconnect") this.logger.info("nats reconnected", { server: s.server });
        else if (s.type === "error" && isPermissionViolation(s.error)) {
          // Expected once per start from ensureStreams for users that may not create streams;
          // anything else is a service asking for more than its role allows.
          this.logger.warn("nats refused a subject to this user", { err: s.error.message });
        } else if (s.type === "error") this.logger.error("nats error", { err: s.error });
      }
    } catch {
      // The status iterator only ends with the connection.
    }
  }

  async ensureStreams(signal?: AbortSignal): Promise<void> {
    for (const { config } of this.catalog.streamConfigs) {
      try {
        // Adding with an identical configuration is a no-op on the server.
        await this.jsm.streams.add(config);
      } catch (err) {
        if (isPermissionViolation(err)) {
          await this.waitForStream(config.name, signal);
          continue;
        }
        if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) {
          throw new Error(`stream ${config.name}: cannot create: ${errorMessage(err)}`, { cause: err });
        }
        try {
          await this.jsm.streams.update(config.name, config);
        } catch (updateErr) {
          throw new Error(`stream ${config.name}: exists with a configuration that cannot be updated: ${errorMessage(updateErr)}`, {
            cause: updateErr,
          });
        }
        this.logger.info("stream updated", { stream: config.name });
      }
    }
  }

  /** For users that may not create streams: the orchestrator (or an operator) creates them. */
  private async waitForStream(name: string, signal: AbortSignal | undefined): Promise<void> {
    for (let logged = false; ; ) {
      try {
        await this.jsm.streams.info(name);
        return;
      } catch (err) {
        if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) {
          throw new Error(`stream ${name}: cannot check that it exists: ${errorMessage(err)}`, { cause: err });
        }
      }
      if (!logged) this.logger.info("waiting for a stream this user may not create", { stream: name });
      logged = true;
      signal?.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, this.streamWaitMs));
    }
  }

  async publish<S extends DescMessage>(subject: string, schema: S, message: MessageInitShape<S>, opts: PublishOptions): Promise<PublishResult> {
    if (opts.msgId === "") throw new RangeError("msgId: must not be empty");
    const attributes = {
      "messaging.system": "nats",
      "messaging.operation.type": "send",
      "messaging.destination.name": subject,
      "messaging.message.id": opts.msgId,
    };
    return tracer.startActiveSpan(`publish ${subject}`, { kind: SpanKind.PRODUCER, attributes }, async (span) => {
      try {
        const hdrs = createHeaders();
        for (const [k, v] of Object.entries(opts.headers ?? {})) hdrs.set(k, v);
        // The producer span is active here, so the consumer becomes its child.
        const traceparent = activeTraceparent();
        if (traceparent !== undefined) hdrs.set(TRACEPARENT, traceparent);
        const data = toBinary(schema, create(schema, message));
        const ack = await this.js.publish(subject, data, { msgID: opts.msgId, headers: hdrs });
        span.setAttributes({ "sluice.bus.stream": ack.stream, "sluice.bus.sequence": ack.seq, "sluice.bus.duplicate": ack.duplicate });
        return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
      } catch (err) {
        span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
        throw err;
      } finally {
        span.end();
      }
    });
  }

  async consume<S extends DescMessage>(opts: ConsumeOptions<S>): Promise<Consumer> {
    if (this.closing !== undefined) throw new Error("bus is closed");
    const consumer = await startConsumer({ nc: this.nc, js: this.js, jsm: this.jsm, subjects: this.subjects, logger: this.logger }, opts);
    const tracked: Consumer = {
      durable: consumer.durable,
      stop: async () => {
        await consumer.stop();
        this.consumers.delete(tracked);
      },
    };
    this.consumers.add(tracked);
    return tracked;
  }

  async subscribeEvents(subjectFilter: string, handler: EventHandler, opts: SubscribeEventsOptions = {}): Promise<EventSubscription> {
    if (this.closing !== undefined) throw new Error("bus is closed");
    const ordered: Partial<OrderedConsumerOptions> = { filter_subjects: subjectFilter };
    if (opts.since !== undefined) ordered.opt_start_time = opts.since.toISOString();
    else ordered.deliver_policy = DeliverPolicy.New;
    const consumer = await this.js.consumers.get(this.streams.events, ordered);
    const messages: ConsumerMessages = await consumer.consume();
    const logger = this.logger.child({ subscription: subjectFilter });
    const loop = (async () => {
      try {
        for await (const m of messages) {
          let event: StateChangeEvent;
          try {
            event = fromBinary(StateChangeEventSchema, m.data);
          } catch (err) {
            logger.warn("undecodable event skipped", { subject: m.subject, err });
            continue;
          }
          try {
            await handler(event, { subject: m.subject, streamSequence: m.info.streamSequence });
          } catch (err) {
            logger.warn("event handler failed", { subject: m.subject, err });
          }
        }
      } catch (err) {
        logger.warn("event subscription ended", { err });
      }
    })();
    let stopping: Promise<void> | undefined;
    const sub: EventSubscription = {
      stop: () => {
        stopping ??= (async () => {
          await messages.close();
          await loop;
          // The ordered consumer is ephemeral; deleting it now saves the server its inactivity timeout.
          await consumer.delete().catch(() => false);
          this.subscriptions.delete(sub);
        })();
        return stopping;
      },
    };
    this.subscriptions.add(sub);
    return sub;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  // Order: stop taking work (consumers finish their in-flight handlers and flush acks), stop
  // watchers, then drain so pending publishes reach the server before the socket closes.
  private async doClose(): Promise<void> {
    await Promise.allSettled([...this.consumers].map((c) => c.stop()));
    await Promise.allSettled([...this.subscriptions].map((s) => s.stop()));
    if (!this.nc.isClosed()) await this.nc.drain();
  }
}

/** True when the server refused the request's subject to this user (also when wrapped as a cause). */
export function isPermissionViolation(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof PermissionViolationError) return true;
  }
  return false;
}

/** JetStream API error: stream name already in use with a different configuration. */
const STREAM_NAME_IN_USE = 10058;
