import { create, fromJson, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { JobResultSchema, JobSchema, OutputGrantSchema, PipelineDeclarationSchema, PipelineVariableDeclarationSchema, StateChangeEventSchema } from "@sluice/proto";
import type { ActionDeclaration } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { jobInit, jobOutcomeFromProto, sourceRevisionFromProto, stateChangeEventInit } from "./convert.js";
import { decide, initialRuntime } from "./decide.js";
import { toPipelineSpec } from "./spec.js";
import { testContext } from "./testing.js";
import { isDomainError } from "../errors.js";

const declaration = () =>
  fromJson(PipelineDeclarationSchema, {
    name: "web",
    roleArn: "arn:aws:iam::123456789012:role/x",
    artifactStore: { type: "S3", location: "my-bucket" },
    version: 3,
    executionMode: "SUPERSEDED",
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Src",
            actionTypeId: { category: "Source", owner: "AWS", provider: "CodeCommit", version: "1" },
            configuration: { RepositoryName: "web", BranchName: "main" },
            outputArtifacts: [{ name: "SrcOut" }],
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
            runOrder: 2,
            commands: ["npm ci", "npm test"],
            inputArtifacts: [{ name: "SrcOut" }],
            outputArtifacts: [{ name: "BuildOut", files: ["dist/**"] }],
            outputVariables: ["VERSION"],
            environmentVariables: [{ name: "MODE", value: "ci" }],
          },
          {
            name: "Gate",
            actionTypeId: { category: "Approval", owner: "AWS", provider: "Manual", version: "1" },
            runOrder: 3,
            timeoutInMinutes: 15,
          },
        ],
      },
    ],
  });

const builtInOf = (a: ActionDeclaration): string =>
  ({ CodeCommit: "Git", Commands: "Commands", Manual: "Manual" })[a.actionTypeId?.provider ?? ""] ?? "unknown";

describe("toPipelineSpec", () => {
  it("keeps what execution needs, with built-in providers, defaults and timeouts", () => {
    const spec = toPipelineSpec(declaration(), builtInOf);
    expect(spec).toMatchObject({ name: "web", version: 3, executionMode: "SUPERSEDED", artifactBucket: "my-bucket" });
    const [src, compile, gate] = spec.stages.flatMap((s) => s.actions);
    expect(src).toEqual({
      name: "Src",
      category: "Source",
      owner: "AWS",
      provider: "CodeCommit",
      builtIn: "Git",
      providerVersion: "1",
      runOrder: 1,
      configuration: { RepositoryName: "web", BranchName: "main" },
      commands: [],
      inputArtifacts: [],
      outputArtifacts: [{ name: "SrcOut", files: [] }],
      outputVariables: [],
      namespace: "SourceVariables",
      timeoutInMinutes: 60,
      environmentVariables: [],
    });
    expect(compile).toMatchObject({
      runOrder: 2,
      commands: ["npm ci", "npm test"],
      inputArtifacts: ["SrcOut"],
      outputArtifacts: [{ name: "BuildOut", files: ["dist/**"] }],
      outputVariables: ["VERSION"],
      environmentVariables: [{ name: "MODE", value: "ci", type: "PLAINTEXT" }],
      timeoutInMinutes: 60,
    });
    expect(compile?.namespace).toBeUndefined();
    expect(gate).toMatchObject({ builtIn: "Manual", timeoutInMinutes: 15 });
    // Plain JSON: survives a JSON round trip unchanged (stored in MongoDB as-is).
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
  });

  it("falls back to the default bucket and honours timeout overrides", () => {
    const decl = declaration();
    delete decl.artifactStore;
    const spec = toPipelineSpec(decl, builtInOf, { defaultArtifactBucket: "sluice-artifacts", defaultTimeoutMinutes: (b) => (b === "Commands" ? 5 : undefined) });
    expect(spec.artifactBucket).toBe("sluice-artifacts");
    expect(spec.stages[1]?.actions[0]?.timeoutInMinutes).toBe(5);
    expect(spec.stages[0]?.actions[0]?.timeoutInMinutes).toBe(60);
  });

  it("takes every AWS execution mode and rejects anything else", () => {
    for (const mode of ["QUEUED", "PARALLEL", "SUPERSEDED"]) {
      const decl = declaration();
      decl.executionMode = mode;
      expect(toPipelineSpec(decl, builtInOf).executionMode).toBe(mode);
    }
    const decl = declaration();
    decl.executionMode = "BOGUS";
    try {
      toPipelineSpec(decl, builtInOf);
      expect.unreachable("toPipelineSpec accepted BOGUS");
    } catch (err) {
      expect(isDomainError(err) && err.code).toBe("ValidationException");
      expect((err as Error).message).toContain("pipeline.executionMode");
    }
  });

  it("keeps the declared pipeline variables with their defaults", () => {
    const decl = declaration();
    decl.variables = [
      create(PipelineVariableDeclarationSchema, { name: "Env", defaultValue: "prod", description: "target" }),
      create(PipelineVariableDeclarationSchema, { name: "Ticket" }),
    ];
    expect(toPipelineSpec(decl, builtInOf).variables).toEqual([{ name: "Env", defaultValue: "prod", description: "target" }, { name: "Ticket" }]);
    expect(toPipelineSpec(declaration(), builtInOf).variables).toEqual([]);
  });
});

