import { create } from "@bufbuild/protobuf";
import { ActionDeclarationSchema, PipelineDeclarationSchema, PipelineTriggerDeclarationSchema } from "@sluice/proto";
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
      { actionName: "Checkout", repositoryUrl: "file:///r", branch: "release", trigger: null, carriesDefinition: true },
    ]);
    expect(gitSourcesOf(declaration({ RepositoryUrl: "file:///r" }))[0]?.branch).toBe("main");
  });

  it("lets only the first Git source action of the first stage carry the pipeline definition", () => {
    const decl = declaration({ RepositoryUrl: "file:///r" });
    decl.stages[0]?.actions.push(create(ActionDeclarationSchema, { actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" }, name: "Tools", configuration: { RepositoryUrl: "file:///tools" } }));
    expect(gitSourcesOf(decl).map((s) => [s.actionName, s.carriesDefinition ?? false])).toEqual([
      ["Checkout", true],
      ["Tools", false],
    ]);
  });

  it("does not poll a source with PollForSourceChanges or DetectChanges set to false", () => {
    expect(gitSourcesOf(declaration({ RepositoryUrl: "file:///r", PollForSourceChanges: "false" }))).toEqual([]);
    expect(gitSourcesOf(declaration({ RepositoryUrl: "file:///r", DetectChanges: "false" }, "CodeStarSourceConnection"))).toEqual([]);
  });

  it("carries the action's trigger on V2 pipelines, and polls a triggered source even with DetectChanges false", () => {
    const decl = declaration({ RepositoryUrl: "file:///r", DetectChanges: "false" }, "CodeStarSourceConnection");
    decl.pipelineType = "V2";
    decl.triggers = [
      create(PipelineTriggerDeclarationSchema, {
        providerType: "CodeStarSourceConnection",
        gitConfiguration: { sourceActionName: "Checkout", push: [{ branches: { includes: ["main"] }, filePaths: { excludes: ["docs/**"] } }] },
      }),
    ];
    expect(gitSourcesOf(decl)[0]?.trigger).toEqual({ push: [{ branches: { includes: ["main"], excludes: [] }, filePaths: { includes: [], excludes: ["docs/**"] } }], pullRequest: [] });
    decl.pipelineType = "V1";
    expect(gitSourcesOf(decl)).toEqual([]);
  });
});
