import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { PipelineDeclarationSchema } from "@sluice/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_VIOLATIONS } from "../limits.js";
import { normalizePipeline } from "./normalize.js";
import { AWS_PIPELINE_JSON, actionOf, basePipelineJson, configOf, edited, itemOf, parse, stageOf, typeOf } from "./test-fixtures.js";
import type { ActionJson, PipelineJson } from "./test-fixtures.js";
import { validatePipeline } from "./validate.js";

/** Asserts the exact list of violations of the base pipeline after `edit`. */
function expectViolations(edit: (json: PipelineJson) => unknown, expected: [field: string, message: string][]): void {
  const violations = validatePipeline(edited(edit));
  expect(violations).toEqual(expected.map(([field, message]) => ({ field, message })));
}

const commandsAction = (name: string, category = "Test"): ActionJson => ({
  name,
  actionTypeId: { category, owner: "AWS", provider: "Commands", version: "1" },
  commands: ["true"],
});

const BUCKET_RULE = "is not a bucket name: 3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit";
const NAME_RULE = "must be 1-100 characters of A-Z a-z 0-9 . @ _ -";

describe("valid declarations", () => {
  it("accepts the base Sluice pipeline", () => {
    expect(validatePipeline(parse(basePipelineJson()))).toEqual([]);
  });

  it("accepts a realistic AWS get-pipeline JSON once RepositoryUrl and commands are added", () => {
    expect(validatePipeline(parse(AWS_PIPELINE_JSON))).toEqual([]);
  });

  it("accepts the normalized form of a valid pipeline", () => {
    expect(validatePipeline(normalizePipeline(parse(AWS_PIPELINE_JSON)))).toEqual([]);
  });

  it("accepts a pipeline without artifact store, role, mode or type (Sluice defaults them)", () => {
    expectViolations((j) => {
      delete j.artifactStore;
      delete j.roleArn;
    }, []);
  });

  it("accepts an action name reused in another stage", () => {
    expectViolations((j) => {
      actionOf(j, 2, 0).name = "Compile";
    }, []);
  });
});

describe("pipeline fields", () => {
  it("pipeline name is required", () => {
    expectViolations((j) => delete j.name, [["pipeline.name", "is required"]]);
  });

  it("pipeline name matches [A-Za-z0-9.@_-]{1,100}", () => {
    expectViolations((j) => (j.name = "my pipeline"), [["pipeline.name", `${NAME_RULE}, got "my pipeline"`]]);
    expectViolations((j) => (j.name = "p".repeat(101)), [["pipeline.name", `${NAME_RULE}, got "${"p".repeat(100)}..."`]]);
  });

  it("roleArn must be an IAM role ARN when present", () => {
    expectViolations(
      (j) => (j.roleArn = "role/pipeline"),
      [["pipeline.roleArn", 'must be an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>), got "role/pipeline"']],
    );
    expectViolations((j) => (j.roleArn = "arn:aws-cn:iam::123456789012:role/x"), []);
  });

  it("artifactStore xor artifactStores", () => {
    expectViolations(
      (j) => (j.artifactStores = { "us-east-1": { type: "S3", location: "other-bucket" } }),
      [["pipeline.artifactStores", "give either artifactStore or artifactStores, not both"]],
    );
  });

  it("artifact store location is a bucket name and type is S3", () => {
    expectViolations(
      (j) => (j.artifactStore = { type: "GCS", location: "My_Bucket" }),
      [
        ["pipeline.artifactStore.type", 'must be "S3", got "GCS"'],
        ["pipeline.artifactStore.location", `"My_Bucket" ${BUCKET_RULE}`],
      ],
    );
    expectViolations(
      (j) => (j.artifactStore = { type: "S3" }),
      [["pipeline.artifactStore.location", "is required: name the bucket that holds the artifacts"]],
    );
  });

  it("artifact store encryption key type is KMS", () => {
    expectViolations(
      (j) => ((j.artifactStore ??= {}).encryptionKey = { id: "alias/key", type: "AES" }),
      [["pipeline.artifactStore.encryptionKey.type", 'must be "KMS", got "AES"']],
    );
  });

  it("artifactStores needs a store for every action region", () => {
    expectViolations(
      (j) => {
        delete j.artifactStore;
        j.artifactStores = { "us-east-1": { type: "S3", location: "artifacts-east" } };
        actionOf(j, 0, 0).region = "eu-west-1";
      },
      [["pipeline.stages[0].actions[0].region", 'artifactStores has no store for region "eu-west-1"']],
    );
  });

  it("region is 4-30 characters", () => {
    expectViolations((j) => (actionOf(j, 0, 0).region = "eu"), [["pipeline.stages[0].actions[0].region", "must be 4-30 characters"]]);
  });

  it("version is not negative", () => {
    expectViolations((j) => (j.version = -1), [["pipeline.version", "must be 1 or more, got -1"]]);
  });

  it("executionMode QUEUED and PARALLEL are accepted", () => {
    for (const mode of ["QUEUED", "PARALLEL", "SUPERSEDED"]) expectViolations((j) => (j.executionMode = mode), []);
  });

  it("pipeline variables: at most 50, names of [A-Za-z0-9@_-] 1-128 and unique, defaults up to 1000, descriptions up to 200", () => {
    expectViolations((j) => (j.variables = [{ name: "Env", defaultValue: "prod", description: "where to deploy" }, { name: "Ticket" }]), []);
    expectViolations(
      (j) =>
        (j.variables = [
          { name: "Env" },
          { name: "Env" },
          { name: "bad name" },
          {},
          { name: "Long", defaultValue: "x".repeat(1001), description: "d".repeat(201) },
        ]),
      [
        ["pipeline.variables[1].name", '"Env" is already declared at pipeline.variables[0]'],
        ["pipeline.variables[2].name", 'must be 1-128 characters of A-Z a-z 0-9 @ _ -, got "bad name"'],
        ["pipeline.variables[3].name", "is required"],
        ["pipeline.variables[4].defaultValue", "must be at most 1000 characters, got 1001"],
        ["pipeline.variables[4].description", "must be at most 200 characters, got 201"],
      ],
    );
    expectViolations(
      (j) => (j.variables = Array.from({ length: 51 }, (_, i) => ({ name: `v${i}`, defaultValue: "x" }))),
      [["pipeline.variables", "at most 50 pipeline variables, got 51"]],
    );
  });

  it("executionMode is one of SUPERSEDED, QUEUED, PARALLEL", () => {
    expectViolations(
      (j) => (j.executionMode = "FIFO"),
      [["pipeline.executionMode", 'must be one of SUPERSEDED, QUEUED, PARALLEL, got "FIFO"']],
    );
  });

  it("pipelineType is V1 or V2", () => {
    expectViolations((j) => (j.pipelineType = "V3"), [["pipeline.pipelineType", 'must be one of V1, V2, got "V3"']]);
  });
});

