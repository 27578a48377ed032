import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { globMatch, globProblem } from "./glob.js";

/** A pattern that matches exactly `value`: every glob character escaped. */
const literal = (value: string): string => value.replace(/[\\*?[\]{},]/g, (c) => `\\${c}`);

const pathChar = fc.constantFrom("a", "b", "z", "0", ".", "-", "_", "/", "*", "?", "[", "]", "{", "}", ",", "\\", " ", "é");
const path = fc.array(pathChar, { maxLength: 30 }).map((cs) => cs.join(""));
const segment = fc.array(fc.constantFrom("a", "b", "c", ".", "-", "1"), { minLength: 1, maxLength: 6 }).map((cs) => cs.join(""));

describe("globMatch", () => {
  it.each([
    ["main", "main", true],
    ["main", "mainline", false],
    ["release/*", "release/1.2", true],
    ["release/*", "release/1/2", false],
    ["release/**", "release/1/2", true],
    ["src/**", "src/a/b/c.ts", true],
    ["**/*.ts", "a.ts", true],
    ["**/*.ts", "x/y/a.ts", true],
    ["**/*.ts", "x/y/a.js", false],
    ["docs/**/*.md", "docs/a.md", true],
    ["docs/**/*.md", "docs/x/y/a.md", true],
    ["**", "any/thing/at/all", true],
    ["*", "a/b", false],
    ["v?.?", "v1.2", true],
    ["v?", "v/", false],
    ["v[0-9]*", "v7-rc", true],
    ["v[0-9]*", "vx", false],
    ["v[!0-9]", "vx", true],
    ["v[^0-9]", "v1", false],
    ["[]]", "]", true],
    ["{main,develop}", "develop", true],
    ["{main,develop}", "feature", false],
    ["feature/{a,b}/**", "feature/b/x/y", true],
    ["src/*.{ts,tsx}", "src/a.tsx", true],
    ["\\*", "*", true],
    ["\\*", "x", false],
    ["a\\{b,c\\}", "a{b,c}", true],
    ["{a,}b", "b", true],
  ])("%s against %s is %s", (pattern, value, expected) => {
    expect(globMatch(pattern, value)).toBe(expected);
  });

  it("refuses broken syntax with a reason", () => {
    expect(globProblem("a[bc")).toMatch(/\[ at position 2 is not closed/);
    expect(globProblem("{a,{b,c}}")).toMatch(/do not nest/);
    expect(globProblem("{a,b")).toMatch(/not closed/);
    expect(globProblem("a}")).toMatch(/no opening/);
    expect(globProblem("a\\")).toMatch(/lone \\/);
    expect(globProblem("[z-a]")).toMatch(/reversed/);
    expect(globProblem("{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}{o,p}{q,r}")).toMatch(/more than 256/);
    expect(globProblem("release/{1,2}.*")).toBeUndefined();
    // A broken pattern matches nothing.
    expect(globMatch("a[bc", "a[bc")).toBe(false);
  });

  it("a literal pattern matches its value and nothing else", () => {
    fc.assert(
      fc.property(path, path, (value, other) => {
        expect(globMatch(literal(value), value)).toBe(true);
        expect(globMatch(literal(value), other)).toBe(other === value);
      }),
    );
  });

  it("** matches every value; * matches exactly the values without /", () => {
    fc.assert(
      fc.property(path, (value) => {
        expect(globMatch("**", value)).toBe(true);
        expect(globMatch("*", value)).toBe(!value.includes("/"));
      }),
    );
  });

  it("dir/** matches everything under dir, and a glob per segment matches its depth only", () => {
    fc.assert(
      fc.property(segment, fc.array(segment, { minLength: 1, maxLength: 4 }), (dir, rest) => {
        const value = [dir, ...rest].join("/");
        expect(globMatch(`${literal(dir)}/**`, value)).toBe(true);
        expect(globMatch(rest.map(() => "*").join("/"), rest.join("/"))).toBe(true);
        expect(globMatch(rest.map(() => "*").join("/"), value)).toBe(false);
      }),
    );
  });

  it("{a,b} matches what a or b matches", () => {
    fc.assert(
      fc.property(segment, segment, path, (a, b, value) => {
        expect(globMatch(`{${literal(a)},${literal(b)}}`, value)).toBe(value === a || value === b);
      }),
    );
  });

  it("stays fast on hostile patterns", () => {
    const value = "a".repeat(2000);
    expect(globMatch("*a*a*a*a*a*a*a*a*a*a*a*b", value)).toBe(false);
    expect(globMatch("**a**a**a**a**a**a**b", value)).toBe(false);
  });
});
