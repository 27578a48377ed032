import type { Logger } from "@sluice/domain";

/**
 * Wraps `fn` so it runs at most once; later calls return the first call's result (or rethrow
 * its error). Makes `stop()` idempotent: a second SIGTERM or a stop from two places is harmless.
 */
export function once<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  let state: { done: false } | { done: true; result: R } | { done: true; error: unknown; failed: true } = { done: false };
  return (...args: A): R => {
    if (!state.done) {
      try {
        state = { done: true, result: fn(...args) };
      } catch (error) {
        state = { done: true, error, failed: true };
      }
    }
    if ("failed" in state) throw state.error;
    return state.result;
  };
}

/** What `runService` needs from a started service. */
export interface StoppableService {
  /** Graceful stop within `deadlineMs`. */
  stop(deadlineMs: number): Promise<void>;
  /**
   * Optional: settles when the service ends by itself; a rejection (fatal error, e.g. a
   * `Teardown.fatal` naming the part that died) stops the process with exit code 1.
   */
  readonly closed?: Promise<unknown> | undefined;
}

/** The signals that start a graceful shutdown. */
export type ShutdownSignal = "SIGTERM" | "SIGINT";

/** The parts of `process` that `runService` uses (a test passes a stand-in). */
export interface ServiceHost {
  once(event: ShutdownSignal, listener: () => void): unknown;
  removeListener(event: ShutdownSignal, listener: () => void): unknown;
  exitCode: number | string | undefined;
  exit(code: number): void;
}

/** Extra time past the grace period before the process is forced to exit. */
export const FORCE_EXIT_MARGIN_MS = 2_000;

/**
 * Runs a service from `main.ts`: starts it, then on the first SIGTERM/SIGINT (or a fatal end of
 * `closed`) calls `stop(graceMs)`. Exit code: 0 after a clean stop, 1 when start, stop or the
 * service itself failed. After the first signal our listeners are removed, so a second signal
 * gets Node's default handling and kills the process at once (exit 128+signo). If stop overruns
 * the grace period by `FORCE_EXIT_MARGIN_MS`, the process exits with 1.
 * Resolves when the service has stopped (or failed to start).
 */
export async function runService(
  name: string,
  logger: Logger,
  start: () => Promise<StoppableService>,
  graceMs: number,
  host: ServiceHost = process,
): Promise<void> {
  const log = logger.child({ lifecycle: name });
  let service: StoppableService;
  try {
    service = await start();
  } catch (err) {
    log.error("service failed to start", { err });
    host.exitCode = 1;
    return;
  }
  log.info("service started");

  await new Promise<void>((resolve) => {
    const shutdown = once(async (reason: string, failed: boolean): Promise<void> => {
      host.removeListener("SIGTERM", onTerm);
      host.removeListener("SIGINT", onInt);
      log.info("service stopping", { reason, graceMs });
      const force = setTimeout(() => {
        log.error("shutdown overran its deadline; forcing exit", { graceMs });
        host.exit(1);
      }, graceMs + FORCE_EXIT_MARGIN_MS);
      force.unref();
      try {
        await service.stop(graceMs);
        host.exitCode = failed ? 1 : 0;
        log.info("service stopped");
      } catch (err) {
        host.exitCode = 1;
        log.error("service stop failed", { err });
      } finally {
        clearTimeout(force);
        resolve();
      }
    });
    const onTerm = (): void => void shutdown("SIGTERM", false);
    const onInt = (): void => void shutdown("SIGINT", false);
    host.once("SIGTERM", onTerm);
    host.once("SIGINT", onInt);
    service.closed?.then(
      () => void shutdown("service ended", false),
      (err: unknown) => {
        // The line names what failed (a ServiceFailure's message names the part that ended).
        log.error(`service failed: ${err instanceof Error ? err.message : String(err)}`, { err });
        void shutdown("service failed", true);
      },
    );
  });
}