describe("stages", () => {
  it("a pipeline has 2 to 50 stages", () => {
    expectViolations((j) => (j.stages = j.stages.slice(0, 1)), [["pipeline.stages", "a pipeline needs 2 to 50 stages, got 1"]]);
    expectViolations(
      (j) => {
        for (let i = 0; i < 47; i += 1) j.stages.push({ name: `Extra${i}`, actions: [commandsAction("Check")] });
      },
      [["pipeline.stages", "a pipeline needs 2 to 50 stages, got 51"]],
    );
  });

  it("a pipeline has at most 500 actions", () => {
    expectViolations(
      (j) => {
        j.stages = j.stages.slice(0, 1);
        for (let s = 0; s < 10; s += 1) {
          j.stages.push({ name: `Checks${s}`, actions: Array.from({ length: 50 }, (_, a) => commandsAction(`Check${a}`)) });
        }
      },
      [["pipeline.stages", "a pipeline has at most 500 actions, got 501"]],
    );
  });

  it("a stage has 1 to 50 actions", () => {
    expectViolations((j) => (stageOf(j, 2).actions = []), [["pipeline.stages[2].actions", "a stage needs 1 to 50 actions, got 0"]]);
    expectViolations(
      (j) => (stageOf(j, 2).actions = Array.from({ length: 51 }, (_, a) => commandsAction(`Check${a}`))),
      [["pipeline.stages[2].actions", "a stage needs 1 to 50 actions, got 51"]],
    );
  });

  it("stage name is required and matches the name pattern", () => {
    expectViolations((j) => (stageOf(j, 1).name = ""), [["pipeline.stages[1].name", "is required"]]);
    expectViolations(
      (j) => (stageOf(j, 1).name = "b".repeat(101)),
      [["pipeline.stages[1].name", `${NAME_RULE}, got "${"b".repeat(100)}..."`]],
    );
  });

  it("stage names are unique", () => {
    expectViolations((j) => (stageOf(j, 3).name = "Build"), [["pipeline.stages[3].name", '"Build" is already the name of stages[1]']]);
  });

  it("blockers are of type Schedule", () => {
    expectViolations(
      (j) => (stageOf(j, 1).blockers = [{ name: "nightly", type: "Other" }]),
      [["pipeline.stages[1].blockers[0].type", 'must be "Schedule", got "Other"']],
    );
  });

  it("the first stage holds only Source actions", () => {
    expectViolations(
      (j) => stageOf(j, 0).actions.push(commandsAction("Lint", "Build")),
      [["pipeline.stages[0].actions[1].actionTypeId.category", 'the first stage holds only Source actions, got "Build"']],
    );
  });

  it("Source actions appear in the first stage only", () => {
    expectViolations(
      (j) =>
        stageOf(j, 1).actions.push({
          name: "Docs",
          actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
          configuration: { RepositoryUrl: "https://example.com/docs.git" },
          outputArtifacts: [{ name: "DocsOut" }],
        }),
      [["pipeline.stages[1].actions[2].actionTypeId.category", "Source actions belong in the first stage only"]],
    );
  });
});

