import type { Logger } from "@sluice/domain";

/** A periodic background task. */
export interface Sweeper {
  /** Stops the timer and waits for a run in progress; idempotent. */
  stop(): Promise<void>;
}

/**
 * Runs `fn` every `everyMs`, never two runs at once (a slow run skips ticks).
 * Failures are logged and the next tick tries again. The timer is unref'd so
 * it never keeps a process alive on its own.
 */
export function startSweeper(name: string, everyMs: number, fn: () => Promise<unknown>, logger: Logger): Sweeper {
  let running: Promise<void> | undefined;
  let stopped = false;
  const timer = setInterval(() => {
    if (running !== undefined || stopped) return;
    running = fn()
      .then(
        () => undefined,
        (err: unknown) => logger.warn("sweep failed", { sweeper: name, error: err instanceof Error ? err.message : String(err) }),
      )
      .finally(() => {
        running = undefined;
      });
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
