import { metrics } from "@opentelemetry/api";
import type { Attributes, Counter, Histogram, Meter, MeterProvider } from "@opentelemetry/api";

/**
 * Sluice's metric instruments, on `@opentelemetry/api` only. They record into whatever meter
 * provider is registered when a value is recorded: the API has no proxy meter provider, so an
 * instrument created before `startTelemetry` would otherwise stay a no-op for good.
 */

/** Instrument names, shared with dashboards and with @sluice/bus (which records `dlqMessages` itself). */
export const METRIC_NAMES = {
  executions: "sluice.executions",
  actionDuration: "sluice.action.duration",
  dispatchLatency: "sluice.dispatch.latency",
  dlqMessages: "sluice.dlq.messages",
  staleResults: "sluice.results.stale",
  jobsQueued: "sluice.jobs.queued",
  jobsQueuedOldestAge: "sluice.jobs.queued.oldest_age_seconds",
} as const;

/** Attributes of `sluice.results.stale`. */
export interface StaleResultAttributes {
  /** The runner pool of the result's subject. */
  readonly pool?: string | undefined;
}

/** One pool's queued jobs, as `observeQueuedJobs` reports them. */
export interface QueuedJobs {
  readonly pool: string;
  /** Jobs dispatched to the pool that no runner has started. */
  readonly count: number;
  /** Age of the oldest of them in seconds. */
  readonly oldestAgeSeconds: number;
}

/** Attributes of `sluice.executions`. */
export interface ExecutionAttributes {
  /** Final status: Succeeded, Failed, Stopped, Superseded, Cancelled. */
  readonly status: string;
  /** The pipeline, when the number of pipelines is small enough to be a dimension. */
  readonly pipeline?: string | undefined;
  /** What started it: StartPipelineExecution, Webhook, PollForSourceChanges… */
  readonly trigger?: string | undefined;
}

/** Attributes of `sluice.action.duration`. */
export interface ActionAttributes {
  /** Built-in provider name: Git, Commands, ObjectStore, Manual. */
  readonly provider: string;
  /** Succeeded or Failed. */
  readonly status: string;
  /** Source, Build, Test, Deploy, Approval. */
  readonly category?: string | undefined;
}

/** Attributes of `sluice.dispatch.latency`. */
export interface DispatchAttributes {
  readonly provider?: string | undefined;
  /** Runner pool (`default`). */
  readonly pool?: string | undefined;
}

/** Attributes of `sluice.dlq.messages`. */
export interface DlqAttributes {
  /** The stream the message was dead-lettered from, e.g. SLUICE_JOBS. */
  readonly stream: string;
}

/** A counter whose attributes are typed. */
export interface TypedCounter<A> {
  add(value: number, attributes: A): void;
}

/** A histogram whose attributes are typed. */
export interface TypedHistogram<A> {
  record(value: number, attributes: A): void;
}

/** The instruments a service records into (see `createMetrics`). */
export interface SluiceMetrics {
  /** `sluice.executions`: +1 when a pipeline execution reaches a final status (orchestrator). */
  readonly executions: TypedCounter<ExecutionAttributes>;
  /** `sluice.action.duration` (ms): one action attempt, start to result (runner, approval). */
  readonly actionDuration: TypedHistogram<ActionAttributes>;
  /**
   * `sluice.dispatch.latency` (ms): job published → job started by a runner, measured by the
   * runner from the stream's store time (`HandlerContext.publishedAt` of @sluice/bus) on first delivery.
   */
  readonly dispatchLatency: TypedHistogram<DispatchAttributes>;
  /**
   * `sluice.dlq.messages`: messages dead-lettered, by source stream. The bus's consume loop
   * already counts its own dead-letters (meter `@sluice/bus`); use this only for others.
   */
  readonly dlqMessages: TypedCounter<DlqAttributes>;
  /** `sluice.results.stale`: results refused as a stale attempt (orchestrator; see the domain's fencing.ts). */
  readonly staleResults: TypedCounter<StaleResultAttributes>;
  /**
   * Reports the gauges `sluice.jobs.queued` and `sluice.jobs.queued.oldest_age_seconds` (by
   * pool) from `read`, called at every collection; returns the function that stops it.
   */
  observeQueuedJobs(read: () => readonly QueuedJobs[]): () => void;
}

// Actions run from seconds to an hour; dispatch should take milliseconds but may queue for minutes.
const ACTION_DURATION_BUCKETS_MS = [100, 500, 1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000];
const DISPATCH_LATENCY_BUCKETS_MS = [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000];

