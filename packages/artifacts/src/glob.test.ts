import { describe, expect, it } from "vitest";
import { compileGlob, segmentMatches } from "./glob.js";

describe("segmentMatches", () => {
  it.each([
    ["*.js", "a.js", true],
    ["*.js", "a.ts", false],
    ["*.js", ".eslintrc.js", true],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["*", "", true],
    ["a*b*c", "aXXbYYc", true],
    ["a*b*c", "acb", false],
    ["*ab", "aab", true],
    ["ab*", "a", false],
    ["a.b", "aXb", false], // "." is literal, not a regex wildcard
    ["[ab]", "[ab]", true], // no character classes
    ["(x|y)+", "(x|y)+", true],
  ])("%s vs %s → %s", (pattern, name, expected) => {
    expect(segmentMatches(pattern, name)).toBe(expected);
  });

  it("stays fast on inputs that make backtracking matchers explode", () => {
    const name = "a".repeat(20_000);
    const pattern = `${"*a".repeat(30)}*b`;
    const t0 = performance.now();
    expect(segmentMatches(pattern, name)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe("compileGlob", () => {
  const cases: [string, string, boolean][] = [
    ["**", "a/b/c.txt", true],
    ["**/*.js", "x.js", true],
    ["**/*.js", "a/b/x.js", true],
    ["**/*.js", "a/b/x.ts", false],
    ["src/**", "src/a/b", true],
    ["src/**", "lib/a", false],
    ["src/**/test/*.ts", "src/test/a.ts", true],
    ["src/**/test/*.ts", "src/a/b/test/a.ts", true],
    ["src/**/test/*.ts", "src/a/b/test/x/a.ts", false],
    ["a/**/b/**/c", "a/b/c", true],
    ["a/**/b/**/c", "a/x/b/y/z/c", true],
    ["a/**/b/**/c", "a/x/c/b", false],
    ["dist/*.zip", "dist/a.zip", true],
    ["dist/*.zip", "dist/sub/a.zip", false],
    ["./dist/app", "dist/app", true],
    ["dist/", "dist", true],
    ["a/**/**/b", "a/b", true],
  ];
  it.each(cases)("%s vs %s → %s", (pattern, path, expected) => {
    expect(compileGlob(pattern).matches(path)).toBe(expected);
  });

  it.each(["../x", "a/../../x", "/etc/passwd", "C:/x", "a\\b", "", "./", "a\0b"])("refuses %j naming the field", (pattern) => {
    expect(() => compileGlob(pattern, "patterns[2]")).toThrow(/^patterns\[2\]: /);
  });
});
