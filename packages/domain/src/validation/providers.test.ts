import { create } from "@bufbuild/protobuf";
import { ActionDeclarationSchema } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import {
  BUILT_IN_PROVIDERS,
  DEFAULT_TIMEOUT_MINUTES,
  actionTimeoutMinutes,
  commandsOf,
  gitSourceOf,
  objectStoreTargetOf,
  resolveProvider,
  supportedProviders,
} from "./providers.js";

const id = (category: string, provider: string, owner = "AWS", version = "1") => ({ category, owner, provider, version });

describe("resolveProvider", () => {
  it("maps AWS provider names onto Sluice's built-ins", () => {
    const cases: [ReturnType<typeof id>, string][] = [
      [id("Source", "Git"), "Git"],
      [id("Source", "CodeCommit"), "Git"],
      [id("Source", "CodeStarSourceConnection"), "Git"],
      [id("Source", "GitHub", "ThirdParty"), "Git"],
      [id("Source", "ObjectStore"), "ObjectStore"],
      [id("Source", "S3"), "ObjectStore"],
      [id("Build", "Commands"), "Commands"],
      [id("Test", "Commands"), "Commands"],
      [id("Deploy", "Commands"), "Commands"],
      [id("Compute", "Commands"), "Commands"],
      [id("Build", "CodeBuild"), "Commands"],
      [id("Test", "CodeBuild"), "Commands"],
      [id("Approval", "Manual"), "Manual"],
      [id("Deploy", "ObjectStore"), "ObjectStore"],
      [id("Deploy", "S3"), "ObjectStore"],
      [id("Invoke", "Http"), "Http"],
    ];
    for (const [typeId, builtIn] of cases) {
      expect(resolveProvider(typeId)?.builtIn, `${typeId.category}/${typeId.provider}`).toBe(builtIn);
    }
    expect(Object.keys(BUILT_IN_PROVIDERS)).toHaveLength(cases.length);
  });

  it("needs the exact owner and version", () => {
    expect(resolveProvider(id("Source", "Git", "ThirdParty"))).toBeUndefined();
    expect(resolveProvider(id("Source", "GitHub", "AWS"))).toBeUndefined();
    expect(resolveProvider(id("Source", "Git", "AWS", "2"))).toBeUndefined();
    expect(resolveProvider(id("Build", "Git"))).toBeUndefined();
    expect(resolveProvider(id("Invoke", "Lambda"))).toBeUndefined();
    expect(resolveProvider(id("toString", "constructor"))).toBeUndefined();
    expect(resolveProvider(undefined)).toBeUndefined();
  });

  it("describes artifact bounds, routing, aliases and required configuration", () => {
    expect(BUILT_IN_PROVIDERS["Source/Git"]).toMatchObject({
      inputArtifacts: { min: 0, max: 0 },
      outputArtifacts: { min: 1, max: 1 },
      requiredConfiguration: ["RepositoryUrl"],
      route: "runner",
      alias: false,
    });
    expect(BUILT_IN_PROVIDERS["Source/CodeCommit"]).toMatchObject({ alias: true, requiredConfiguration: ["RepositoryUrl"] });
    expect(BUILT_IN_PROVIDERS["Build/Commands"]).toMatchObject({
      inputArtifacts: { min: 0, max: 5 },
      outputArtifacts: { min: 0, max: 5 },
      commands: "list-or-configuration",
      outputVariables: "declared",
    });
    expect(BUILT_IN_PROVIDERS["Build/CodeBuild"]).toMatchObject({ commands: "list", defaultTimeoutMinutes: 480 });
    expect(BUILT_IN_PROVIDERS["Approval/Manual"]).toMatchObject({ route: "approval", defaultTimeoutMinutes: 10_080 });
    expect(BUILT_IN_PROVIDERS["Deploy/S3"]).toMatchObject({
      builtIn: "ObjectStore",
      inputArtifacts: { min: 1, max: 1 },
      outputArtifacts: { min: 0, max: 0 },
      requiredConfiguration: ["BucketName"],
      defaultTimeoutMinutes: 90,
    });
  });

  it("lists the supported providers of a category", () => {
    expect(supportedProviders("Source")).toEqual(["CodeCommit", "CodeStarSourceConnection", "Git", "GitHub", "ObjectStore", "S3"]);
    expect(supportedProviders("Invoke")).toEqual(["Http"]);
    expect(supportedProviders("Compute")).toEqual(["Commands"]);
  });
});

describe("provider settings", () => {
  it("gitSourceOf follows BranchName, else GitHub's Branch, else main", () => {
    expect(gitSourceOf({ RepositoryUrl: "file:///r", BranchName: "dev", Branch: "x" })).toEqual({ repositoryUrl: "file:///r", branch: "dev" });
    expect(gitSourceOf({ RepositoryUrl: "file:///r", Branch: "release" })).toEqual({ repositoryUrl: "file:///r", branch: "release" });
    expect(gitSourceOf({ RepositoryUrl: "file:///r" })).toEqual({ repositoryUrl: "file:///r", branch: "main" });
  });

  it("objectStoreTargetOf extracts unless Extract is false", () => {
    expect(objectStoreTargetOf({ BucketName: "site", ObjectKey: "v1" })).toEqual({ bucket: "site", objectKey: "v1", extract: true });
    expect(objectStoreTargetOf({ BucketName: "site", ObjectKey: "a.zip", Extract: "false" })).toEqual({
      bucket: "site",
      objectKey: "a.zip",
      extract: false,
    });
  });

  it("commandsOf reads the commands list, else configuration.Commands lines", () => {
    expect(commandsOf({ commands: ["a", "b"], configuration: { Commands: "c" } })).toEqual(["a", "b"]);
    expect(commandsOf({ commands: [], configuration: { Commands: "npm ci\r\n\n  npm test  \n" } })).toEqual(["npm ci", "npm test"]);
  });

  it("actionTimeoutMinutes prefers the action's own timeout, then the provider default", () => {
    const approval = create(ActionDeclarationSchema, { name: "A", actionTypeId: id("Approval", "Manual") });
    expect(actionTimeoutMinutes(approval)).toBe(7 * 24 * 60);
    approval.timeoutInMinutes = 30;
    expect(actionTimeoutMinutes(approval)).toBe(30);
    expect(actionTimeoutMinutes(create(ActionDeclarationSchema, { name: "B", actionTypeId: id("Build", "CodeBuild") }))).toBe(480);
    expect(actionTimeoutMinutes(create(ActionDeclarationSchema, { name: "C", actionTypeId: id("Invoke", "Lambda") }))).toBe(60);
    expect(DEFAULT_TIMEOUT_MINUTES).toEqual({ Git: 60, Commands: 60, Manual: 10_080, ObjectStore: 90, Http: 60, Custom: 1440 });
  });
});
