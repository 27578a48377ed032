// Declarations shared by the validation tests; not exported from the package.
import { fromJson } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";
import { PipelineDeclarationSchema } from "@sluice/proto";
import type { PipelineDeclaration } from "@sluice/proto";

/** A valid Sluice pipeline in AWS's JSON form: Git → Build+Test (Commands) → Manual approval → ObjectStore deploy. */
export function basePipelineJson(): JsonObject {
  return {
    name: "web-app",
    roleArn: "arn:aws:iam::123456789012:role/pipeline",
    artifactStore: { type: "S3", location: "sluice-artifacts" },
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Checkout",
            actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
            configuration: { RepositoryUrl: "file:///srv/git/web.git", BranchName: "main" },
            outputArtifacts: [{ name: "SourceOut" }],
            namespace: "SourceVariables",
          },
        ],
      },
      {
        name: "Build",
        actions: [
          {
            name: "Compile",
            actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
            commands: ["npm ci", "npm run build"],
            inputArtifacts: [{ name: "SourceOut" }],
            outputArtifacts: [{ name: "BuildOut", files: ["dist/**"] }],
            outputVariables: ["VERSION"],
            namespace: "BuildVariables",
            environmentVariables: [{ name: "COMMIT", value: "#{SourceVariables.CommitId}", type: "PLAINTEXT" }],
          },
          {
            name: "UnitTest",
            actionTypeId: { category: "Test", owner: "AWS", provider: "Commands", version: "1" },
            runOrder: 2,
            commands: ["npm test"],
            inputArtifacts: [{ name: "BuildOut" }],
          },
        ],
      },
      {
        name: "Approve",
        actions: [
          {
            name: "Review",
            actionTypeId: { category: "Approval", owner: "AWS", provider: "Manual", version: "1" },
            configuration: { CustomData: "Release #{BuildVariables.VERSION}?" },
            timeoutInMinutes: 60,
          },
        ],
      },
      {
        name: "Deploy",
        actions: [
          {
            name: "Publish",
            actionTypeId: { category: "Deploy", owner: "AWS", provider: "ObjectStore", version: "1" },
            configuration: { BucketName: "web-site", ObjectKey: "releases/#{codepipeline.PipelineExecutionId}", Extract: "true" },
            inputArtifacts: [{ name: "BuildOut" }],
          },
        ],
      },
    ],
  };
}

/**
 * A pipeline as `aws codepipeline get-pipeline` prints it (CodeCommit → CodeBuild
 * → Manual → S3), with the two additions Sluice needs: the CodeCommit source's
 * RepositoryUrl and the CodeBuild action's commands.
 */
export const AWS_PIPELINE_JSON = `{
  "name": "MyFirstPipeline",
  "roleArn": "arn:aws:iam::111111111111:role/service-role/AWSCodePipelineServiceRole-us-east-2-MyFirstPipeline",
  "artifactStore": { "type": "S3", "location": "codepipeline-us-east-2-250656481468" },
  "stages": [
    {
      "name": "Source",
      "actions": [
        {
          "name": "Source",
          "actionTypeId": { "category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1" },
          "runOrder": 1,
          "configuration": {
            "BranchName": "main",
            "OutputArtifactFormat": "CODE_ZIP",
            "PollForSourceChanges": "false",
            "RepositoryName": "MyDemoRepo",
            "RepositoryUrl": "https://git.example.com/MyDemoRepo.git"
          },
          "outputArtifacts": [{ "name": "SourceArtifact" }],
          "inputArtifacts": [],
          "region": "us-east-2",
          "namespace": "SourceVariables"
        }
      ]
    },
    {
      "name": "Build",
      "actions": [
        {
          "name": "Build",
          "actionTypeId": { "category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1" },
          "runOrder": 1,
          "configuration": { "ProjectName": "MyDemoBuild" },
          "commands": ["npm ci", "npm run build"],
          "outputArtifacts": [{ "name": "BuildArtifact" }],
          "inputArtifacts": [{ "name": "SourceArtifact" }],
          "region": "us-east-2",
          "namespace": "BuildVariables"
        }
      ]
    },
    {
      "name": "Approval",
      "actions": [
        {
          "name": "Manual-Approval",
          "actionTypeId": { "category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1" },
          "runOrder": 1,
          "configuration": {
            "CustomData": "Commit #{SourceVariables.CommitId} built; approve the release.",
            "ExternalEntityLink": "https://example.com/release-notes",
            "NotificationArn": "arn:aws:sns:us-east-2:111111111111:MyApprovalTopic"
          },
          "outputArtifacts": [],
          "inputArtifacts": [],
          "region": "us-east-2"
        }
      ]
    },
    {
      "name": "Deploy",
      "actions": [
        {
          "name": "Deploy",
          "actionTypeId": { "category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1" },
          "runOrder": 1,
          "configuration": { "BucketName": "my-website-bucket", "Extract": "true" },
          "outputArtifacts": [],
          "inputArtifacts": [{ "name": "BuildArtifact" }],
          "region": "us-east-2"
        }
      ]
    }
  ],
  "version": 1,
  "executionMode": "SUPERSEDED",
  "pipelineType": "V2"
}`;

/** Parses a JSON declaration the way the CLI and the gRPC gateway do. */
export function parse(json: JsonObject | string): PipelineDeclaration {
  const value = typeof json === "string" ? (JSON.parse(json) as JsonObject) : json;
  return fromJson(PipelineDeclarationSchema, value);
}

/** The base pipeline after `edit` changed its JSON form. */
export function edited(edit: (json: Json) => void): PipelineDeclaration {
  const json = basePipelineJson() as unknown as Json;
  edit(json);
  return parse(json as unknown as JsonObject);
}

/** Loose JSON view for editing fixtures in tests. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;
