import { describe, expect, it } from "vitest";
import { LOG_ARTIFACT_NAME_PATTERN, logArtifactIdOf, logArtifactName, logStreamArnOf } from "./action-logs.js";
import { ARTIFACT_NAME_PATTERN } from "./limits.js";

describe("action log names", () => {
  it("names an attempt's stored log so no declared artifact can take the name", () => {
    expect(logArtifactName(3)).toBe("log.3");
    expect(LOG_ARTIFACT_NAME_PATTERN.test(logArtifactName(3))).toBe(true);
    expect(ARTIFACT_NAME_PATTERN.test(logArtifactName(3))).toBe(false);
    expect(LOG_ARTIFACT_NAME_PATTERN.test("log.0")).toBe(false);
    expect(LOG_ARTIFACT_NAME_PATTERN.test("log-1")).toBe(false);
    expect(logArtifactIdOf("ae-1", 2)).toBe("ae-1/log.2");
  });

  it("links an action execution's log by pipeline and id", () => {
    expect(logStreamArnOf("web", "ae-1")).toBe("sluice:logs:web:ae-1");
  });
});
