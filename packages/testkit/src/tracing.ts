// OpenTelemetry plumbing for tests of instrumentation: a context manager that keeps the active
// span across `await` and a real SDK tracer provider recording spans in memory. main.ts registers
// the real SDK through @sluice/service-kit; tests register these instead.
import { AsyncLocalStorage } from "node:async_hooks";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import type { Context, ContextManager } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";

/**
 * A minimal AsyncLocalStorage context manager: the API's active span survives `await`, as with
 * the Node SDK. Register it with `context.setGlobalContextManager(new AlsContextManager())`.
 */
export class AlsContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.als.disable();
    return this;
  }
}

/** A tracer provider whose spans end up in memory. */
export interface InMemoryTracing {
  readonly exporter: InMemorySpanExporter;
  /** Not registered: `trace.setGlobalTracerProvider(tracing.provider)`. */
  readonly provider: BasicTracerProvider;
  /** Every span ended so far, after flushing the provider. */
  finishedSpans(): Promise<ReadableSpan[]>;
}

/** A real SDK tracer provider exporting every span, as it ends, to an in-memory exporter. */
export function inMemoryTracing(): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return {
    exporter,
    provider,
    async finishedSpans() {
      await provider.forceFlush();
      return exporter.getFinishedSpans();
    },
  };
}
