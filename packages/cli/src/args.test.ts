import { describe, expect, it } from "vitest";
import { parseArgs, requireFlag, UsageError } from "./args.js";

describe("parseArgs", () => {
  it("reads AWS-style kebab-case flags in both spellings", () => {
    const a = parseArgs(["get-pipeline-state", "--name", "web", "--json", "--stage-name=Build"]);
    expect(a.command).toBe("get-pipeline-state");
    expect(a.flags).toEqual({ name: "web", json: true, "stage-name": "Build" });
  });

  it("names the missing flag", () => {
    const a = parseArgs(["start-pipeline-execution"]);
    expect(() => requireFlag(a, "name")).toThrow(new UsageError("--name is required"));
  });
});