describe("actions", () => {
  it("action name is required and matches the name pattern", () => {
    expectViolations((j) => (actionOf(j, 1, 1).name = ""), [["pipeline.stages[1].actions[1].name", "is required"]]);
    expectViolations(
      (j) => (actionOf(j, 1, 1).name = "Run tests"),
      [["pipeline.stages[1].actions[1].name", `${NAME_RULE}, got "Run tests"`]],
    );
  });

  it("action names are unique within a stage", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).name = "Compile"),
      [["pipeline.stages[1].actions[1].name", '"Compile" is already the name of actions[0] in this stage']],
    );
  });

  it("actionTypeId is required", () => {
    expectViolations(
      (j) => {
        delete actionOf(j, 2, 0).actionTypeId;
        delete actionOf(j, 2, 0).timeoutInMinutes;
      },
      [["pipeline.stages[2].actions[0].actionTypeId", "is required"]],
    );
  });

  it("category is an AWS action category", () => {
    expectViolations(
      (j) => (typeOf(j, 1, 1).category = "Lint"),
      [["pipeline.stages[1].actions[1].actionTypeId.category", 'must be one of Source, Build, Deploy, Test, Invoke, Approval, Compute, got "Lint"']],
    );
  });

  it("owner is AWS, ThirdParty or Custom", () => {
    expectViolations(
      (j) => (typeOf(j, 1, 1).owner = "Me"),
      [["pipeline.stages[1].actions[1].actionTypeId.owner", 'must be one of AWS, ThirdParty, Custom, got "Me"']],
    );
  });

  it("a custom action needs a declared custom action type", () => {
    expectViolations(
      (j) => (typeOf(j, 1, 1).owner = "Custom"),
      [["pipeline.stages[1].actions[1].actionTypeId.provider", "custom action type Custom/Test/Commands/1 is not declared (or was deleted): declare it with CreateCustomActionType"]],
    );
  });

  it("provider matches [0-9A-Za-z_-]{1,35}", () => {
    expectViolations(
      (j) => (typeOf(j, 0, 0).provider = "Git!"),
      [["pipeline.stages[0].actions[0].actionTypeId.provider", 'must be 1-35 characters of A-Z a-z 0-9 _ -, got "Git!"']],
    );
  });

  it("version matches [0-9A-Za-z_-]{1,9}", () => {
    expectViolations(
      (j) => (typeOf(j, 0, 0).version = "1234567890"),
      [["pipeline.stages[0].actions[0].actionTypeId.version", 'must be 1-9 characters of A-Z a-z 0-9 _ -, got "1234567890"']],
    );
  });

  it("unknown provider is named with the supported providers of its category", () => {
    expectViolations(
      (j) => (typeOf(j, 1, 0).provider = "Jenkins"),
      [["pipeline.stages[1].actions[0].actionTypeId.provider", '"Jenkins" is not a Build provider Sluice runs; supported: CodeBuild, Commands']],
    );
    expectViolations(
      (j) => (actionOf(j, 1, 1).actionTypeId = { category: "Invoke", owner: "AWS", provider: "Lambda", version: "1" }),
      [["pipeline.stages[1].actions[1].actionTypeId.provider", '"Lambda" is not an Invoke provider Sluice runs; supported: Http']],
    );
  });

  it("owner must match the provider's owner", () => {
    expectViolations(
      (j) => (typeOf(j, 0, 0).owner = "ThirdParty"),
      [["pipeline.stages[0].actions[0].actionTypeId.owner", 'Source/Git is owned by "AWS", got "ThirdParty"']],
    );
  });

  it("version must be the provider's version", () => {
    expectViolations(
      (j) => (typeOf(j, 0, 0).version = "2"),
      [["pipeline.stages[0].actions[0].actionTypeId.version", 'Source/Git has version "1" only, got "2"']],
    );
  });

  it("runOrder is 1-999", () => {
    expectViolations((j) => (actionOf(j, 2, 0).runOrder = 0), [["pipeline.stages[2].actions[0].runOrder", "must be 1-999, got 0"]]);
    expectViolations((j) => (actionOf(j, 2, 0).runOrder = 1000), [["pipeline.stages[2].actions[0].runOrder", "must be 1-999, got 1000"]]);
  });

  it("timeoutInMinutes is 5-86400", () => {
    expectViolations(
      (j) => (actionOf(j, 2, 0).timeoutInMinutes = 4),
      [["pipeline.stages[2].actions[0].timeoutInMinutes", "must be 5-86400 minutes, got 4"]],
    );
    expectViolations(
      (j) => (actionOf(j, 2, 0).timeoutInMinutes = 86_401),
      [["pipeline.stages[2].actions[0].timeoutInMinutes", "must be 5-86400 minutes, got 86401"]],
    );
  });

  it("timeoutInMinutes only on Approval actions", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).timeoutInMinutes = 10),
      [["pipeline.stages[1].actions[1].timeoutInMinutes", "only Approval actions take a timeout"]],
    );
  });

  it("action roleArn must be an IAM role ARN when present", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 0).roleArn = "arn:aws:iam::123:role/x"),
      [["pipeline.stages[1].actions[0].roleArn", 'must be an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>), got "arn:aws:iam::123:role/x"']],
    );
  });
});

describe("artifacts", () => {
  it("artifact names match [a-zA-Z0-9_-]{1,100}", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).inputArtifacts = [{ name: "build.out" }]),
      [["pipeline.stages[1].actions[1].inputArtifacts[0].name", 'must be 1-100 characters of A-Z a-z 0-9 _ -, got "build.out"']],
    );
    expectViolations(
      (j) => (actionOf(j, 1, 1).outputArtifacts = [{ name: "" }]),
      [["pipeline.stages[1].actions[1].outputArtifacts[0].name", "is required"]],
    );
  });

  it("output artifact names are unique across the pipeline", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).outputArtifacts = [{ name: "BuildOut" }]),
      [["pipeline.stages[1].actions[1].outputArtifacts[0].name", '"BuildOut" is already produced by action "Compile" in stage "Build"']],
    );
    expectViolations(
      (j) => (actionOf(j, 1, 1).outputArtifacts = [{ name: "Report" }, { name: "Report" }]),
      [["pipeline.stages[1].actions[1].outputArtifacts[1].name", '"Report" is listed twice']],
    );
  });

  it("input artifact must be produced by an earlier action", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 0).inputArtifacts = [{ name: "BuildOut" }]),
      [["pipeline.stages[1].actions[0].inputArtifacts[0].name", '"BuildOut" is not produced by an earlier action']],
    );
    expectViolations(
      (j) => (actionOf(j, 3, 0).inputArtifacts = [{ name: "Nope" }]),
      [["pipeline.stages[3].actions[0].inputArtifacts[0].name", '"Nope" is not produced by an earlier action']],
    );
  });

  it("input artifact from the same stage needs a strictly smaller runOrder", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).runOrder = 1),
      [["pipeline.stages[1].actions[1].inputArtifacts[0].name", '"BuildOut" is not produced by an earlier action']],
    );
  });

  it("an input artifact is listed once per action", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).inputArtifacts = [{ name: "BuildOut" }, { name: "BuildOut" }]),
      [["pipeline.stages[1].actions[1].inputArtifacts[1].name", '"BuildOut" is listed twice']],
    );
  });

  it("artifact counts are within the provider's bounds", () => {
    expectViolations(
      (j) => delete actionOf(j, 0, 0).outputArtifacts,
      [
        ["pipeline.stages[0].actions[0].outputArtifacts", "Source/Git takes exactly 1 output artifact, got 0"],
        ["pipeline.stages[1].actions[0].inputArtifacts[0].name", '"SourceOut" is not produced by an earlier action'],
      ],
    );
    expectViolations(
      (j) => (actionOf(j, 2, 0).inputArtifacts = [{ name: "BuildOut" }]),
      [["pipeline.stages[2].actions[0].inputArtifacts", "Approval/Manual takes no input artifacts, got 1"]],
    );
    expectViolations(
      (j) => delete actionOf(j, 3, 0).inputArtifacts,
      [["pipeline.stages[3].actions[0].inputArtifacts", "Deploy/ObjectStore takes exactly 1 input artifact, got 0"]],
    );
    expectViolations(
      (j) => (actionOf(j, 1, 1).outputArtifacts = Array.from({ length: 6 }, (_, i) => ({ name: `Report${i}` }))),
      [["pipeline.stages[1].actions[1].outputArtifacts", "Test/Commands takes 0 to 5 output artifacts, got 6"]],
    );
  });

  it("output files are chosen by Commands actions only", () => {
    expectViolations(
      (j) => (itemOf(actionOf(j, 0, 0).outputArtifacts, 0).files = ["src/**"]),
      [["pipeline.stages[0].actions[0].outputArtifacts[0].files", "only Commands actions choose the files of an artifact; Source/Git does not"]],
    );
  });

  it("output files are 1-10 relative paths of 1-128 characters", () => {
    expectViolations(
      (j) => (itemOf(actionOf(j, 1, 0).outputArtifacts, 0).files = ["../secret", "/etc/passwd", "x".repeat(129)]),
      [
        ["pipeline.stages[1].actions[0].outputArtifacts[0].files[0]", '"../secret" must be a relative path inside the workspace'],
        ["pipeline.stages[1].actions[0].outputArtifacts[0].files[1]", '"/etc/passwd" must be a relative path inside the workspace'],
        ["pipeline.stages[1].actions[0].outputArtifacts[0].files[2]", "must be 1-128 characters, got 129"],
      ],
    );
    expectViolations(
      (j) => (itemOf(actionOf(j, 1, 0).outputArtifacts, 0).files = Array.from({ length: 11 }, (_, i) => `f${i}`)),
      [["pipeline.stages[1].actions[0].outputArtifacts[0].files", "at most 10 entries, got 11"]],
    );
  });
});

