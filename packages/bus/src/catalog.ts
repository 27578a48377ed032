import { RetentionPolicy, StorageType, DiscardPolicy } from "@nats-io/jetstream";
import type { StreamConfig } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";

/**
 * The JetStream catalog: every stream Sluice uses, its subjects and limits, and the
 * subject builders. Declared once here so publishers and consumers cannot disagree
 * on a subject, and so `ensureStreams()` can create everything idempotently.
 */

/** Default number of result/source partitions (hash(pipeline) mod N). */
export const DEFAULT_PARTITIONS = 8;

/** JetStream de-duplicates a repeated `Nats-Msg-Id` within this window. */
export const DUPLICATE_WINDOW_MS = 120_000;

const DAY_MS = 24 * 60 * 60 * 1000;
/** How long state-change events are kept for late watchers and audits. */
export const EVENTS_MAX_AGE_MS = 7 * DAY_MS;
/** How long dead letters are kept for inspection and replay. */
export const DLQ_MAX_AGE_MS = 14 * DAY_MS;
/**
 * How long action log lines are kept on the bus: long enough to follow or replay a running
 * action; a finished action's whole log is read from the artifact store.
 */
export const LOGS_MAX_AGE_MS = DAY_MS;
/** The most bytes of log lines the bus keeps; beyond it the oldest lines go (discard old). */
export const LOGS_MAX_BYTES = 1024 * 1024 * 1024;

/** Logical stream keys; `Catalog.streams[key]` is the (possibly prefixed) stream name. */
export type StreamKey = "jobs" | "results" | "sources" | "events" | "dlq" | "logs";

/** Every stream key, in creation order. */
export const STREAM_KEYS: readonly StreamKey[] = ["jobs", "results", "sources", "events", "dlq", "logs"];

/** The pool token of custom action types' jobs; no runner pool may be named so. */
export const CUSTOM_JOBS_POOL = "custom";

/** Control kinds of `sluice.control.<kind>` (core NATS, not JetStream: fire-and-forget signals to runners). */
export type ControlKind = "cancel";

/**
 * Who publishes a result: the runners of a pool, or the approval service. It is part of the
 * result's subject, where NATS permissions enforce it, because a consumer cannot otherwise tell
 * who published a message.
 */
export type ResultPublisher = { readonly runner: string } | "approval";

/** Event kinds of `sluice.events.<pipeline>.<kind>` (EventBridge's three detail types + declaration changes). */
export type EventKind = "pipeline" | "stage" | "action" | "declaration";

/** Resolved stream names, e.g. `{ jobs: "SLUICE_JOBS" }` or `{ jobs: "T1_SLUICE_JOBS" }` with prefix `t1`. */
export type StreamNames = Readonly<Record<StreamKey, string>>;

/** Subject builders bound to one prefix and partition count. */
export interface Subjects {
  /** `sluice.jobs.<pool>.<category>.<provider>`; every token sanitized. */
  jobSubject(pool: string, category: string, provider: string): string;
  /**
   * `sluice.jobs.custom.<category>.<provider>.<version>`: a job of a custom action type, taken by
   * the orchestrator's JobService for external job workers. Its five tokens never equal a runner
   * pool's four-token subject, and the pool name `custom` is reserved (see `CUSTOM_JOBS_POOL`).
   */
  customJobSubject(category: string, provider: string, version: string): string;
  /**
   * `sluice.results.<partitionOf(pipeline)>.runner.<pool>` or `sluice.results.<partition>.approval`:
   * the publisher's identity is in the subject (see `ResultPublisher`).
   */
  resultSubject(pipelineName: string, publisher: ResultPublisher): string;
  /** `sluice.results.*.runner.<pool>` or `sluice.results.*.approval`: every result one publisher may send. */
  resultPublisherFilter(publisher: ResultPublisher): string;
  /** `sluice.sources.<partitionOf(pipeline)>`. */
  sourceSubject(pipelineName: string): string;
  /** `sluice.events.<pipeline>.<kind>`; dots in the pipeline name become `_`. */
  eventSubject(pipelineName: string, kind: EventKind): string;
  /** `sluice.dlq.<stream>` where `stream` is the resolved name of the stream the message came from. */
  dlqSubject(streamName: string): string;
  /** `sluice.results.<partition>.>`: every result of one partition, whoever published it. */
  resultPartitionSubject(partition: number): string;
  /** `sluice.events.<pipeline>.>` for one pipeline, or `sluice.events.>` for all. */
  eventFilter(pipelineName?: string): string;
  /** `sluice.events.*.<kind>`: one kind of event across all pipelines. */
  eventKindFilter(kind: EventKind): string;
  /**
   * `sluice.logs.<pipeline>.<actionExecutionId>`: the log lines of one action execution (every
   * attempt); dots in either become `_`.
   */
  logSubject(pipelineName: string, actionExecutionId: string): string;
  /** The wildcard subject of a stream, e.g. `sluice.jobs.>`. */
  streamFilter(key: StreamKey): string;
  /**
   * `sluice.control.<kind>`: a core NATS subject (no stream captures it), e.g. `sluice.control.cancel`
   * on which the orchestrator asks every runner to cancel a job.
   */
  controlSubject(kind: ControlKind): string;
}

