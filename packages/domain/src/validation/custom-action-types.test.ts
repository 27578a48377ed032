import { describe, expect, it } from "vitest";
import { pipelineSecrets } from "../execution/secrets.js";
import { toPipelineSpec } from "../execution/spec.js";
import { checkCustomActionType, customActionTypeKey, customActionTypeSpec, queryablePropertyOf } from "./custom-action-types.js";
import type { CustomActionType, CustomActionTypeProperty } from "./custom-action-types.js";
import { edited, itemOf, stageOf } from "./test-fixtures.js";
import { validatePipeline } from "./validate.js";

const prop = (name: string, over: Partial<CustomActionTypeProperty> = {}): CustomActionTypeProperty => ({
  name,
  required: false,
  key: false,
  secret: false,
  queryable: false,
  description: "",
  type: "",
  ...over,
});

/** A deploy type with a queryable Environment, a secret ApiKey and a Number Replicas. */
function deployType(over: Partial<CustomActionType> = {}): CustomActionType {
  return {
    category: "Deploy",
    provider: "InternalDeployer",
    version: "1",
    settings: { thirdPartyConfigurationUrl: "", entityUrlTemplate: "https://deploy.example/{Config:Environment}", executionUrlTemplate: "https://deploy.example/runs/{ExternalExecutionId}", revisionUrlTemplate: "" },
    configurationProperties: [
      prop("Environment", { required: true, key: true, queryable: true }),
      prop("ApiKey", { required: true, secret: true }),
      prop("Replicas", { type: "Number" }),
      prop("DryRun", { type: "Boolean" }),
    ],
    inputArtifactDetails: { minimumCount: 1, maximumCount: 1 },
    outputArtifactDetails: { minimumCount: 0, maximumCount: 0 },
    description: "",
    jobTimeoutSeconds: 0,
    ...over,
  };
}

const fields = (t: CustomActionType): string[] => checkCustomActionType(t).map((v) => `${v.field}: ${v.message}`);

describe("checkCustomActionType", () => {
  it("accepts a well-formed type", () => {
    expect(checkCustomActionType(deployType())).toEqual([]);
  });

  it("names every bad field", () => {
    const t = deployType({
      category: "Deploying",
      provider: "bad provider",
      version: "1234567890",
      inputArtifactDetails: { minimumCount: 2, maximumCount: 1 },
      outputArtifactDetails: { minimumCount: 0, maximumCount: 6 },
      configurationProperties: [
        prop("Env", { queryable: true }),
        prop("Env"),
        prop("Token", { required: true, secret: true, queryable: true }),
        prop("Kind", { type: "Enum" }),
      ],
    });
    expect(fields(t)).toEqual([
      'category: must be one of Source, Build, Deploy, Test, Invoke, Approval, Compute, got "Deploying"',
      'provider: must be 1-35 characters of A-Z a-z 0-9 _ -, got "bad provider"',
      'version: must be 1-9 characters of A-Z a-z 0-9 _ -, got "1234567890"',
      "inputArtifactDetails.minimumCount: must not exceed maximumCount (1), got 2",
      "outputArtifactDetails.maximumCount: must be 0-5, got 6",
      "configurationProperties[0].queryable: a queryable property must be required",
      'configurationProperties[1].name: "Env" is already the name of configurationProperties[0]',
      "configurationProperties[2].queryable: a queryable property cannot be secret",
      'configurationProperties[3].type: must be one of String, Number, Boolean, got "Enum"',
      "configurationProperties[2].queryable: only one property may be queryable; configurationProperties[0] already is",
      "settings.entityUrlTemplate: {Config:Environment} must name a required, non-secret configuration property",
    ]);
  });

  it("checks URL templates: only required, non-secret properties, and the execution id in the execution URL", () => {
    const settings = {
      thirdPartyConfigurationUrl: "https://deploy.example/{Config:Environment}",
      entityUrlTemplate: "https://deploy.example/{Config:ApiKey}",
      executionUrlTemplate: "ftp://deploy.example/{Execution}",
      revisionUrlTemplate: "https://deploy.example/{ExternalExecutionId}",
    };
    expect(fields(deployType({ settings }))).toEqual([
      "settings.thirdPartyConfigurationUrl: is a plain URL: it takes no {placeholders}",
      "settings.entityUrlTemplate: {Config:ApiKey} must name a required, non-secret configuration property",
      'settings.executionUrlTemplate: must be an http:// or https:// URL, got "ftp://deploy.example/{Execution}"',
      "settings.executionUrlTemplate: {Execution} is not a placeholder: use {Config:<property>} or {ExternalExecutionId}",
      "settings.revisionUrlTemplate: {ExternalExecutionId} is only known to executionUrlTemplate",
    ]);
  });

  it("allows at most 10 properties and a job timeout of 60-43200 seconds", () => {
    const many = Array.from({ length: 11 }, (_, i) => prop(`P${i}`));
    expect(fields(deployType({ configurationProperties: many, settings: { thirdPartyConfigurationUrl: "", entityUrlTemplate: "", executionUrlTemplate: "", revisionUrlTemplate: "" }, jobTimeoutSeconds: 30 }))).toEqual([
      "executor.jobTimeout: must be 60-43200 seconds, got 30",
      "configurationProperties: must have at most 10 properties, got 11",
    ]);
  });
});

