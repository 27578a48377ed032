import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_PATTERN_PROGRAM } from "../limits.js";
import { compileSafePattern } from "./safe-regex.js";

function matches(pattern: string, input: string): boolean {
  const compiled = compileSafePattern(pattern);
  if (!compiled.ok) throw new Error(compiled.message);
  return compiled.pattern.matches(input);
}

function refusal(pattern: string): string {
  const compiled = compileSafePattern(pattern);
  if (compiled.ok) throw new Error(`${pattern} compiled`);
  return compiled.message;
}

describe("compileSafePattern", () => {
  it("matches the whole value (Java's String.matches)", () => {
    expect(matches("main", "main")).toBe(true);
    expect(matches("main", "mainline")).toBe(false);
    expect(matches("release/.*", "release/1.2")).toBe(true);
    expect(matches("^v[0-9]+$", "v12")).toBe(true);
  });

  it("supports classes, escapes, groups, alternation and counted repetition", () => {
    expect(matches("[A-Z][a-z_]*\\d{2,3}", "Build_12")).toBe(true);
    expect(matches("[^/]+", "a/b")).toBe(false);
    expect(matches("(?:feat|fix)(\\(\\w+\\))?: .+", "fix(api): handle nulls")).toBe(true);
    expect(matches("(?<major>\\d+)\\.\\d+", "10.4")).toBe(true);
    expect(matches("a{3}", "aa")).toBe(false);
    expect(matches("x\\s+y\\S", "x \t y!")).toBe(true);
    expect(matches("\\x41\\u00e9", "Aé")).toBe(true);
    expect(matches(".", "\n")).toBe(false);
    expect(matches("a*?b", "aaab")).toBe(true);
    expect(matches("", "")).toBe(true);
  });

  it("agrees with JavaScript's RegExp on full matches of the common subset", () => {
    const atom = fc.constantFrom("a", "b", ".", "[ab]", "[^a]", "\\d", "(a|b)", "(?:ab)");
    const quant = fc.constantFrom("", "*", "+", "?", "{1,2}");
    const pattern = fc.array(fc.tuple(atom, quant), { minLength: 1, maxLength: 5 }).map((parts) => parts.map(([a, q]) => a + q).join(""));
    fc.assert(
      fc.property(pattern, fc.stringMatching(/^[ab1c]{0,8}$/), (p, input) => {
        expect(matches(p, input)).toBe(new RegExp(`^(?:${p})$`).test(input));
      }),
      { numRuns: 500 },
    );
  });

  it("stays linear on patterns that make backtracking engines explode", () => {
    const started = performance.now();
    expect(matches("(a+)+$", `${"a".repeat(100_000)}!`)).toBe(false);
    expect(matches("(\\w+\\s?)+", `${"word ".repeat(20_000)}#`)).toBe(false);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("refuses what it cannot run in linear time or does not support, naming it and its position", () => {
    expect(refusal("(a)\\1")).toBe("the escape \\1 is not supported at position 3");
    expect(refusal("a(?=b)")).toBe("lookahead and lookbehind are not supported at position 2");
    expect(refusal("a++")).toBe("possessive quantifiers are not supported at position 2");
    expect(refusal("(?i)main")).toBe("inline flags and other (? groups are not supported at position 1");
    expect(refusal("[a&&b]")).toBe("character class intersections (&&) are not supported at position 2");
    expect(refusal("*a")).toBe('nothing to repeat before "*" at position 0');
    expect(refusal("(ab")).toBe('unterminated group: expected ")" at position 3');
    expect(refusal("ab)")).toBe('unmatched ")" at position 2');
    expect(refusal("a{2,1}")).toBe("repetition {2,1} has its bounds the wrong way round at position 6");
    expect(refusal("(a{1000}){1000}")).toContain(`more than ${MAX_PATTERN_PROGRAM} steps`);
  });
});
