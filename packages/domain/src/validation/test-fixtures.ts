// Declarations shared by the validation tests; not exported from the package.
import { fromJson } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";
import { PipelineDeclarationSchema } from "@sluice/proto";
import type { PipelineDeclaration } from "@sluice/proto";

/** A valid Sluice pipeline in AWS's JSON form: Git → Build+Test (Commands) → Manual approval → ObjectStore deploy. */
export function basePipelineJson(): PipelineJson {
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
export function parse(json: PipelineJson | string): PipelineDeclaration {
  const value = typeof json === "string" ? (JSON.parse(json) as JsonObject) : (json as unknown as JsonObject);
  return fromJson(PipelineDeclarationSchema, value);
}

/** The base pipeline after `edit` changed its JSON form. */
export function edited(edit: (json: PipelineJson) => unknown): PipelineDeclaration {
  const json = basePipelineJson();
  edit(json);
  return parse(json);
}

/** Stage `s` of a JSON declaration (throws when absent, so a broken test fails loudly). */
export function stageOf(json: PipelineJson, s: number): StageJson {
  const stage = json.stages[s];
  if (stage === undefined) throw new Error(`fixture has no stages[${s}]`);
  return stage;
}

/** Action `a` of stage `s`. */
export function actionOf(json: PipelineJson, s: number, a: number): ActionJson {
  const action = stageOf(json, s).actions[a];
  if (action === undefined) throw new Error(`fixture has no stages[${s}].actions[${a}]`);
  return action;
}

/** The configuration of an action, created when absent. */
export function configOf(json: PipelineJson, s: number, a: number): Record<string, string> {
  const action = actionOf(json, s, a);
  action.configuration ??= {};
  return action.configuration;
}

/** The action type id of an action, created when absent. */
export function typeOf(json: PipelineJson, s: number, a: number): ActionTypeIdJson {
  const action = actionOf(json, s, a);
  action.actionTypeId ??= {};
  return action.actionTypeId;
}

/** Element `i` of an action's list (outputArtifacts, environmentVariables). */
export function itemOf<T>(list: T[] | undefined, i: number): T {
  const item = list?.[i];
  if (item === undefined) throw new Error(`fixture has no element ${i}`);
  return item;
}

/** Editable JSON form of a declaration (AWS field names; everything optional as in a user's file). */
export interface PipelineJson {
  name?: string;
  roleArn?: string;
  artifactStore?: { type?: string; location?: string; encryptionKey?: { id?: string; type?: string } };
  artifactStores?: Record<string, { type?: string; location?: string }>;
  stages: StageJson[];
  version?: number;
  executionMode?: string;
  pipelineType?: string;
  variables?: { name?: string; defaultValue?: string; description?: string }[];
}

export interface StageJson {
  name?: string;
  blockers?: { name?: string; type?: string }[];
  actions: ActionJson[];
  beforeEntry?: ConditionsJson;
  onSuccess?: ConditionsJson;
  onFailure?: ConditionsJson;
}

/** beforeEntry / onSuccess / onFailure (only onFailure has result and retryConfiguration). */
interface ConditionsJson {
  result?: string;
  retryConfiguration?: { retryMode?: string };
  conditions?: ConditionJson[];
}

interface ConditionJson {
  result?: string;
  rules?: RuleJson[];
}

export interface RuleJson {
  name?: string;
  ruleTypeId?: ActionTypeIdJson;
  configuration?: Record<string, string>;
  commands?: string[];
  inputArtifacts?: { name?: string }[];
  roleArn?: string;
  region?: string;
  timeoutInMinutes?: number;
}

export interface ActionTypeIdJson {
  category?: string;
  owner?: string;
  provider?: string;
  version?: string;
}

export interface ActionJson {
  name?: string;
  actionTypeId?: ActionTypeIdJson;
  runOrder?: number;
  configuration?: Record<string, string>;
  commands?: string[];
  outputArtifacts?: { name?: string; files?: string[] }[];
  inputArtifacts?: { name?: string }[];
  outputVariables?: string[];
  roleArn?: string;
  region?: string;
  namespace?: string;
  timeoutInMinutes?: number;
  environmentVariables?: { name?: string; value?: string; type?: string }[];
}