describe("configuration", () => {
  it("configuration keys are 1-50 characters", () => {
    const key = "k".repeat(51);
    expectViolations(
      (j) => (configOf(j, 2, 0)[key] = "x"),
      [[`pipeline.stages[2].actions[0].configuration["${key}"]`, "configuration keys must be 1-50 characters"]],
    );
  });

  it("configuration values are 1-1000 characters", () => {
    expectViolations(
      (j) => (configOf(j, 2, 0).CustomData = "x".repeat(1001)),
      [["pipeline.stages[2].actions[0].configuration.CustomData", "must be 1-1000 characters, got 1001"]],
    );
    expectViolations(
      (j) => (configOf(j, 2, 0).CustomData = ""),
      [["pipeline.stages[2].actions[0].configuration.CustomData", "must be 1-1000 characters, got 0"]],
    );
  });

  it("an Http invoke's Url must be an http(s) URL without credentials", () => {
    const invoke = (url: string) => (j: Parameters<typeof actionOf>[0]) => {
      Object.assign(actionOf(j, 1, 1), {
        actionTypeId: { category: "Invoke", owner: "AWS", provider: "Http", version: "1" },
        configuration: { Url: url },
        outputArtifacts: [],
        commands: [],
      });
    };
    expectViolations(invoke("ftp://hooks.example.com/x"), [["pipeline.stages[1].actions[1].configuration.Url", 'must be an http:// or https:// URL, got "ftp:"']]);
    expectViolations(invoke("hooks.example.com"), [["pipeline.stages[1].actions[1].configuration.Url", '"hooks.example.com" is not an absolute URL']]);
    expectViolations(invoke("https://u:p@hooks.example.com/"), [
      ["pipeline.stages[1].actions[1].configuration.Url", "must not carry credentials (user:password@): the runner signs each request instead"],
    ]);
    expectViolations(invoke("https://hooks.example.com/deploy"), []);
  });

  it("unknown configuration keys are named with the keys the provider takes", () => {
    expectViolations(
      (j) => (configOf(j, 0, 0).Branch = "main"),
      [
        [
          "pipeline.stages[0].actions[0].configuration.Branch",
          'Source/Git has no configuration "Branch"; it takes RepositoryUrl, BranchName, PollForSourceChanges, DetectChanges, OutputArtifactFormat, RunnerPool',
        ],
      ],
    );
  });

  it("RunnerPool picks a runner pool on every runner-run provider, checked and never a variable", () => {
    expectViolations((j) => {
      configOf(j, 0, 0).RunnerPool = "gpu";
      configOf(j, 1, 0).RunnerPool = "arm_64-large";
      configOf(j, 3, 0).RunnerPool = "default";
    }, []);
    expectViolations(
      (j) => (configOf(j, 1, 0).RunnerPool = "a.b"),
      [["pipeline.stages[1].actions[0].configuration.RunnerPool", '"a.b" is not a runner pool name (1-32 letters, digits, \'_\' or \'-\')']],
    );
    expectViolations(
      (j) => (configOf(j, 1, 0).RunnerPool = "p".repeat(33)),
      [["pipeline.stages[1].actions[0].configuration.RunnerPool", `"${"p".repeat(33)}" is not a runner pool name (1-32 letters, digits, '_' or '-')`]],
    );
    expectViolations(
      (j) => (configOf(j, 1, 1).RunnerPool = "custom"),
      [["pipeline.stages[1].actions[1].configuration.RunnerPool", '"custom" is reserved (the jobs of custom action types) and cannot be a runner pool']],
    );
    expectViolations(
      (j) => (configOf(j, 1, 0).RunnerPool = "#{SourceVariables.BranchName}"),
      [["pipeline.stages[1].actions[0].configuration.RunnerPool", "cannot use variables: the pool is chosen before the job's variables are resolved"]],
    );
  });

  it("approvals pick no runner pool", () => {
    expectViolations(
      (j) => (configOf(j, 2, 0).RunnerPool = "gpu"),
      [
        [
          "pipeline.stages[2].actions[0].configuration.RunnerPool",
          'Approval/Manual has no configuration "RunnerPool"; it takes NotificationArn, ExternalEntityLink, CustomData, NotificationUrl',
        ],
      ],
    );
  });

  it("required configuration keys are present", () => {
    expectViolations(
      (j) => delete configOf(j, 3, 0).BucketName,
      [["pipeline.stages[3].actions[0].configuration.BucketName", "is required by Deploy/ObjectStore"]],
    );
    expectViolations(
      (j) => delete configOf(j, 0, 0).RepositoryUrl,
      [["pipeline.stages[0].actions[0].configuration.RepositoryUrl", "is required: the git URL to clone (https, ssh, git, file or user@host:path)"]],
    );
  });

  it("Git RepositoryUrl is a git URL, never an option or an ext:: command", () => {
    for (const url of ["ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/x", "not a url"]) {
      expectViolations(
        (j) => (configOf(j, 0, 0).RepositoryUrl = url),
        [
          [
            "pipeline.stages[0].actions[0].configuration.RepositoryUrl",
            `${JSON.stringify(url)} is not a git URL Sluice clones (use https://, ssh://, git://, file:// or user@host:path)`,
          ],
        ],
      );
    }
    for (const url of ["git@github.com:octo/site.git", "ssh://git@example.com:2222/site.git", "https://example.com/a b"]) {
      const violations = validatePipeline(edited((j) => (configOf(j, 0, 0).RepositoryUrl = url)));
      expect(violations.length, url).toBe(url.includes(" ") ? 1 : 0);
    }
  });

  it("Git RepositoryUrl cannot use variables", () => {
    expectViolations(
      (j) => (configOf(j, 0, 0).RepositoryUrl = "https://example.com/#{codepipeline.PipelineExecutionId}.git"),
      [["pipeline.stages[0].actions[0].configuration.RepositoryUrl", "cannot use variables: the repository is read before any execution exists"]],
    );
  });

  it("Git BranchName is a branch name git cannot read as an option", () => {
    for (const branch of ["--orphan", "a..b", "feature/", "x.lock", "has space"]) {
      expectViolations(
        (j) => (configOf(j, 0, 0).BranchName = branch),
        [["pipeline.stages[0].actions[0].configuration.BranchName", `${JSON.stringify(branch)} is not a valid branch name`]],
      );
    }
    expectViolations((j) => (configOf(j, 0, 0).BranchName = "release/v1.2_rc-1"), []);
  });

  it("OutputArtifactFormat is CODE_ZIP", () => {
    expectViolations(
      (j) => (configOf(j, 0, 0).OutputArtifactFormat = "CODEBUILD_CLONE_REF"),
      [["pipeline.stages[0].actions[0].configuration.OutputArtifactFormat", 'Sluice produces "CODE_ZIP" artifacts only, got "CODEBUILD_CLONE_REF"']],
    );
  });

  it("boolean settings are true or false", () => {
    expectViolations(
      (j) => (configOf(j, 3, 0).Extract = "yes"),
      [["pipeline.stages[3].actions[0].configuration.Extract", 'must be "true" or "false", got "yes"']],
    );
  });

  it("ObjectStore BucketName is a bucket name unless it uses a variable", () => {
    expectViolations(
      (j) => (configOf(j, 3, 0).BucketName = "Web_Site"),
      [["pipeline.stages[3].actions[0].configuration.BucketName", `"Web_Site" ${BUCKET_RULE}`]],
    );
    expectViolations((j) => (configOf(j, 3, 0).BucketName = "site-#{BuildVariables.VERSION}"), []);
  });

  it("ObjectStore ObjectKey is required when Extract is false", () => {
    expectViolations(
      (j) => {
        configOf(j, 3, 0).Extract = "false";
        delete configOf(j, 3, 0).ObjectKey;
      },
      [["pipeline.stages[3].actions[0].configuration.ObjectKey", "is required when Extract is false: name the object the artifact is stored as"]],
    );
  });
});