describe("bus conversions", () => {
  it("turns a dispatched JobSpec plus grants into a Job message", () => {
    const spec = toPipelineSpec(declaration(), builtInOf);
    const ctx = testContext();
    const d = decide(initialRuntime(spec), { type: "ExecutionRequested", executionId: "e1", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "x" } }, ctx);
    const first = d.commands[0];
    const job = first?.type === "DispatchJob" ? first.job : undefined;
    if (job === undefined) throw new Error("nothing dispatched");
    const output = create(OutputGrantSchema, { name: "SrcOut", artifactId: "id-1/SrcOut", grant: { url: "http://s3/put", method: "PUT", bucket: "my-bucket", key: "k" } });
    const message = create(JobSchema, jobInit(job, { inputs: [], outputs: [output] }));
    expect(message).toMatchObject({
      jobId: "id-1:1",
      actionExecutionId: "id-1",
      attempt: 1,
      pipelineName: "web",
      pipelineVersion: 3,
      pipelineExecutionId: "e1",
      stageName: "Source",
      actionName: "Src",
      actionTypeId: { category: "Source", owner: "AWS", provider: "CodeCommit", version: "1" },
      configuration: { RepositoryName: "web", BranchName: "main" },
      artifactBucket: "my-bucket",
      sourceRevision: "",
      approvalToken: "",
    });
    expect(message.outputs[0]?.grant?.url).toBe("http://s3/put");
    expect(Number(message.deadline?.seconds) * 1000).toBe(ctx.now + 60 * 60_000);
    expect(toBinary(JobSchema, message).length).toBeGreaterThan(0);
  });

  it("turns a JobResult into a JobOutcome, dropping empty fields", () => {
    const result = create(JobResultSchema, {
      jobId: "a:1",
      actionExecutionId: "a",
      attempt: 1,
      pipelineName: "web",
      pipelineExecutionId: "e1",
      stageName: "Source",
      actionName: "Src",
      status: "Succeeded",
      outputArtifacts: [{ name: "SrcOut", artifactId: "a/SrcOut", bucket: "b", key: "k", sha256: "00", sizeBytes: 12n }],
      outputVariables: { CommitId: "c0ffee" },
      revision: { revisionId: "c0ffee", revisionSummary: "msg", created: timestampFromMs(5000), branch: "main" },
      updatedBy: "runner-1",
      finishedAt: timestampFromMs(9000),
    });
    expect(jobOutcomeFromProto(result)).toEqual({
      jobId: "a:1",
      actionExecutionId: "a",
      attempt: 1,
      pipelineName: "web",
      pipelineExecutionId: "e1",
      stageName: "Source",
      actionName: "Src",
      status: "Succeeded",
      outputArtifacts: [{ name: "SrcOut", artifactId: "a/SrcOut", bucket: "b", key: "k", sha256: "00", sizeBytes: 12 }],
      outputVariables: { CommitId: "c0ffee" },
      revision: { revisionId: "c0ffee", revisionSummary: "msg", created: 5000, branch: "main" },
      updatedBy: "runner-1",
      finishedAt: 9000,
    });
    const failed = jobOutcomeFromProto(create(JobResultSchema, { status: "Failed", errorDetails: { code: "JobFailed", message: "boom" } }));
    expect(failed.errorDetails).toEqual({ code: "JobFailed", message: "boom" });
    expect(failed.revision).toBeUndefined();
    expect(failed.summary).toBeUndefined();
  });

  it("turns a source revision detail into a SourceRevisionRef", () => {
    const detail = create(JobResultSchema, { revision: { revisionId: "r1", revisionUrl: "u" } }).revision;
    if (detail === undefined) throw new Error("no revision");
    expect(sourceRevisionFromProto("Src", detail)).toEqual({ actionName: "Src", revisionId: "r1", revisionUrl: "u" });
  });

  it("turns emitted events into StateChangeEvent messages", () => {
    const spec = toPipelineSpec(declaration(), builtInOf);
    const d = decide(initialRuntime(spec), { type: "ExecutionRequested", executionId: "e1", trigger: { triggerType: "StartPipelineExecution", triggerDetail: "x" } }, testContext(7000));
    const messages = d.events.map((e) => create(StateChangeEventSchema, stateChangeEventInit(e.event)));
    expect(messages.map((m) => [m.detailType, m.state, m.stage, m.action])).toEqual([
      ["CodePipeline Pipeline Execution State Change", "STARTED", "", ""],
      ["CodePipeline Stage Execution State Change", "STARTED", "Source", ""],
      ["CodePipeline Action Execution State Change", "STARTED", "Source", "Src"],
    ]);
    expect(messages[0]).toMatchObject({ pipeline: "web", executionId: "e1", version: 3, executionTrigger: { triggerType: "StartPipelineExecution" } });
    expect(messages[2]?.type).toMatchObject({ category: "Source", provider: "CodeCommit" });
    expect(Number(messages[0]?.time?.seconds)).toBe(7);
  });
});
