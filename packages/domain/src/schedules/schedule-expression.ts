// Schedule expressions of pipelines' `schedules`: crontab's five fields read in an IANA time zone,
// or EventBridge's `rate(N unit)`. Pure: the source poller asks when a schedule is next due.
import { Cron } from "croner";

/** A parsed schedule: the first tick strictly after a moment (epoch ms). */
export interface Schedule {
  next: (afterMs: number) => number | undefined;
}

const RATE = /^rate\((\d{1,6}) (minute|minutes|hour|hours|day|days)\)$/;
const UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * The schedule of an expression, or the problem with it (a message for the field). Cron fields
 * are crontab(5)'s, five of them: croner would read six as seconds first, and AWS's
 * `cron(... year)` numbers days of the week from Sunday = 1, so neither is accepted as is.
 * `rate()` ticks count from `anchorMs` (when the schedule was declared).
 */
export function parseSchedule(expression: string, timeZone: string, anchorMs = 0): Schedule | { problem: string; field: "expression" | "timeZone" } {
  const rate = RATE.exec(expression);
  if (rate !== null) {
    const n = Number(rate[1]);
    const unit = (rate[2] ?? "").replace(/s$/, "");
    if (n < 1) return { problem: "rate() needs a value of at least 1", field: "expression" };
    if ((n === 1) !== !(rate[2] ?? "").endsWith("s")) return { problem: `write rate(1 ${unit}) for one and rate(N ${unit}s) for more, as EventBridge does`, field: "expression" };
    if (timeZone !== "") return { problem: "a rate() schedule takes no time zone", field: "timeZone" };
    const every = n * (UNIT_MS[unit] ?? 0);
    return { next: (afterMs) => anchorMs + (Math.floor((afterMs - anchorMs) / every) + 1) * every };
  }
  if (expression.startsWith("cron(")) {
    return { problem: "AWS cron(...) is not supported: give the five crontab fields (minute hour day-of-month month day-of-week), e.g. \"0 9 * * 1-5\"", field: "expression" };
  }
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) return { problem: `a cron expression has 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`, field: "expression" };
  if (timeZone !== "" && !isTimeZone(timeZone)) return { problem: `"${timeZone}" is not an IANA time zone (e.g. Europe/Berlin, America/New_York)`, field: "timeZone" };
  let cron: Cron;
  try {
    cron = new Cron(fields.join(" "), { timezone: timeZone === "" ? "UTC" : timeZone, paused: true });
  } catch (err) {
    return { problem: (err instanceof Error ? err.message : String(err)).replace(/^CronPattern: /, ""), field: "expression" };
  }
  if (cron.nextRun(new Date(anchorMs)) === null) return { problem: "never comes due", field: "expression" };
  return { next: (afterMs) => cron.nextRun(new Date(afterMs))?.getTime() };
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
