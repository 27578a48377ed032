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

  it("reads sluice logs' flags, -f and --follow as a switch wherever they stand", () => {
    const short = parseArgs(["logs", "-f", "--pipeline-name", "web", "--action-execution-id", "ae-1"]);
    expect(short.command).toBe("logs");
    expect(short.flags).toEqual({ follow: true, "pipeline-name": "web", "action-execution-id": "ae-1" });
    const long = parseArgs(["logs", "--follow", "web-positional", "--pipeline-name=web", "--action-execution-id", "ae-1", "-f"]);
    expect(long.flags).toEqual({ follow: true, "pipeline-name": "web", "action-execution-id": "ae-1" });
    expect(long.positional).toEqual(["web-positional"]);
    const finished = parseArgs(["logs", "--pipeline-name", "web", "--action-execution-id", "ae-1"]);
    expect(finished.flags["follow"]).toBeUndefined();
    expect(() => requireFlag(parseArgs(["logs", "--pipeline-name", "web", "-f"]), "action-execution-id")).toThrow(new UsageError("--action-execution-id is required"));
  });
});
