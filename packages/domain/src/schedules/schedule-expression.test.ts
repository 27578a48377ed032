import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Schedule } from "./schedule-expression.js";
import { parseSchedule } from "./schedule-expression.js";

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | undefined): string => new Date(ms ?? Number.NaN).toISOString();

function schedule(expression: string, timeZone = "", anchorMs = 0): Schedule {
  const parsed = parseSchedule(expression, timeZone, anchorMs);
  if ("problem" in parsed) throw new Error(parsed.problem);
  return parsed;
}

describe("cron schedules", () => {
  it("reads the five crontab fields in the given time zone", () => {
    const weekdays = schedule("0 9 * * 1-5", "Europe/Berlin");
    // Friday 19:00 UTC → Monday 09:00 in Berlin (08:00 UTC in winter).
    expect(iso(weekdays.next(at("2026-12-04T19:00:00Z")))).toBe("2026-12-07T08:00:00.000Z");
    // Summer time: 09:00 in Berlin is 07:00 UTC.
    expect(iso(weekdays.next(at("2026-07-01T12:00:00Z")))).toBe("2026-07-02T07:00:00.000Z");
    expect(iso(schedule("0 9 * * 1-5").next(at("2026-12-04T19:00:00Z")))).toBe("2026-12-07T09:00:00.000Z");
  });

  it("gives the tick after a moment that is itself a tick", () => {
    expect(iso(schedule("*/15 * * * *").next(at("2026-12-04T10:15:00Z")))).toBe("2026-12-04T10:30:00.000Z");
  });

  it("always moves forward, to a moment the expression matches", () => {
    const every = schedule("7 */3 * * *", "America/New_York");
    fc.assert(
      fc.property(fc.integer({ min: at("2020-01-01T00:00:00Z"), max: at("2030-01-01T00:00:00Z") }), (t) => {
        const next = every.next(t);
        expect(next).toBeGreaterThan(t);
        expect(new Date(next ?? 0).getUTCMinutes()).toBe(7);
        expect(next! - t).toBeLessThanOrEqual(4 * 3_600_000);
      }),
      { numRuns: 200 },
    );
  });

  it("names the problem of a bad expression or time zone", () => {
    expect(parseSchedule("0 9 * *", "")).toEqual({ problem: "a cron expression has 5 fields (minute hour day-of-month month day-of-week), got 4", field: "expression" });
    // Six fields would be read as seconds first by the cron library: refused rather than misread.
    expect(parseSchedule("0 12 * * ? *", "")).toMatchObject({ field: "expression" });
    expect(parseSchedule("cron(0 12 * * ? *)", "")).toMatchObject({ field: "expression", problem: expect.stringContaining("five crontab fields") as unknown });
    expect(parseSchedule("61 * * * *", "")).toEqual({ problem: "Invalid value for minute: 61", field: "expression" });
    expect(parseSchedule("0 9 * * *", "Mars/Olympus")).toMatchObject({ field: "timeZone" });
  });
});

describe("rate schedules", () => {
  it("tick every N units counted from the anchor", () => {
    const anchor = at("2026-12-04T10:00:20Z");
    const every5 = schedule("rate(5 minutes)", "", anchor);
    expect(iso(every5.next(anchor))).toBe("2026-12-04T10:05:20.000Z");
    expect(iso(every5.next(at("2026-12-04T10:07:00Z")))).toBe("2026-12-04T10:10:20.000Z");
    expect(iso(schedule("rate(1 day)", "", anchor).next(anchor))).toBe("2026-12-05T10:00:20.000Z");
  });

  it("are refused with a time zone, a zero or the wrong plural", () => {
    expect(parseSchedule("rate(5 minutes)", "UTC")).toEqual({ problem: "a rate() schedule takes no time zone", field: "timeZone" });
    expect(parseSchedule("rate(0 minutes)", "")).toMatchObject({ field: "expression" });
    expect(parseSchedule("rate(1 minutes)", "")).toMatchObject({ field: "expression" });
    expect(parseSchedule("rate(2 hour)", "")).toMatchObject({ field: "expression" });
  });
});