/** Options of `createCatalog`. */
export interface CatalogOptions {
  /**
   * Isolates a test's streams and subjects: prefix `t1` gives stream `T1_SLUICE_JOBS` with
   * subjects `t1.sluice.jobs.>`. Letters, digits, `_` and `-` only.
   */
  readonly prefix?: string | undefined;
  /** Partition count for results and sources (default 8). */
  readonly partitions?: number | undefined;
}

/** The streams and subjects of one deployment (or one test). */
export interface Catalog {
  readonly prefix: string;
  readonly partitions: number;
  readonly streams: StreamNames;
  readonly subjects: Subjects;
  /** Full stream configurations, ready for `jsm.streams.add/update`. */
  readonly streamConfigs: readonly StreamDefinition[];
}

/** One stream's configuration; `config.name` is the resolved name. */
export interface StreamDefinition {
  readonly key: StreamKey;
  readonly config: Partial<StreamConfig> & { name: string; subjects: string[] };
}

const PREFIX_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * Makes a string safe as one subject token: `.` (token separator), the wildcards `*` and `>`,
 * and whitespace all become `_`; an empty string becomes `_` (empty tokens are invalid).
 */
export function sanitizeToken(value: string): string {
  const cleaned = value.replace(/[.*>\s]/g, "_");
  return cleaned === "" ? "_" : cleaned;
}

/**
 * The partition of a pipeline: 32-bit FNV-1a of its UTF-8 name, mod `partitions`. Stable across
 * processes and releases, so a pipeline's results and source changes always carry the same
 * partition token. Nothing consumes by partition today: each orchestrator consumer filters on
 * every partition and is shared by all replicas.
 */
