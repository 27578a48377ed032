import type { Logger } from "@sluice/domain";

/** One step of a teardown; `deadlineMs` is what is left of the teardown's one deadline. */
export type TeardownStep = (deadlineMs: number) => unknown;

/** Rejection of `Teardown.run` when steps failed; each was already logged with its name. */
export class TeardownError extends Error {
  constructor(readonly steps: readonly string[]) {
    super(`teardown steps failed: ${steps.join(", ")}`);
    this.name = "TeardownError";
  }
}

/** Rejection of `Teardown.fatal`: a part of the service ended on its own and will not come back. */
export class ServiceFailure extends Error {
  constructor(
    readonly part: string,
    cause: unknown,
  ) {
    super(cause === undefined ? `${part} ended` : `${part} ended: ${cause instanceof Error ? cause.message : JSON.stringify(cause)}`, { cause });
    this.name = "ServiceFailure";
  }
}

/**
 * How a service stops: what start opened, closed in reverse order. A service adds a step as soon
 * as it has opened something, so the same teardown stops a running service and unwinds a start
 * that failed halfway.
 */
export interface Teardown {
  /** Registers a step; steps run most recently added first. */
  add(name: string, step: TeardownStep): void;
  /**
   * Runs every step once, most recently added first, each given what is left of one shared
   * `deadlineMs`. A failing step is logged with its name and the next one still runs; once all
   * ran, rejects with a `TeardownError` naming the failed ones. Idempotent: later calls return
   * the first call's promise.
   */
  run(deadlineMs: number): Promise<void>;
  /** True once `run` was called. */
  readonly started: boolean;
  /**
   * Watches a part that should live as long as the service (a connection, a loop): when `ended`
   * settles before the teardown started, `fatal` rejects with a `ServiceFailure` naming it.
   */
  watch(part: string, ended: Promise<unknown>): void;
  /**
   * Rejects when a watched part ended on its own; never resolves. A service returns it as its
   * `closed`, so `runService` stops the process naming what failed.
   */
  readonly fatal: Promise<never>;
}

/** Options of `createTeardown`. */
export interface TeardownOptions {
  readonly logger: Logger;
  /** Epoch ms, for the shared deadline. @default Date.now */
  readonly now?: () => number;
}

/** Creates an empty teardown (see `Teardown`). */
export function createTeardown(opts: TeardownOptions): Teardown {
  const { logger } = opts;
  const now = opts.now ?? Date.now;
  const steps: { name: string; step: TeardownStep }[] = [];
  let running: Promise<void> | undefined;
  let fail: (err: ServiceFailure) => void = () => undefined;
  const fatal = new Promise<never>((_, reject) => (fail = reject));
  // Handled here, so a service run without `runService` (a test) does not crash on it.
  fatal.catch(() => undefined);

  const runAll = async (deadlineMs: number): Promise<void> => {
    const end = now() + deadlineMs;
    const failed: string[] = [];
    for (const { name, step } of [...steps].reverse()) {
      try {
        await step(Math.max(0, end - now()));
      } catch (err) {
        failed.push(name);
        logger.error("shutdown step failed", { step: name, err: err instanceof Error ? err.message : String(err) });
      }
    }
    if (failed.length > 0) throw new TeardownError(failed);
  };

  return {
    add(name, step) {
      steps.push({ name, step });
    },
    run(deadlineMs) {
      running ??= runAll(deadlineMs);
      return running;
    },
    get started() {
      return running !== undefined;
    },
    watch(part, ended) {
      const onEnd = (cause: unknown): void => {
        if (running === undefined) fail(new ServiceFailure(part, cause));
      };
      ended.then(
        (value) => onEnd(value instanceof Error ? value : undefined),
        (err: unknown) => onEnd(err),
      );
    },
    fatal,
  };
}