describe("commands", () => {
  it("a Commands action needs commands or configuration.Commands", () => {
    expectViolations(
      (j) => delete actionOf(j, 1, 1).commands,
      [["pipeline.stages[1].actions[1].commands", "is required: list the shell commands to run (or give them in configuration.Commands, or a buildspec in configuration.BuildSpec)"]],
    );
    expectViolations((j) => {
      delete actionOf(j, 1, 1).commands;
      actionOf(j, 1, 1).configuration = { Commands: "npm test\nnpm run lint" };
    }, []);
  });

  it("commands come from one place only", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).configuration = { Commands: "npm test" }),
      [["pipeline.stages[1].actions[1].configuration.Commands", "give the commands either in commands or in configuration.Commands, not both"]],
    );
  });

  it("commands are 1-50 entries of 1-1000 characters", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).commands = Array.from({ length: 51 }, () => "true")),
      [["pipeline.stages[1].actions[1].commands", "at most 50 commands, got 51"]],
    );
    expectViolations(
      (j) => (actionOf(j, 1, 1).commands = ["x".repeat(1001), ""]),
      [
        ["pipeline.stages[1].actions[1].commands[0]", "must be 1-1000 characters, got 1001"],
        ["pipeline.stages[1].actions[1].commands[1]", "must be 1-1000 characters, got 0"],
      ],
    );
    expectViolations(
      (j) => {
        delete actionOf(j, 1, 1).commands;
        actionOf(j, 1, 1).configuration = { Commands: Array.from({ length: 51 }, () => "true").join("\n") };
      },
      [["pipeline.stages[1].actions[1].configuration.Commands", "at most 50 commands, got 51"]],
    );
  });

  it("commands are for Commands actions only", () => {
    expectViolations(
      (j) => (actionOf(j, 2, 0).commands = ["echo"]),
      [["pipeline.stages[2].actions[0].commands", "only Commands actions run commands; Approval/Manual does not"]],
    );
  });

  it("CodeBuild runs only with commands", () => {
    expectViolations(
      (j) => {
        typeOf(j, 1, 1).provider = "CodeBuild";
        delete actionOf(j, 1, 1).commands;
        actionOf(j, 1, 1).configuration = { ProjectName: "unit-tests" };
      },
      [
        [
          "pipeline.stages[1].actions[1].commands",
          "is required: Sluice runs Test/CodeBuild as a Commands action and cannot run CodeBuild projects; list the shell commands to run (or give a buildspec in configuration.BuildSpec)",
        ],
      ],
    );
  });

  it("output variables are 1-15 shell variable names of Commands actions", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 0).outputVariables = ["VERSION", ...Array.from({ length: 15 }, (_, i) => `V${i}`)]),
      [["pipeline.stages[1].actions[0].outputVariables", "at most 15 output variables, got 16"]],
    );
    expectViolations(
      (j) => (actionOf(j, 1, 0).outputVariables = ["VERSION", "1ST", "VERSION"]),
      [
        [
          "pipeline.stages[1].actions[0].outputVariables[1]",
          '"1ST" must be a shell variable name (1-128 characters of A-Z a-z 0-9 _, not starting with a digit)',
        ],
        ["pipeline.stages[1].actions[0].outputVariables[2]", '"VERSION" is listed twice'],
      ],
    );
    expectViolations(
      (j) => (actionOf(j, 0, 0).outputVariables = ["X"]),
      [["pipeline.stages[0].actions[0].outputVariables", "only Commands actions declare output variables; Source/Git does not"]],
    );
  });

  it("refuses environment variable names with the runner's SLUICE_ prefix (SLUICE_REF_n carry variable values)", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 0).environmentVariables = [{ name: "SLUICE_REF_1", value: "$(touch /tmp/x)" }]),
      [["pipeline.stages[1].actions[0].environmentVariables[0].name", '"SLUICE_REF_1": names starting with SLUICE_ are reserved for the runner']],
    );
  });

  it("refuses a variable reference in commands where it cannot be passed as an environment variable", () => {
    const violations = validatePipeline(
      edited((j) => {
        actionOf(j, 1, 1).commands = ["echo ok", "echo $'#{codepipeline.PipelineExecutionId}'"];
      }),
    );
    expect(violations.map((x) => x.field)).toEqual(["pipeline.stages[1].actions[1].commands[1]"]);
    expect(violations[0]?.message).toContain("#{codepipeline.PipelineExecutionId} is inside $'…'");
  });

  it("environment variables: 1-10 names of [A-Za-z0-9_], unique, values 1-2000, PLAINTEXT", () => {
    expectViolations(
      (j) =>
        (actionOf(j, 1, 0).environmentVariables = [
          { name: "MY-VAR", value: "1" },
          { name: "A", value: "" },
          { name: "A", value: "x".repeat(2001), type: "TEXT" },
        ]),
      [
        ["pipeline.stages[1].actions[0].environmentVariables[0].name", 'must be 1-128 characters of A-Z a-z 0-9 _, got "MY-VAR"'],
        ["pipeline.stages[1].actions[0].environmentVariables[1].value", "must be 1-2000 characters, got 0"],
        ["pipeline.stages[1].actions[0].environmentVariables[2].name", '"A" is listed twice'],
        ["pipeline.stages[1].actions[0].environmentVariables[2].value", "must be 1-2000 characters, got 2001"],
        ["pipeline.stages[1].actions[0].environmentVariables[2].type", 'must be PLAINTEXT or SECRET, got "TEXT"'],
      ],
    );
    expectViolations(
      (j) => (actionOf(j, 1, 1).environmentVariables = Array.from({ length: 11 }, (_, i) => ({ name: `V${i}`, value: "1" }))),
      [["pipeline.stages[1].actions[1].environmentVariables", "at most 10 environment variables, got 11"]],
    );
  });

  it("SECRETS_MANAGER environment variables are not supported yet", () => {
    expectViolations(
      (j) => (itemOf(actionOf(j, 1, 0).environmentVariables, 0).type = "SECRETS_MANAGER"),
      [
        [
          "pipeline.stages[1].actions[0].environmentVariables[0].type",
          "SECRETS_MANAGER is not supported yet: Sluice has no secrets store; use PLAINTEXT",
        ],
      ],
    );
  });

  it("SECRET environment variables: literal values of at least 4 characters, never quoted back", () => {
    expectViolations(
      (j) =>
        (actionOf(j, 1, 0).environmentVariables = [
          { name: "TOKEN", value: "#{Nowhere.Key}-s3cr3t", type: "SECRET" },
          { name: "SHORT", value: "abc", type: "SECRET" },
        ]),
      [["pipeline.stages[1].actions[0].environmentVariables[1].value", "a SECRET must be at least 4 characters (shorter ones would be masked wherever those characters occur)"]],
    );
  });

  it("environment variables are for Commands actions only", () => {
    expectViolations(
      (j) => (actionOf(j, 2, 0).environmentVariables = [{ name: "A", value: "1" }]),
      [["pipeline.stages[2].actions[0].environmentVariables", "only Commands actions take environment variables; Approval/Manual does not"]],
    );
  });
});

