import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_BACKOFF_MS, backoffMs } from "./backoff.js";

describe("backoffMs", () => {
  it("doubles per failure from the interval, capped, jittered into the upper half", () => {
    expect(backoffMs(1, 60_000, MAX_BACKOFF_MS, () => 1)).toBe(60_000);
    expect(backoffMs(3, 60_000, MAX_BACKOFF_MS, () => 1)).toBe(240_000);
    expect(backoffMs(3, 60_000, MAX_BACKOFF_MS, () => 0)).toBe(120_000);
    expect(backoffMs(50, 60_000, MAX_BACKOFF_MS, () => 1)).toBe(MAX_BACKOFF_MS);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 100, max: 3_600_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (n, interval, r) => {
        const ceiling = Math.min(MAX_BACKOFF_MS, interval * 2 ** (n - 1));
        const wait = backoffMs(n, interval, MAX_BACKOFF_MS, () => r);
        expect(wait).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
        expect(wait).toBeLessThanOrEqual(Math.ceil(ceiling));
      }),
    );
  });
});
