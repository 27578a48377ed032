/** The longest a failing remote waits between polls. */
export const MAX_BACKOFF_MS = 30 * 60_000;

/**
 * How long to wait after the `failures`-th failure in a row: the poll interval doubled per
 * failure, capped at `maxMs`, then drawn from its upper half so replicas and sources that
 * failed together (a host down) do not come back in lockstep.
 */
export function backoffMs(failures: number, intervalMs: number, maxMs: number = MAX_BACKOFF_MS, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceiling = Math.min(maxMs, intervalMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