describe("namespaces and variables", () => {
  it("namespace matches [A-Za-z0-9@_-]{1,100}", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).namespace = "Test.Vars"),
      [["pipeline.stages[1].actions[1].namespace", 'must be 1-100 characters of A-Z a-z 0-9 @ _ - (no dot), got "Test.Vars"']],
    );
  });

  it("namespaces are unique", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).namespace = "BuildVariables"),
      [["pipeline.stages[1].actions[1].namespace", '"BuildVariables" is already the namespace of action "Compile" in stage "Build"']],
    );
  });

  it("a namespace is not an artifact name", () => {
    expectViolations(
      (j) => (actionOf(j, 1, 1).namespace = "SourceOut"),
      [["pipeline.stages[1].actions[1].namespace", '"SourceOut" is also an artifact name; namespaces and artifact names must differ']],
    );
  });

  it("codepipeline and variables namespaces are reserved", () => {
    for (const namespace of ["codepipeline", "variables"]) {
      expectViolations(
        (j) => (actionOf(j, 1, 1).namespace = namespace),
        [["pipeline.stages[1].actions[1].namespace", `"${namespace}" is reserved`]],
      );
    }
  });

  it("a variable reference names a declared namespace", () => {
    expectViolations(
      (j) => (configOf(j, 2, 0).CustomData = "#{Nope.X}"),
      [["pipeline.stages[2].actions[0].configuration.CustomData", '"#{Nope.X}": no action has the namespace "Nope"']],
    );
  });

  it("a variable reference names an action guaranteed to run earlier", () => {
    expectViolations(
      (j) => {
        actionOf(j, 1, 1).namespace = "TestVariables";
        itemOf(actionOf(j, 1, 0).environmentVariables, 0).value = "#{TestVariables.X}";
      },
      [
        [
          "pipeline.stages[1].actions[0].environmentVariables[0].value",
          '"#{TestVariables.X}": action "UnitTest" in stage "Build" does not run before this action',
        ],
      ],
    );
    expectViolations(
      (j) => (itemOf(actionOf(j, 1, 0).environmentVariables, 0).value = "#{BuildVariables.VERSION}"),
      [
        [
          "pipeline.stages[1].actions[0].environmentVariables[0].value",
          '"#{BuildVariables.VERSION}": action "Compile" in stage "Build" does not run before this action',
        ],
      ],
    );
  });

  it("a variable reference names a variable its action produces", () => {
    expectViolations(
      (j) => (configOf(j, 2, 0).CustomData = "#{SourceVariables.RepositoryName} #{BuildVariables.NOPE}"),
      [
        [
          "pipeline.stages[2].actions[0].configuration.CustomData",
          '"#{SourceVariables.RepositoryName}": action "Checkout" in stage "Source" produces CommitId, BranchName, CommitMessage, AuthorDate, CommitterDate, not "RepositoryName"',
        ],
        ["pipeline.stages[2].actions[0].configuration.CustomData", '"#{BuildVariables.NOPE}": action "Compile" in stage "Build" produces VERSION, not "NOPE"'],
      ],
    );
    expectViolations(
      (j) => {
        actionOf(j, 2, 0).namespace = "ApprovalVariables";
        configOf(j, 3, 0).ObjectKey = "#{ApprovalVariables.Status}";
      },
      [["pipeline.stages[3].actions[0].configuration.ObjectKey", '"#{ApprovalVariables.Status}": action "Review" in stage "Approve" produces no variables']],
    );
  });

  it("codepipeline namespace offers PipelineExecutionId only", () => {
    expectViolations(
      (j) => (configOf(j, 2, 0).CustomData = "#{codepipeline.PipelineName}"),
      [["pipeline.stages[2].actions[0].configuration.CustomData", '"#{codepipeline.PipelineName}": the codepipeline namespace has PipelineExecutionId only']],
    );
  });

  it("#{variables.<name>} must name a declared pipeline variable", () => {
    expectViolations((j) => {
      j.variables = [{ name: "env", defaultValue: "prod" }];
      configOf(j, 2, 0).CustomData = "#{variables.env}";
    }, []);
    expectViolations(
      (j) => (configOf(j, 2, 0).CustomData = "#{variables.env}"),
      [["pipeline.stages[2].actions[0].configuration.CustomData", '"#{variables.env}": the pipeline declares no variables']],
    );
    expectViolations(
      (j) => {
        j.variables = [{ name: "stage", defaultValue: "prod" }];
        configOf(j, 2, 0).CustomData = "#{variables.env}";
      },
      [["pipeline.stages[2].actions[0].configuration.CustomData", '"#{variables.env}": the pipeline declares stage, not "env"']],
    );
  });

  it("a variable reference is #{namespace.variable}", () => {
    expectViolations(
      (j) => (configOf(j, 2, 0).CustomData = "#{SourceVariables} and #{a b.c}"),
      [
        ["pipeline.stages[2].actions[0].configuration.CustomData", '"#{SourceVariables}" is not a variable reference; write #{namespace.variable}'],
        ["pipeline.stages[2].actions[0].configuration.CustomData", '"#{a b.c}" is not a variable reference; write #{namespace.variable}'],
      ],
    );
  });
});

