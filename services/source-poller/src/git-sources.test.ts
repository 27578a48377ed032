import { create } from "@bufbuild/protobuf";
import { PipelineDeclarationSchema } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { gitSourcesOf } from "./git-sources.js";

function declaration(configuration: Record<string, string>, provider = "Git") {
  return create(PipelineDeclarationSchema, {
    name: "web",
    stages: [
      {
        name: "Source",
        actions: [{ name: "Checkout", actionTypeId: { category: "Source", owner: "AWS", provider, version: "1" }, configuration }],
      },
    ],
  });
}

describe("gitSourcesOf", () => {
  it("watches a Git source's branch (BranchName, default main)", () => {
    expect(gitSourcesOf(declaration({ RepositoryUrl: "file:///r", BranchName: "release" }))).toEqual([
      { actionName: "Checkout", repositoryUrl: "file:///r", branch: "release" },
    ]);
    expect(gitSourcesOf(declaration({ RepositoryUrl: "file:///r" }))[0]?.branch).toBe("main");
  });

  it("does not poll a source with PollForSourceChanges or DetectChanges set to false", () => {
    expect(gitSourcesOf(declaration({ RepositoryUrl: "file:///r", PollForSourceChanges: "false" }))).toEqual([]);
    expect(gitSourcesOf(declaration({ RepositoryUrl: "file:///r", DetectChanges: "false" }, "CodeStarSourceConnection"))).toEqual([]);
  });
});
