import { toJson } from "@bufbuild/protobuf";
import { DomainError } from "./errors.js";
import { CreatePipelineRequestSchema } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { readPipelineJson } from "./pipeline-json.js";

// Shaped like the AWS documentation's create-pipeline example, extended to four stages.
const declaration = {
  name: "MyFirstPipeline",
  roleArn: "arn:aws:iam::111111111111:role/AWS-CodePipeline-Service",
  artifactStore: { type: "S3", location: "codepipeline-us-east-1-1111111111" },
  stages: [
    {
      name: "Source",
      actions: [
        {
          name: "Source",
          actionTypeId: { category: "Source", owner: "AWS", provider: "CodeCommit", version: "1" },
          runOrder: 1,
          configuration: { RepositoryName: "MyDemoRepo", BranchName: "main", PollForSourceChanges: "false", OutputArtifactFormat: "CODE_ZIP" },
          outputArtifacts: [{ name: "SourceArtifact" }],
          inputArtifacts: [],
          region: "us-east-1",
          namespace: "SourceVariables",
        },
      ],
    },
    {
      name: "Build",
      actions: [
        {
          name: "Build",
          actionTypeId: { category: "Build", owner: "AWS", provider: "CodeBuild", version: "1" },
          runOrder: 1,
          configuration: { ProjectName: "MyBuildProject" },
          outputArtifacts: [{ name: "BuildArtifact" }],
          inputArtifacts: [{ name: "SourceArtifact" }],
        },
      ],
    },
    {
      name: "Approve",
      actions: [
        {
          name: "ManualApproval",
          actionTypeId: { category: "Approval", owner: "AWS", provider: "Manual", version: "1" },
          runOrder: 1,
          configuration: { CustomData: "Check the staging site first", ExternalEntityLink: "https://staging.example.com" },
          timeoutInMinutes: 60,
        },
      ],
    },
    {
      name: "Deploy",
      actions: [
        {
          name: "Deploy",
          actionTypeId: { category: "Deploy", owner: "AWS", provider: "S3", version: "1" },
          runOrder: 1,
          configuration: { BucketName: "my-website-bucket", Extract: "true" },
          inputArtifacts: [{ name: "BuildArtifact" }],
        },
      ],
    },
  ],
  version: 1,
  executionMode: "SUPERSEDED",
  pipelineType: "V2",
};

function violationsOf(text: string): { field: string; message: string }[] {
  try {
    readPipelineJson(text);
  } catch (err) {
    if (err instanceof DomainError && err.code === "ValidationException") return [...err.violations];
    throw err;
  }
  throw new Error("expected a ValidationException");
}