export function partitionOf(pipelineName: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions: must be a positive integer, got ${partitions}`);
  }
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(pipelineName, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

function publisherTokens(publisher: ResultPublisher): string {
  return publisher === "approval" ? "approval" : `runner.${sanitizeToken(publisher.runner)}`;
}

/** Builds the catalog for a prefix and partition count (defaults: no prefix, 8 partitions). */
export function createCatalog(opts: CatalogOptions = {}): Catalog {
  const prefix = opts.prefix ?? "";
  if (prefix !== "" && !PREFIX_PATTERN.test(prefix)) {
    throw new RangeError(`prefix: must match ${PREFIX_PATTERN.source}, got "${prefix}"`);
  }
  const partitions = opts.partitions ?? DEFAULT_PARTITIONS;
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions: must be a positive integer, got ${partitions}`);
  }
  const subjectRoot = prefix === "" ? "sluice" : `${prefix}.sluice`;
  const streamName = (base: string): string => (prefix === "" ? base : `${prefix.toUpperCase()}_${base}`);
  const streams: StreamNames = {
    jobs: streamName("SLUICE_JOBS"),
    results: streamName("SLUICE_RESULTS"),
    sources: streamName("SLUICE_SOURCES"),
    events: streamName("SLUICE_EVENTS"),
    dlq: streamName("SLUICE_DLQ"),
    logs: streamName("SLUICE_LOGS"),
  };
  const checkPartition = (partition: number): number => {
    if (!Number.isInteger(partition) || partition < 0 || partition >= partitions) {
      throw new RangeError(`partition: must be an integer in [0, ${partitions}), got ${partition}`);
    }
    return partition;
  };
  const subjects: Subjects = {
    jobSubject: (pool, category, provider) =>
      `${subjectRoot}.jobs.${sanitizeToken(pool)}.${sanitizeToken(category)}.${sanitizeToken(provider)}`,
    customJobSubject: (category, provider, version) =>
      `${subjectRoot}.jobs.${CUSTOM_JOBS_POOL}.${sanitizeToken(category)}.${sanitizeToken(provider)}.${sanitizeToken(version)}`,
    resultSubject: (pipelineName, publisher) => `${subjectRoot}.results.${partitionOf(pipelineName, partitions)}.${publisherTokens(publisher)}`,
    resultPublisherFilter: (publisher) => `${subjectRoot}.results.*.${publisherTokens(publisher)}`,
    sourceSubject: (pipelineName) => `${subjectRoot}.sources.${partitionOf(pipelineName, partitions)}`,
    eventSubject: (pipelineName, kind) => `${subjectRoot}.events.${sanitizeToken(pipelineName)}.${kind}`,
    dlqSubject: (name) => `${subjectRoot}.dlq.${sanitizeToken(name)}`,
    resultPartitionSubject: (partition) => `${subjectRoot}.results.${checkPartition(partition)}.>`,
    eventFilter: (pipelineName) =>
      pipelineName === undefined ? `${subjectRoot}.events.>` : `${subjectRoot}.events.${sanitizeToken(pipelineName)}.>`,
    eventKindFilter: (kind) => `${subjectRoot}.events.*.${kind}`,
    logSubject: (pipelineName, actionExecutionId) => `${subjectRoot}.logs.${sanitizeToken(pipelineName)}.${sanitizeToken(actionExecutionId)}`,
    streamFilter: (key) => `${subjectRoot}.${key}.>`,
    controlSubject: (kind) => `${subjectRoot}.control.${kind}`,
  };
  const duplicateWindow = nanos(DUPLICATE_WINDOW_MS);
  const base = { storage: StorageType.File, num_replicas: 1, duplicate_window: duplicateWindow };
  // Work queues delete a message once acked, so each job/result/source change is handled once;
  // events and dead letters are kept by age for watchers and inspection.
  const workQueue = (key: StreamKey): StreamDefinition => ({
    key,
    config: { ...base, name: streams[key], subjects: [subjects.streamFilter(key)], retention: RetentionPolicy.Workqueue },
  });
  const limits = (key: StreamKey, maxAgeMs: number, maxBytes?: number): StreamDefinition => ({
    key,
    config: {
      ...base,
      name: streams[key],
      subjects: [subjects.streamFilter(key)],
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(maxAgeMs),
      ...(maxBytes === undefined ? {} : { max_bytes: maxBytes }),
    },
  });
  const streamConfigs: StreamDefinition[] = [
    workQueue("jobs"),
    workQueue("results"),
    workQueue("sources"),
    limits("events", EVENTS_MAX_AGE_MS),
    limits("dlq", DLQ_MAX_AGE_MS),
    // Log lines: kept by age and size for live tails; the whole log is stored in MinIO.
    limits("logs", LOGS_MAX_AGE_MS, LOGS_MAX_BYTES),
  ];
  return { prefix, partitions, streams, subjects, streamConfigs };
}

const defaultCatalog = createCatalog();

/** `sluice.jobs.<pool>.<category>.<provider>` without prefix; use `bus.subjects` when a prefix is set. */
export function jobSubject(pool: string, category: string, provider: string): string {
  return defaultCatalog.subjects.jobSubject(pool, category, provider);
}

/** `sluice.results.<partition>.<publisher>` (8 partitions, no prefix); use `bus.subjects` when a prefix is set. */
export function resultSubject(pipelineName: string, publisher: ResultPublisher): string {
  return defaultCatalog.subjects.resultSubject(pipelineName, publisher);
}

/** `sluice.sources.<partition>` (8 partitions, no prefix); use `bus.subjects` when a prefix is set. */
export function sourceSubject(pipelineName: string): string {
  return defaultCatalog.subjects.sourceSubject(pipelineName);
}

/** `sluice.events.<pipeline>.<kind>` without prefix; use `bus.subjects` when a prefix is set. */
export function eventSubject(pipelineName: string, kind: EventKind): string {
  return defaultCatalog.subjects.eventSubject(pipelineName, kind);
}

/** `sluice.dlq.<stream>` without prefix; use `bus.subjects` when a prefix is set. */
export function dlqSubject(streamName: string): string {
  return defaultCatalog.subjects.dlqSubject(streamName);
}

/** `sluice.control.<kind>` without prefix; use `bus.subjects` when a prefix is set. */
export function controlSubject(kind: ControlKind): string {
  return defaultCatalog.subjects.controlSubject(kind);
}
