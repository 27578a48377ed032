import { describe, expect, it } from "vitest";
import { edited } from "./test-fixtures.js";
import { validatePipeline } from "./validate.js";

type Json = Record<string, unknown>;

describe("schedules and event rules", () => {
  it("accepts schedules and event rules", () => {
    const decl = edited((j) => {
      (j as unknown as Json)["schedules"] = [{ name: "nightly", expression: "30 2 * * *", timeZone: "Europe/Berlin" }, { name: "often", expression: "rate(10 minutes)" }];
      (j as unknown as Json)["eventRules"] = [{ name: "after-build", pipelineName: "library", states: ["SUCCEEDED"] }, { name: "any", pipelineName: "other" }];
    });
    expect(validatePipeline(decl)).toEqual([]);
    expect(decl.schedules.map((s) => s.name)).toEqual(["nightly", "often"]);
  });

  it("names every bad field", () => {
    const decl = edited((j) => {
      (j as unknown as Json)["schedules"] = [
        { name: "nightly", expression: "30 2 * *" },
        { name: "nightly", expression: "0 9 * * *", timeZone: "Nowhere/Town" },
        { name: "bad name!", expression: "" },
      ];
      (j as unknown as Json)["eventRules"] = [
        { name: "self", pipelineName: "web-app" },
        { name: "states", pipelineName: "up", states: ["SUCCEEDED", "DONE", "SUCCEEDED"] },
        { name: "x", pipelineName: "" },
      ];
    });
    expect(validatePipeline(decl).map((v) => v.field)).toEqual([
      "pipeline.schedules[1].name",
      "pipeline.schedules[2].name",
      "pipeline.schedules[0].expression",
      "pipeline.schedules[1].timeZone",
      "pipeline.schedules[2].expression",
      "pipeline.eventRules[0].pipelineName",
      "pipeline.eventRules[1].states[1]",
      "pipeline.eventRules[1].states[2]",
      "pipeline.eventRules[2].pipelineName",
    ]);
  });

  it("caps each list at 10", () => {
    const decl = edited((j) => {
      (j as unknown as Json)["schedules"] = Array.from({ length: 11 }, (_, i) => ({ name: `s${i}`, expression: "0 * * * *" }));
    });
    expect(validatePipeline(decl)).toEqual([{ field: "pipeline.schedules", message: "at most 10 entries, got 11" }]);
  });
});