describe("readPipelineJson", () => {
  it("reads the create-pipeline form with tags", () => {
    const req = readPipelineJson(JSON.stringify({ pipeline: declaration, tags: [{ key: "team", value: "web" }] }, null, 2));
    expect(req.$typeName).toBe("sluice.v1.CreatePipelineRequest");
    expect(req.tags).toEqual([expect.objectContaining({ key: "team", value: "web" })]);
    const p = req.pipeline;
    expect(p?.name).toBe("MyFirstPipeline");
    expect(p?.artifactStore?.location).toBe("codepipeline-us-east-1-1111111111");
    expect(p?.stages.map((s) => s.name)).toEqual(["Source", "Build", "Approve", "Deploy"]);
    const source = p?.stages[0]?.actions[0];
    expect(source?.actionTypeId).toMatchObject({ category: "Source", owner: "AWS", provider: "CodeCommit", version: "1" });
    expect(source?.configuration).toEqual({ RepositoryName: "MyDemoRepo", BranchName: "main", PollForSourceChanges: "false", OutputArtifactFormat: "CODE_ZIP" });
    expect(source?.outputArtifacts.map((a) => a.name)).toEqual(["SourceArtifact"]);
    expect(source?.namespace).toBe("SourceVariables");
    expect(p?.stages[1]?.actions[0]?.inputArtifacts.map((a) => a.name)).toEqual(["SourceArtifact"]);
    expect(p?.stages[2]?.actions[0]?.timeoutInMinutes).toBe(60);
    expect(p?.stages[3]?.actions[0]?.configuration["Extract"]).toBe("true");
    expect(p?.executionMode).toBe("SUPERSEDED");
    expect(p?.pipelineType).toBe("V2");
    // Nothing lost: the message prints back as the input.
    expect(toJson(CreatePipelineRequestSchema, req)).toEqual({
      // toJson leaves out empty lists: the Source action's `inputArtifacts: []`.
      pipeline: { ...declaration, stages: declaration.stages.map((s) => ({ ...s, actions: s.actions.map((a) => ("inputArtifacts" in a && a.inputArtifacts.length === 0 ? { ...a, inputArtifacts: undefined } : a)) })) },
      tags: [{ key: "team", value: "web" }],
    });
  });

  it("reads a bare declaration and get-pipeline output (metadata dropped)", () => {
    const bare = readPipelineJson(JSON.stringify(declaration));
    expect(bare.pipeline?.name).toBe("MyFirstPipeline");
    expect(bare.tags).toEqual([]);
    const fromGet = readPipelineJson(
      "\uFEFF" + JSON.stringify({ pipeline: declaration, metadata: { pipelineArn: "arn:aws:codepipeline:us-east-1:111111111111:MyFirstPipeline", created: "2026-01-01T00:00:00Z" } }),
    );
    expect(fromGet.pipeline?.stages).toHaveLength(4);
  });

  it("names every field with a wrong type or an unknown name", () => {
    const bad = structuredClone(declaration) as Record<string, unknown> & typeof declaration;
    (bad.stages[0]!.actions[0]! as Record<string, unknown>)["runOrder"] = "first";
    (bad.stages[0]!.actions[0]!.configuration as Record<string, unknown>)["PollForSourceChanges"] = false;
    (bad.stages[1]!.actions[0]! as Record<string, unknown>)["inputArtifact"] = [{ name: "SourceArtifact" }];
    (bad.stages[2]!.actions[0]! as Record<string, unknown>)["timeoutInMinutes"] = 3_000_000_000;
    bad["triggers"] = [{ providerType: "CodeStarSourceConnection", gitConfiguration: { sourceActionName: "Source", push: [{ branch: { includes: ["main"] } }] } }];
    (bad.stages[3] as Record<string, unknown>)["actions"] = { name: "Deploy" };
    const violations = violationsOf(JSON.stringify({ pipeline: bad }));
    expect(violations.map((v) => v.field)).toEqual([
      "pipeline.stages[0].actions[0].runOrder",
      "pipeline.stages[0].actions[0].configuration.PollForSourceChanges",
      "pipeline.stages[1].actions[0].inputArtifact",
      "pipeline.stages[2].actions[0].timeoutInMinutes",
      "pipeline.stages[3].actions",
      "pipeline.triggers[0].gitConfiguration.push[0].branch",
    ]);
    expect(violations.map((v) => v.message)).toEqual([
      'expected an integer, got string "first"',
      "expected a string, got boolean false",
      "unknown field (known: name, actionTypeId, runOrder, configuration, commands, outputArtifacts, inputArtifacts, outputVariables, roleArn, region, namespace, timeoutInMinutes, environmentVariables)",
      "expected an integer from -2147483648 to 2147483647, got 3000000000",
      "expected an array, got an object",
      "unknown field (known: tags, branches, filePaths)",
    ]);
  });

  it("reads AWS triggers (push and pullRequest filters) as written", () => {
    const triggers = [
      {
        providerType: "CodeStarSourceConnection",
        gitConfiguration: {
          sourceActionName: "Source",
          push: [
            { tags: { includes: ["v*"], excludes: ["v0*"] } },
            { branches: { includes: ["main", "release/**"] }, filePaths: { includes: ["src/**"], excludes: ["src/**/*.md"] } },
          ],
          pullRequest: [{ events: ["OPEN", "UPDATED", "CLOSED"], branches: { includes: ["main"] }, filePaths: { includes: ["**"] } }],
        },
      },
    ];
    const request = readPipelineJson(JSON.stringify({ pipeline: { ...declaration, pipelineType: "V2", triggers } }));
    const git = request.pipeline?.triggers[0]?.gitConfiguration;
    expect(request.pipeline?.triggers[0]?.providerType).toBe("CodeStarSourceConnection");
    expect(git?.sourceActionName).toBe("Source");
    expect(git?.push[0]?.tags?.excludes).toEqual(["v0*"]);
    expect(git?.push[1]?.filePaths?.includes).toEqual(["src/**"]);
    expect(git?.pullRequest[0]?.events).toEqual(["OPEN", "UPDATED", "CLOSED"]);
    expect(git?.pullRequest[0]?.branches?.includes).toEqual(["main"]);
  });

  it("uses pipeline.-prefixed paths for a bare declaration too, and names unknown top-level keys", () => {
    expect(violationsOf(JSON.stringify({ ...declaration, stages: "Source" }))).toEqual([{ field: "pipeline.stages", message: 'expected an array, got string "Source"' }]);
    expect(violationsOf(JSON.stringify({ pipeline: declaration, tag: [] }))).toEqual([{ field: "tag", message: "unknown field (known: pipeline, tags)" }]);
    expect(violationsOf(JSON.stringify({ pipeline: { ...declaration, artifactStores: { "us-east-1": { type: "S3", location: 5 } } } }))).toEqual([
      { field: 'pipeline.artifactStores["us-east-1"].location', message: "expected a string, got number 5" },
    ]);
  });

  it("rejects text that is not a JSON object", () => {
    const [syntax, ...rest] = violationsOf('{ "pipeline": ');
    expect(rest).toEqual([]);
    expect(syntax?.field).toBe("(document)");
    expect(syntax?.message).toMatch(/^not valid JSON: /);
    expect(violationsOf("[]")).toEqual([{ field: "(document)", message: "expected an object, got an array" }]);
  });
});