describe("AWS provider aliases", () => {
  it("CodeCommit runs as Git only with configuration.RepositoryUrl", () => {
    const json = JSON.parse(AWS_PIPELINE_JSON) as PipelineJson;
    delete configOf(json, 0, 0)["RepositoryUrl"];
    expect(validatePipeline(parse(json))).toEqual([
      {
        field: "pipeline.stages[0].actions[0].configuration.RepositoryUrl",
        message:
          "is required: Sluice runs Source/CodeCommit as a Git source and cannot resolve the repository from AWS settings; add the git URL to clone",
      },
    ]);
  });

  it("GitHub (v1) without RepositoryUrl gets the URL suggested", () => {
    expectViolations(
      (j) => {
        actionOf(j, 0, 0).actionTypeId = { category: "Source", owner: "ThirdParty", provider: "GitHub", version: "1" };
        actionOf(j, 0, 0).configuration = { Owner: "octo", Repo: "site", Branch: "main", OAuthToken: "****" };
      },
      [
        [
          "pipeline.stages[0].actions[0].configuration.RepositoryUrl",
          'is required: Sluice runs Source/GitHub as a Git source and cannot resolve the repository from AWS settings; add the git URL to clone (e.g. "https://github.com/octo/site.git")',
        ],
      ],
    );
  });

  it("CodeStarSourceConnection runs as Git with RepositoryUrl", () => {
    expectViolations((j) => {
      typeOf(j, 0, 0).provider = "CodeStarSourceConnection";
      Object.assign(configOf(j, 0, 0), {
        ConnectionArn: "arn:aws:codestar-connections:us-east-1:111111111111:connection/abc",
        FullRepositoryId: "octo/site",
        DetectChanges: "false",
      });
    }, []);
  });
});

