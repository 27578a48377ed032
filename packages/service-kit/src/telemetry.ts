import { DiagLogLevel, context, diag, metrics, propagation, trace } from "@opentelemetry/api";
import type { DiagLogger } from "@opentelemetry/api";
import type { IMetricReader } from "@opentelemetry/sdk-metrics";
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { Logger } from "@sluice/domain";

/**
 * The OpenTelemetry SDK of a service process. Packages only use `@opentelemetry/api`; this module
 * (called once from `main.ts`) installs what makes those calls real: a tracer provider, an
 * AsyncLocalStorage context manager, the W3C propagators and, with a collector, exporters.
 * The SDK packages are imported when `startTelemetry` runs, not with @sluice/service-kit: every
 * service test imports this package, and only main.ts needs the (large) SDK.
 */

/** Options of `startTelemetry`. */
export interface TelemetryOptions {
  /** `service.name` of every span and metric, e.g. "orchestrator". */
  readonly serviceName: string;
  /** `service.version`, when known. */
  readonly serviceVersion?: string | undefined;
  /**
   * Base URL of an OTLP/HTTP collector (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://otel:4318`);
   * `/v1/traces` and `/v1/metrics` are appended. Unset: spans are created and propagated (trace
   * ids in logs and across gRPC/NATS) but exported nowhere, and metrics are not collected.
   */
  readonly otlpEndpoint?: string | undefined;
  /** Also print finished spans to stdout (local debugging; mixes with the JSON logs). @default false */
  readonly consoleExporter?: boolean | undefined;
  /** How often metrics are pushed to the collector. @default 60000 */
  readonly metricExportIntervalMs?: number | undefined;
  /** Upper bound of `shutdown()`; telemetry still unsent then is dropped. @default 5000 */
  readonly shutdownTimeoutMs?: number | undefined;
  /** Receives the SDK's own warnings and errors (failed exports), so they show up as log lines. */
  readonly logger?: Logger | undefined;
  /** Extra span processors, e.g. an in-memory exporter in tests. */
  readonly spanProcessors?: readonly SpanProcessor[] | undefined;
  /** Extra metric readers, e.g. an in-memory reader in tests. */
  readonly metricReaders?: readonly IMetricReader[] | undefined;
}

/** The running SDK. */
export interface Telemetry {
  /**
   * Flushes pending spans and metrics (bounded by `shutdownTimeoutMs`), shuts the SDK down and
   * unregisters its global providers. Never rejects; idempotent. Call it last, after the service stopped.
   */
  shutdown(): Promise<void>;
}

/** Default push interval of metrics. */
export const DEFAULT_METRIC_EXPORT_INTERVAL_MS = 60_000;
/** Default bound of `Telemetry.shutdown`. */
export const DEFAULT_TELEMETRY_SHUTDOWN_TIMEOUT_MS = 5_000;

/**
 * Starts the OpenTelemetry SDK for this process and registers it globally; awaited once in
 * `main.ts` before the service starts. Never fails because a collector is missing or
 * unreachable: exporters connect lazily, and a failed export is only reported (to `logger`,
 * when given). Rejects only for bad options (`otlpEndpoint` not an http(s) URL, empty `serviceName`).
 */
