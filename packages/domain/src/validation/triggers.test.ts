import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { edited } from "./test-fixtures.js";
import type { PipelineJson } from "./test-fixtures.js";
import { validatePipeline } from "./validate.js";

/** The base pipeline as V2 with `triggers`. */
function withTriggers(triggers: unknown[], type = "V2"): ReturnType<typeof edited> {
  return edited((json: PipelineJson) => {
    const j = json as unknown as Record<string, unknown>;
    j["pipelineType"] = type;
    j["triggers"] = triggers;
  });
}

const trigger = (git: Record<string, unknown>): unknown => ({ providerType: "CodeStarSourceConnection", gitConfiguration: { sourceActionName: "Checkout", ...git } });
const fields = (triggers: unknown[], type?: string): string[] => validatePipeline(withTriggers(triggers, type)).map((v) => v.field);

describe("pipeline triggers", () => {
  it("accepts AWS's shapes: tags, branches, branches+filePaths, pull requests", () => {
    const ok = trigger({
      push: [{ tags: { includes: ["v*"] } }, { branches: { includes: ["main", "release/**"], excludes: ["release/old"] } }, { branches: { includes: ["dev"] }, filePaths: { includes: ["src/**"] } }],
      pullRequest: [{ events: ["OPEN", "UPDATED"], branches: { includes: ["main"] }, filePaths: { excludes: ["docs/**"] } }],
    });
    expect(validatePipeline(withTriggers([ok]))).toEqual([]);
  });

  it("are V2 only", () => {
    expect(validatePipeline(withTriggers([trigger({ push: [{ branches: { includes: ["main"] } }] })], "V1"))).toEqual([
      { field: "pipeline.triggers", message: 'triggers need pipelineType "V2", got "V1"' },
    ]);
  });

  it("belong to one stage-1 Git source action each", () => {
    const push = [{ branches: { includes: ["main"] } }];
    expect(fields([trigger({ push }), trigger({ push })])).toEqual(["pipeline.triggers[1].gitConfiguration.sourceActionName"]);
    expect(fields([trigger({ push, sourceActionName: "Compile" })])).toEqual(["pipeline.triggers[0].gitConfiguration.sourceActionName"]);
    expect(fields([trigger({ push, sourceActionName: "" })])).toEqual(["pipeline.triggers[0].gitConfiguration.sourceActionName"]);
    expect(fields([{ providerType: "GitHub", gitConfiguration: { sourceActionName: "Checkout", push } }])).toEqual(["pipeline.triggers[0].providerType"]);
    expect(fields([{ providerType: "CodeStarSourceConnection" }])).toEqual(["pipeline.triggers[0].gitConfiguration"]);
    expect(fields(Array.from({ length: 51 }, () => trigger({ push })))).toContain("pipeline.triggers");
  });

  it("refuses filter shapes AWS refuses, naming the entry", () => {
    const branches = { includes: ["main"] };
    expect(fields([trigger({})])).toEqual(["pipeline.triggers[0].gitConfiguration"]);
    expect(fields([trigger({ push: [{ tags: { includes: ["v*"] }, branches }] })])).toEqual(["pipeline.triggers[0].gitConfiguration.push[0].tags"]);
    expect(fields([trigger({ push: [{ filePaths: { includes: ["a"] } }] })])).toEqual(["pipeline.triggers[0].gitConfiguration.push[0]"]);
    expect(fields([trigger({ push: [{ branches }, { branches }, { branches }, { branches }] })])).toEqual(["pipeline.triggers[0].gitConfiguration.push"]);
    expect(fields([trigger({ push: [{ branches: {} }] })])).toEqual(["pipeline.triggers[0].gitConfiguration.push[0].branches"]);
    expect(fields([trigger({ pullRequest: [{ events: ["OPEN", "MERGED", "OPEN"] }] })])).toEqual([
      "pipeline.triggers[0].gitConfiguration.pullRequest[0].events[1]",
      "pipeline.triggers[0].gitConfiguration.pullRequest[0].events[2]",
      "pipeline.triggers[0].gitConfiguration.pullRequest[0].branches",
    ]);
  });

  it("checks every pattern's length and glob syntax at its own index", () => {
    const result = validatePipeline(
      withTriggers([trigger({ push: [{ branches: { includes: ["main"] } }, { branches: { includes: ["a", "b", "{x,{y}}"], excludes: ["x".repeat(256)] } }] })]),
    );
    expect(result).toEqual([
      { field: "pipeline.triggers[0].gitConfiguration.push[1].branches.includes[2]", message: expect.stringMatching(/not a valid glob: .*do not nest/) as unknown },
      { field: "pipeline.triggers[0].gitConfiguration.push[1].branches.excludes[0]", message: "must be 1-255 characters, got 256" },
    ]);
    expect(fields([trigger({ push: [{ branches: { includes: Array.from({ length: 9 }, (_, i) => `b${i}`) } }] })])).toEqual([
      "pipeline.triggers[0].gitConfiguration.push[0].branches.includes",
    ]);
  });

  it("every problem names a field under pipeline.triggers[i]", () => {
    const criteria = fc.record({ includes: fc.array(fc.constantFrom("main", "", "[", "{a,b}", "**"), { maxLength: 10 }), excludes: fc.array(fc.constantFrom("x", "{", "\\"), { maxLength: 3 }) });
    const entry = fc.record({ tags: fc.option(criteria, { nil: undefined }), branches: fc.option(criteria, { nil: undefined }), filePaths: fc.option(criteria, { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 5 }), (push) => {
        for (const v of validatePipeline(withTriggers([trigger({ push: push.map((e) => JSON.parse(JSON.stringify(e)) as unknown) })]))) {
          expect(v.field).toMatch(/^pipeline\.triggers\[0\]\.gitConfiguration(\.push(\[\d\](\.(tags|branches|filePaths)(\.(includes|excludes)(\[\d+\])?)?)?)?)?$/);
        }
      }),
    );
  });
});
