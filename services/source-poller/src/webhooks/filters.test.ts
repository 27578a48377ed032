import { describe, expect, it } from "vitest";
import { nestingDepth, parseJsonBody } from "./body.js";
import { firstUnmatchedFilter, jsonPathError, substituteConfiguration } from "./filters.js";

describe("webhook filters", () => {
  const payload = { ref: "refs/heads/main", repository: { name: "web" }, commits: [{ id: "a" }, { id: "b" }], size: 2 };

  it("parses JSONPath without evaluating anything", () => {
    expect(jsonPathError("$.ref")).toBeUndefined();
    expect(jsonPathError("$.commits[*].id")).toBeUndefined();
    expect(jsonPathError("ref")).toMatch(/Expected "\$"/);
    expect(jsonPathError("$..[")).toBeDefined();
    // Script expressions of older JSONPath dialects are syntax errors, never code.
    expect(jsonPathError("$[?(@.constructor.constructor('return process')())]")).toBeDefined();
  });

  it("replaces {Key} by the action's configuration", () => {
    expect(substituteConfiguration("refs/heads/{BranchName}", { BranchName: "main" })).toBe("refs/heads/main");
    expect(substituteConfiguration("{Missing}-{BranchName}", { BranchName: "x" })).toBe("{Missing}-x");
    expect(substituteConfiguration("{constructor}", {})).toBe("{constructor}");
  });

  it("needs every filter to match, and says which did not and why", () => {
    const cfg = { BranchName: "main" };
    expect(firstUnmatchedFilter([{ jsonPath: "$.ref", matchEquals: "refs/heads/{BranchName}" }, { jsonPath: "$.commits[*].id", matchEquals: "b" }], payload, cfg)).toBeUndefined();
    expect(firstUnmatchedFilter([{ jsonPath: "$.size", matchEquals: "2" }], payload, cfg)).toBeUndefined();
    expect(firstUnmatchedFilter([{ jsonPath: "$.repository", matchEquals: "" }], payload, cfg)).toBeUndefined();
    expect(firstUnmatchedFilter([{ jsonPath: "$.ref", matchEquals: "refs/heads/{BranchName}" }, { jsonPath: "$.ref", matchEquals: "refs/heads/dev" }], payload, cfg)).toEqual({
      index: 1,
      reason: 'filters[1] $.ref is "refs/heads/main", not "refs/heads/dev"',
    });
    expect(firstUnmatchedFilter([{ jsonPath: "$.nope", matchEquals: "x" }], payload, cfg)?.reason).toBe("filters[0] $.nope selects nothing in the payload");
  });

  it("refuses JSON nested deeper than the limit before parsing it", () => {
    expect(nestingDepth('{"a":[{"b":"[[[["}]}')).toBe(3);
    expect(nestingDepth('"\\"{"')).toBe(0);
    const deep = `${"[".repeat(65)}${"]".repeat(65)}`;
    expect(parseJsonBody(Buffer.from(deep), 64)).toEqual({ ok: false, reason: "JSON nested deeper than 64 levels" });
    expect(parseJsonBody(Buffer.from('{"a":1}'), 64)).toEqual({ ok: true, value: { a: 1 } });
    expect(parseJsonBody(Buffer.from("{"), 64).ok).toBe(false);
  });

  it("reads GitHub's form-encoded deliveries from their payload field", () => {
    const form = Buffer.from(new URLSearchParams({ payload: '{"ref":"refs/heads/main"}' }).toString());
    expect(parseJsonBody(form, 64, "application/x-www-form-urlencoded")).toEqual({ ok: true, value: { ref: "refs/heads/main" } });
    expect(parseJsonBody(Buffer.from("x=1"), 64, "application/x-www-form-urlencoded")).toEqual({ ok: false, reason: "form-encoded body without a payload field" });
  });
});