interface Instruments {
  readonly executions: Counter;
  readonly actionDuration: Histogram;
  readonly dispatchLatency: Histogram;
  readonly dlqMessages: Counter;
  readonly staleResults: Counter;
}

function instrumentsOf(meter: Meter, queued: ReadonlySet<() => readonly QueuedJobs[]>): Instruments {
  const count = meter.createObservableGauge(METRIC_NAMES.jobsQueued, { description: "Jobs dispatched to a runner pool that no runner has started", unit: "{job}" });
  const age = meter.createObservableGauge(METRIC_NAMES.jobsQueuedOldestAge, { description: "Age of the oldest job no runner of the pool has started", unit: "s" });
  meter.addBatchObservableCallback(
    (observer) => {
      for (const read of queued) {
        for (const pool of read()) {
          observer.observe(count, pool.count, { pool: pool.pool });
          observer.observe(age, pool.oldestAgeSeconds, { pool: pool.pool });
        }
      }
    },
    [count, age],
  );
  return {
    executions: meter.createCounter(METRIC_NAMES.executions, { description: "Pipeline executions that reached a final status", unit: "{execution}" }),
    actionDuration: meter.createHistogram(METRIC_NAMES.actionDuration, {
      description: "Duration of one action attempt",
      unit: "ms",
      advice: { explicitBucketBoundaries: ACTION_DURATION_BUCKETS_MS },
    }),
    dispatchLatency: meter.createHistogram(METRIC_NAMES.dispatchLatency, {
      description: "Time from a job's publication to its start on a runner",
      unit: "ms",
      advice: { explicitBucketBoundaries: DISPATCH_LATENCY_BUCKETS_MS },
    }),
    dlqMessages: meter.createCounter(METRIC_NAMES.dlqMessages, { description: "Messages moved to the dead-letter stream", unit: "{message}" }),
    staleResults: meter.createCounter(METRIC_NAMES.staleResults, { description: "Results refused because they came from a stale attempt", unit: "{result}" }),
  };
}

/** Copies the defined attributes: OTel attribute values must not be undefined. */
function attributesOf(attrs: object): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") out[key] = value;
  }
  return out;
}

/**
 * The Sluice instruments under meter `meterName` (e.g. "@sluice/orchestrator"). Safe to call at
 * any time: values go to the meter provider registered when they are recorded, and are dropped
 * while none is (no `startTelemetry`, or no collector configured).
 */
export function createMetrics(meterName: string, meterVersion?: string): SluiceMetrics {
  if (meterName === "") throw new RangeError("meterName: must not be empty");
  let bound: { provider: MeterProvider; instruments: Instruments } | undefined;
  const queued = new Set<() => readonly QueuedJobs[]>();
  const current = (): Instruments => {
    const provider = metrics.getMeterProvider();
    if (bound?.provider !== provider) bound = { provider, instruments: instrumentsOf(provider.getMeter(meterName, meterVersion), queued) };
    return bound.instruments;
  };
  // A value that cannot be recorded (NaN, negative) is dropped rather than thrown: metrics never fail work.
  const recordable = (value: number): boolean => Number.isFinite(value) && value >= 0;
  return {
    executions: { add: (value, attrs) => current().executions.add(value, attributesOf(attrs)) },
    actionDuration: {
      record: (ms, attrs) => {
        if (recordable(ms)) current().actionDuration.record(ms, attributesOf(attrs));
      },
    },
    dispatchLatency: {
      record: (ms, attrs) => {
        if (recordable(ms)) current().dispatchLatency.record(ms, attributesOf(attrs));
      },
    },
    dlqMessages: { add: (value, attrs) => current().dlqMessages.add(value, attributesOf(attrs)) },
    staleResults: { add: (value, attrs) => current().staleResults.add(value, attributesOf(attrs)) },
    observeQueuedJobs(read) {
      // Binds the gauges to the provider registered now (startTelemetry runs first); a later
      // provider gets them at its first recorded value.
      current();
      const entry = (): readonly QueuedJobs[] => read();
      queued.add(entry);
      return () => queued.delete(entry);
    },
  };
}

/**
 * Milliseconds from `since` to `now`, clamped at 0 (clocks of publisher, NATS server and runner
 * differ a little); undefined when `since` is unknown. For `dispatchLatency`.
 */
export function elapsedMs(since: Date | undefined, now: Date = new Date()): number | undefined {
  if (since === undefined || Number.isNaN(since.getTime())) return undefined;
  return Math.max(0, now.getTime() - since.getTime());
}