describe("customActionTypeSpec", () => {
  it("is what pipelines are judged by: keys, required keys, artifact counts, secrets, timeout", () => {
    const spec = customActionTypeSpec(deployType({ jobTimeoutSeconds: 600 }));
    expect(spec).toMatchObject({
      key: "Custom/Deploy/InternalDeployer/1",
      owner: "Custom",
      builtIn: "Custom",
      route: "worker",
      requiredConfiguration: ["Environment", "ApiKey"],
      secretConfiguration: ["ApiKey"],
      inputArtifacts: { min: 1, max: 1 },
      defaultTimeoutMinutes: 10,
    });
    expect(customActionTypeSpec(deployType()).defaultTimeoutMinutes).toBe(24 * 60);
    expect(queryablePropertyOf(deployType())).toBe("Environment");
    expect(customActionTypeKey({ category: "Build", provider: "X", version: "2" })).toBe("Custom/Build/X/2");
  });
});

describe("pipelines using a custom action type", () => {
  const declared = deployType();
  const lookup = (id: { category: string; provider: string; version: string }) =>
    customActionTypeKey(id) === customActionTypeKey(declared) ? customActionTypeSpec(declared) : undefined;

  /** The base pipeline with its deploy action replaced by one of the custom type. */
  const withCustomDeploy = (configuration: Record<string, string>, inputs = [{ name: "BuildOut" }]) =>
    edited((j) => {
      const deploy = itemOf(stageOf(j, 3).actions, 0);
      deploy.actionTypeId = { category: "Deploy", owner: "Custom", provider: "InternalDeployer", version: "1" };
      deploy.configuration = configuration;
      deploy.inputArtifacts = inputs;
    });

  it("validates against the declaration", () => {
    expect(validatePipeline(withCustomDeploy({ Environment: "prod", ApiKey: "k-123", Replicas: "3" }), { customActionType: lookup })).toEqual([]);
  });

  it("names missing, unknown and malformed configuration, and artifact counts out of the type's bounds", () => {
    const violations = validatePipeline(withCustomDeploy({ Environment: "prod east", Replicas: "three", DryRun: "yes", Colour: "blue" }, []), { customActionType: lookup });
    const at = "pipeline.stages[3].actions[0]";
    expect(violations).toEqual([
      { field: `${at}.configuration.Environment`, message: 'is queryable: must be 1-20 characters of A-Z a-z 0-9 _ -, got "prod east"' },
      { field: `${at}.configuration.Replicas`, message: 'must be a number, got "three"' },
      { field: `${at}.configuration.DryRun`, message: 'must be "true" or "false", got "yes"' },
      { field: `${at}.configuration.Colour`, message: 'Custom/Deploy/InternalDeployer/1 has no configuration "Colour"; it takes Environment, ApiKey, Replicas, DryRun' },
      { field: `${at}.configuration.ApiKey`, message: "is required by Custom/Deploy/InternalDeployer/1" },
      expect.objectContaining({ field: `${at}.inputArtifacts` }),
    ]);
  });

  it("refuses a type that is not declared", () => {
    const violations = validatePipeline(withCustomDeploy({ Environment: "prod", ApiKey: "k" }), { customActionType: () => undefined });
    expect(violations).toEqual([
      {
        field: "pipeline.stages[3].actions[0].actionTypeId.provider",
        message: "custom action type Custom/Deploy/InternalDeployer/1 is not declared (or was deleted): declare it with CreateCustomActionType",
      },
    ]);
  });

  it("marks secret properties so every view masks their values", () => {
    const spec = toPipelineSpec(withCustomDeploy({ Environment: "prod", ApiKey: "k-123" }), (a) => (a.actionTypeId?.owner === "Custom" ? "Custom" : "Commands"));
    const action = spec.stages[3]?.actions[0];
    if (action === undefined) throw new Error("no deploy action");
    action.secretConfiguration = ["ApiKey"];
    expect(pipelineSecrets(spec)).toContain("k-123");
    expect(pipelineSecrets(spec)).not.toContain("prod");
  });
});