export async function startTelemetry(opts: TelemetryOptions): Promise<Telemetry> {
  if (opts.serviceName === "") throw new RangeError("serviceName: must not be empty");
  const endpoint = opts.otlpEndpoint === undefined || opts.otlpEndpoint === "" ? undefined : signalUrl(opts.otlpEndpoint);
  const [sdkNode, core, metricExporter, traceExporter, resources, sdkMetrics, sdkTrace] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/core"),
    import("@opentelemetry/exporter-metrics-otlp-http"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/sdk-metrics"),
    import("@opentelemetry/sdk-trace-base"),
  ]);
  if (opts.logger !== undefined) diag.setLogger(diagLogger(opts.logger), DiagLogLevel.WARN);

  const timeoutMs = opts.shutdownTimeoutMs ?? DEFAULT_TELEMETRY_SHUTDOWN_TIMEOUT_MS;
  // An export (with its retries) never outlives the shutdown bound, so a dead collector cannot
  // keep the process alive after shutdown() gave up on it.
  const exporterTimeoutMillis = Math.min(timeoutMs, 10_000);
  const spanProcessors: SpanProcessor[] = [...(opts.spanProcessors ?? [])];
  if (endpoint !== undefined) {
    spanProcessors.push(new sdkTrace.BatchSpanProcessor(new traceExporter.OTLPTraceExporter({ url: endpoint("traces"), timeoutMillis: exporterTimeoutMillis })));
  }
  if (opts.consoleExporter === true) spanProcessors.push(new sdkTrace.SimpleSpanProcessor(new sdkTrace.ConsoleSpanExporter()));
  // NodeSDK registers a tracer provider only when it has a processor. Without one the API's
  // no-op tracer would hand out invalid span contexts, and no trace id would ever propagate.
  if (spanProcessors.length === 0) spanProcessors.push(new sdkTrace.NoopSpanProcessor());

  const metricReaders: IMetricReader[] = [...(opts.metricReaders ?? [])];
  if (endpoint !== undefined) {
    const interval = opts.metricExportIntervalMs ?? DEFAULT_METRIC_EXPORT_INTERVAL_MS;
    metricReaders.push(
      new sdkMetrics.PeriodicExportingMetricReader({
        exporter: new metricExporter.OTLPMetricExporter({ url: endpoint("metrics"), timeoutMillis: exporterTimeoutMillis }),
        // The reader requires timeout <= interval.
        exportTimeoutMillis: Math.min(exporterTimeoutMillis, interval),
        exportIntervalMillis: interval,
      }),
    );
  }

  const attributes: Record<string, string> = {};
  if (opts.serviceVersion !== undefined) attributes["service.version"] = opts.serviceVersion;
  const sdk = new sdkNode.NodeSDK({
    serviceName: opts.serviceName,
    resource: resources.defaultResource().merge(resources.resourceFromAttributes(attributes)),
    spanProcessors,
    // Explicit (possibly empty) lists: NodeSDK would otherwise build OTLP exporters from
    // OTEL_* variables on its own, pointing at localhost when nothing is configured.
    metricReaders,
    logRecordProcessors: [],
    instrumentations: [],
    // W3C trace context (what @sluice/grpc and @sluice/bus read and write) plus baggage.
    textMapPropagator: new core.CompositePropagator({ propagators: [new core.W3CTraceContextPropagator(), new core.W3CBaggagePropagator()] }),
  });
  sdk.start();

  let stopping: Promise<void> | undefined;
  return {
    shutdown() {
      stopping ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), timeoutMs);
          timer.unref();
        });
        try {
          const outcome = await Promise.race([sdk.shutdown().then(() => "done" as const), deadline]);
          if (outcome === "timeout") opts.logger?.warn("telemetry shutdown timed out; unsent telemetry dropped", { timeoutMs });
        } catch (err) {
          opts.logger?.warn("telemetry shutdown failed", { err });
        } finally {
          clearTimeout(timer);
          // Unregister, so a later startTelemetry in the same process (tests) can register again.
          trace.disable();
          metrics.disable();
          propagation.disable();
          context.disable();
          if (opts.logger !== undefined) diag.disable();
        }
      })();
      return stopping;
    },
  };
}

/** `base` + `/v1/<signal>`, the OTLP/HTTP convention for OTEL_EXPORTER_OTLP_ENDPOINT. */
function signalUrl(base: string): (signal: "traces" | "metrics") => string {
  if (!URL.canParse(base) || !/^https?:$/.test(new URL(base).protocol)) {
    throw new RangeError(`otlpEndpoint: must be an http(s) URL, got "${base}"`);
  }
  const trimmed = base.replace(/\/+$/, "");
  return (signal) => `${trimmed}/v1/${signal}`;
}

/** Routes the SDK's diagnostics to the service logger with a constant message. */
function diagLogger(logger: Logger): DiagLogger {
  const fields = (message: string, args: unknown[]): Record<string, unknown> => ({ detail: message, args: args.map(describe) });
  return {
    error: (message, ...args) => logger.warn("opentelemetry error", fields(message, args)),
    warn: (message, ...args) => logger.warn("opentelemetry warning", fields(message, args)),
    info: (message, ...args) => logger.info("opentelemetry info", fields(message, args)),
    debug: (message, ...args) => logger.debug("opentelemetry debug", fields(message, args)),
    verbose: (message, ...args) => logger.debug("opentelemetry debug", fields(message, args)),
  };
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (typeof value !== "object" || value === null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