describe("limits of the report", () => {
  it(`reports at most ${MAX_VIOLATIONS} violations, the last one counting the rest`, () => {
    const violations = validatePipeline(
      edited((j) => {
        j.stages = j.stages.slice(0, 1);
        for (let s = 0; s < 3; s += 1) {
          j.stages.push({ name: `Checks${s}`, actions: Array.from({ length: 50 }, (_, a) => commandsAction(`bad name ${a}`)) });
        }
      }),
    );
    expect(violations).toHaveLength(MAX_VIOLATIONS);
    expect(violations[0]).toEqual({ field: "pipeline.stages[1].actions[0].name", message: `${NAME_RULE}, got "bad name 0"` });
    expect(violations[MAX_VIOLATIONS - 1]).toEqual({ field: "pipeline", message: "51 more problems are not listed" });
  });
});

// ---- properties -------------------------------------------------------------------------------

const word = fc.oneof(
  fc.constantFrom(
    "",
    "Source",
    "Build",
    "Test",
    "Deploy",
    "Approval",
    "Compute",
    "Invoke",
    "AWS",
    "ThirdParty",
    "Custom",
    "Git",
    "Commands",
    "Manual",
    "ObjectStore",
    "S3",
    "CodeBuild",
    "CodeCommit",
    "GitHub",
    "1",
    "main",
    "SourceOut",
    "ns",
    "codepipeline",
    "variables",
    "#{ns.CommitId}",
    "#{codepipeline.PipelineExecutionId}",
    "#{x}",
    "#{",
    "RepositoryUrl",
    "BranchName",
    "BucketName",
    "Extract",
    "false",
    "file:///x",
    "QUEUED",
    "SUPERSEDED",
    "__proto__",
    "constructor",
  ),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 6 }),
);
const small = <T>(arb: fc.Arbitrary<T>, max = 3): fc.Arbitrary<T[]> => fc.array(arb, { maxLength: max });
const int = fc.oneof(fc.integer({ min: -2, max: 1001 }), fc.integer());

const actionInit = fc.record(
  {
    name: word,
    actionTypeId: fc.record({ category: word, owner: word, provider: word, version: word }, { requiredKeys: [] }),
    runOrder: int,
    configuration: fc.dictionary(word, word, { maxKeys: 4 }),
    commands: small(word),
    outputArtifacts: small(fc.record({ name: word, files: small(word, 2) }, { requiredKeys: [] }), 2),
    inputArtifacts: small(fc.record({ name: word }, { requiredKeys: [] }), 2),
    outputVariables: small(word),
    roleArn: word,
    region: word,
    namespace: word,
    timeoutInMinutes: int,
    environmentVariables: small(fc.record({ name: word, value: word, type: word }, { requiredKeys: [] }), 2),
  },
  { requiredKeys: [] },
);

const pipelineInit = fc.record(
  {
    name: word,
    roleArn: word,
    artifactStore: fc.record(
      { type: word, location: word, encryptionKey: fc.record({ id: word, type: word }, { requiredKeys: [] }) },
      { requiredKeys: [] },
    ),
    artifactStores: fc.dictionary(word, fc.record({ type: word, location: word }, { requiredKeys: [] }), { maxKeys: 2 }),
    stages: small(
      fc.record(
        { name: word, blockers: small(fc.record({ name: word, type: word }, { requiredKeys: [] }), 1), actions: small(actionInit, 4) },
        { requiredKeys: [] },
      ),
      5,
    ),
    version: int,
    executionMode: word,
    pipelineType: word,
  },
  { requiredKeys: [] },
) as unknown as fc.Arbitrary<MessageInitShape<typeof PipelineDeclarationSchema>>;

describe("properties", () => {
  it("never throws, always returns violations with a pipeline path, and is deterministic", () => {
    fc.assert(
      fc.property(pipelineInit, (init) => {
        const decl = create(PipelineDeclarationSchema, init);
        const first = validatePipeline(decl);
        expect(Array.isArray(first)).toBe(true);
        expect(first.length).toBeLessThanOrEqual(MAX_VIOLATIONS);
        for (const violation of first) {
          expect(violation.field.startsWith("pipeline")).toBe(true);
          expect(violation.message.length).toBeGreaterThan(0);
        }
        expect(validatePipeline(decl)).toEqual(first);
        expect(validatePipeline(create(PipelineDeclarationSchema, init))).toEqual(first);
      }),
      { numRuns: 400 },
    );
  });

  it("gives the same answer before and after normalization", () => {
    fc.assert(
      fc.property(pipelineInit, (init) => {
        // protobuf-es drops a "__proto__" map key when it copies a message (as every decoder does).
        fc.pre(!JSON.stringify(init).includes('"__proto__"'));
        const decl = create(PipelineDeclarationSchema, init);
        expect(validatePipeline(normalizePipeline(decl))).toEqual(validatePipeline(decl));
      }),
      { numRuns: 300 },
    );
  });
});
