import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { GrpcStatus } from "@sluice/grpc";
import { create } from "@bufbuild/protobuf";
import { PipelineDeclarationSchema, PipelineTriggerDeclarationSchema } from "@sluice/proto";
import type { StateChangeEvent } from "@sluice/proto";
import { TOKENS, approvalPipeline, failure, isolation, startHarness, threeStagePipeline } from "./helpers.js";
import type { Clients, Harness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("api");

let harness: Harness | undefined;
let clients: Clients;
const seen: StateChangeEvent[] = [];

beforeAll(async () => {
  harness = await startHarness(servers, iso, { name: "orchestrator-api-test", events: seen });
  ({ clients } = harness);
});

afterAll(() => harness?.stop());

describe("PipelineService CRUD", () => {
  it("creates a pipeline with defaults filled in, version 1, and its tags", async () => {
    const res = await clients.ops.createPipeline({ pipeline: threeStagePipeline("crud-a"), tags: [{ key: "team", value: "core" }] });
    expect(res.pipeline?.name).toBe("crud-a");
    expect(res.pipeline?.version).toBe(1);
    expect(res.pipeline?.executionMode).toBe("SUPERSEDED");
    expect(res.pipeline?.pipelineType).toBe("V1");
    expect(res.pipeline?.stages[0]?.actions[0]?.runOrder).toBe(1);
    expect(res.tags.map((t) => [t.key, t.value])).toEqual([["team", "core"]]);
  });

  it("refuses a second pipeline of the same name with ALREADY_EXISTS", async () => {
    const err = await failure(clients.ops.createPipeline({ pipeline: threeStagePipeline("crud-a") }));
    expect(err.code).toBe(GrpcStatus.ALREADY_EXISTS);
    expect(err.errorCode).toBe("PipelineNameInUseException");
  });

  it("returns the pipeline with its ARN and times", async () => {
    const res = await clients.viewer.getPipeline({ name: "crud-a" });
    expect(res.pipeline?.stages.map((s) => s.name)).toEqual(["Source", "Build", "Deploy"]);
    expect(res.metadata?.pipelineArn).toBe("arn:sluice:codepipeline:local:000000000000:crud-a");
    expect(res.metadata?.created).toBeDefined();
    expect(res.metadata?.updated).toBeDefined();
  });

  it("updates to version 2 and keeps version 1 readable", async () => {
    const next = threeStagePipeline("crud-a");
    next.stages?.[2]?.actions?.[0]?.commands?.push("./verify.sh");
    const res = await clients.ops.updatePipeline({ pipeline: next });
    expect(res.pipeline?.version).toBe(2);
    const v2 = await clients.viewer.getPipeline({ name: "crud-a" });
    expect(v2.pipeline?.version).toBe(2);
    expect(v2.pipeline?.stages[2]?.actions[0]?.commands).toEqual(["./ship.sh", "./verify.sh"]);
    const v1 = await clients.viewer.getPipeline({ name: "crud-a", version: 1 });
    expect(v1.pipeline?.version).toBe(1);
    expect(v1.pipeline?.stages[2]?.actions[0]?.commands).toEqual(["./ship.sh"]);
    const state = await clients.viewer.getPipelineState({ name: "crud-a" });
    expect(state.pipelineVersion).toBe(2);
  });

  it("answers PipelineVersionNotFoundException for a version that does not exist", async () => {
    const err = await failure(clients.viewer.getPipeline({ name: "crud-a", version: 9 }));
    expect(err.code).toBe(GrpcStatus.NOT_FOUND);
    expect(err.errorCode).toBe("PipelineVersionNotFoundException");
  });

  it("answers PipelineNotFoundException for unknown pipelines", async () => {
    const calls: (() => Promise<unknown>)[] = [
      () => clients.viewer.getPipeline({ name: "nope" }),
      () => clients.viewer.getPipelineState({ name: "nope" }),
      () => clients.ops.startPipelineExecution({ name: "nope" }),
      () => clients.viewer.listPipelineExecutions({ pipelineName: "nope" }),
      () => clients.ops.updatePipeline({ pipeline: threeStagePipeline("nope") }),
    ];
    for (const call of calls) {
      const err = await failure(call());
      expect(err.code).toBe(GrpcStatus.NOT_FOUND);
      expect(err.errorCode).toBe("PipelineNotFoundException");
    }
  });

  it("lists pipelines by name, paged with an opaque token", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline("crud-b") });
    await clients.ops.createPipeline({ pipeline: threeStagePipeline("crud-c") });
    const first = await clients.viewer.listPipelines({ maxResults: 2 });
    expect(first.pipelines.map((p) => p.name)).toEqual(["crud-a", "crud-b"]);
    expect(first.pipelines[0]?.version).toBe(2);
    expect(first.pipelines[0]?.executionMode).toBe("SUPERSEDED");
    expect(first.nextToken).not.toBe("");
    const second = await clients.viewer.listPipelines({ maxResults: 2, nextToken: first.nextToken });
    expect(second.pipelines.map((p) => p.name)).toEqual(["crud-c"]);
    expect(second.nextToken).toBe("");
  });

  it("rejects a token it did not issue and out-of-range page sizes", async () => {
    const bad = await failure(clients.viewer.listPipelines({ nextToken: "not-a-token!" }));
    expect(bad.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(bad.errorCode).toBe("InvalidNextTokenException");
    const size = await failure(clients.viewer.listPipelines({ maxResults: 1001 }));
    expect(size.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(size.violations.map((v) => v.field)).toEqual(["maxResults"]);
  });

  it("deletes idempotently", async () => {
    await clients.ops.deletePipeline({ name: "crud-c" });
    await clients.ops.deletePipeline({ name: "crud-c" });
    await clients.ops.deletePipeline({ name: "never-existed" });
    const err = await failure(clients.viewer.getPipeline({ name: "crud-c" }));
    expect(err.errorCode).toBe("PipelineNotFoundException");
    // The name is free again, and the new pipeline starts at version 1 with no history.
    const again = await clients.ops.createPipeline({ pipeline: threeStagePipeline("crud-c") });
    expect(again.pipeline?.version).toBe(1);
    const executions = await clients.viewer.listPipelineExecutions({ pipelineName: "crud-c" });
    expect(executions.pipelineExecutionSummaries).toHaveLength(1);
  });

  it("announces declaration changes on the events stream", async () => {
    await expect
      .poll(() => seen.filter((e) => e.pipeline === "crud-c" && e.detailType === "Sluice Pipeline Declaration Change").map((e) => e.state), { timeout: 10_000 })
      .toEqual(["CREATED", "DELETED", "CREATED"]);
    const updated = seen.find((e) => e.pipeline === "crud-a" && e.state === "UPDATED");
    expect(updated?.version).toBe(2);
    expect(updated?.declaration?.stages.map((s) => s.name)).toEqual(["Source", "Build", "Deploy"]);
  });
});

describe("request validation", () => {
  it("names the bad field of a bad pipeline name", async () => {
    const err = await failure(clients.viewer.getPipelineState({ name: "bad name!" }));
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.errorCode).toBe("ValidationException");
    expect(err.violations).toEqual([{ field: "name", message: "must be 1-100 characters of [A-Za-z0-9.@_-]" }]);
    expect(err.message).toBe("name: must be 1-100 characters of [A-Za-z0-9.@_-]");
  });

  it("lists every structural problem of a declaration with its field path", async () => {
    const decl = threeStagePipeline("invalid-one");
    const build = decl.stages?.[1]?.actions?.[0];
    if (build === undefined) throw new Error("fixture changed");
    build.inputArtifacts = [{ name: "Nowhere" }];
    build.name = "bad name!";
    const err = await failure(clients.ops.createPipeline({ pipeline: decl }));
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.errorCode).toBe("InvalidStructureException");
    const fields = err.violations.map((v) => v.field);
    expect(fields).toContain("pipeline.stages[1].actions[0].inputArtifacts[0].name");
    expect(fields).toContain("pipeline.stages[1].actions[0].name");
    const missing = await failure(clients.viewer.getPipeline({ name: "invalid-one" }));
    expect(missing.errorCode).toBe("PipelineNotFoundException");
  });

  it("stores V2 triggers and returns them; refuses them on a V1 pipeline naming pipeline.triggers", async () => {
    const withTriggers = (name: string, pipelineType: string) => {
      const decl = create(PipelineDeclarationSchema, threeStagePipeline(name));
      decl.pipelineType = pipelineType;
      decl.triggers = [
        create(PipelineTriggerDeclarationSchema, {
          providerType: "CodeStarSourceConnection",
          gitConfiguration: { sourceActionName: "Checkout", push: [{ branches: { includes: ["main"] }, filePaths: { includes: ["src/**"] } }] },
        }),
      ];
      return decl;
    };
    const v1 = await failure(clients.ops.createPipeline({ pipeline: withTriggers("triggers-v1", "V1") }));
    expect(v1.errorCode).toBe("InvalidStructureException");
    expect(v1.violations.map((v) => v.field)).toEqual(["pipeline.triggers"]);
    await clients.ops.createPipeline({ pipeline: withTriggers("triggers-v2", "V2") });
    const got = await clients.viewer.getPipeline({ name: "triggers-v2" });
    const git = got.pipeline?.triggers[0]?.gitConfiguration;
    expect(got.pipeline?.triggers[0]?.providerType).toBe("CodeStarSourceConnection");
    expect(git?.sourceActionName).toBe("Checkout");
    expect(git?.push[0]?.filePaths?.includes).toEqual(["src/**"]);
  });

  it("judges an inline buildspec at CreatePipeline and UpdatePipeline, naming the misspelt field", async () => {
    const withBuildSpec = (buildSpec: string) => {
      const decl = threeStagePipeline("buildspec-one");
      const build = decl.stages?.[1]?.actions?.[0];
      if (build === undefined) throw new Error("fixture changed");
      build.commands = [];
      build.outputArtifacts = [{ name: "Built" }];
      build.configuration = { BuildSpec: buildSpec };
      return decl;
    };
    const typo = "version: 0.2\nphases:\n  biuld:\n    commands:\n      - make\n";
    const err = await failure(clients.ops.createPipeline({ pipeline: withBuildSpec(typo) }));
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.errorCode).toBe("InvalidStructureException");
    expect(err.violations).toEqual([
      { field: "pipeline.stages[1].actions[0].configuration.BuildSpec.phases.biuld", message: "is not a phase; phases are install, pre_build, build, post_build" },
    ]);

    const good = "version: 0.2\nphases:\n  build:\n    commands:\n      - make\nartifacts:\n  files: ['out/**']\n";
    await clients.ops.createPipeline({ pipeline: withBuildSpec(good) });
    const update = await failure(clients.ops.updatePipeline({ pipeline: withBuildSpec(good.replace("files:", "filez:")) }));
    expect(update.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(update.violations.map((v) => v.field)).toEqual(["pipeline.stages[1].actions[0].configuration.BuildSpec.artifacts.filez", "pipeline.stages[1].actions[0].configuration.BuildSpec.artifacts.files"]);
    const stored = await clients.viewer.getPipeline({ name: "buildspec-one" });
    expect(stored.pipeline?.version).toBe(1);
    expect(stored.pipeline?.stages[1]?.actions[0]?.configuration["BuildSpec"]).toBe(good);
  });

  it("requires the pipeline and checks tags", async () => {
    const none = await failure(clients.ops.createPipeline({}));
    expect(none.violations.map((v) => v.field)).toEqual(["pipeline"]);
    const tags = await failure(clients.ops.createPipeline({ pipeline: threeStagePipeline("tagged"), tags: [{ key: "aws:x", value: "v" }, { key: "", value: "v" }] }));
    expect(tags.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(tags.violations.map((v) => v.field)).toEqual(["tags[0].key", "tags[1].key"]);
  });

  it("validates execution requests", async () => {
    const err = await failure(clients.viewer.getPipelineExecution({ pipelineName: "crud-a", pipelineExecutionId: "x" }));
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.violations.map((v) => v.field)).toEqual(["pipelineExecutionId"]);
    const unknown = await failure(clients.viewer.getPipelineExecution({ pipelineName: "crud-a", pipelineExecutionId: "00000000-0000-4000-8000-000000000000" }));
    expect(unknown.code).toBe(GrpcStatus.NOT_FOUND);
    expect(unknown.errorCode).toBe("PipelineExecutionNotFoundException");
  });

  it("validates approval results before forwarding them", async () => {
    await clients.ops.createPipeline({ pipeline: approvalPipeline("gated") });
    const status = await failure(
      clients.approver.putApprovalResult({ pipelineName: "gated", stageName: "Gate", actionName: "Approve", result: { status: "Maybe", summary: "" }, token: "t" }),
    );
    expect(status.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(status.violations.map((v) => v.field)).toEqual(["result.status"]);
    const many = await failure(clients.approver.putApprovalResult({ pipelineName: "gated", stageName: "", actionName: "Approve", result: { status: "Approved", summary: "x".repeat(513) } }));
    expect(many.violations.map((v) => v.field)).toEqual(["stageName", "result.summary", "token"]);
    const stage = await failure(
      clients.approver.putApprovalResult({ pipelineName: "gated", stageName: "Nope", actionName: "Approve", result: { status: "Approved", summary: "" }, token: "t" }),
    );
    expect(stage.errorCode).toBe("StageNotFoundException");
    const action = await failure(
      clients.approver.putApprovalResult({ pipelineName: "gated", stageName: "Gate", actionName: "Nope", result: { status: "Approved", summary: "" }, token: "t" }),
    );
    expect(action.errorCode).toBe("ActionNotFoundException");
    const pipeline = await failure(
      clients.approver.putApprovalResult({ pipelineName: "nope", stageName: "Gate", actionName: "Approve", result: { status: "Approved", summary: "" }, token: "t" }),
    );
    expect(pipeline.errorCode).toBe("PipelineNotFoundException");
    // Valid, but this orchestrator has no approval service configured.
    const unavailable = await failure(
      clients.approver.putApprovalResult({ pipelineName: "gated", stageName: "Gate", actionName: "Approve", result: { status: "Approved", summary: "" }, token: "t" }),
    );
    expect(unavailable.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(unavailable.errorCode).toBe("ServiceUnavailableException");
  });
});

describe("authentication and permissions", () => {
  it("rejects calls without a token", async () => {
    const err = await failure(clients.anonymous.listPipelines({}));
    expect(err.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(err.message).toContain("missing bearer token");
    expect(TOKENS).not.toContain(err.message);
  });

  it("lets viewers read but not change", async () => {
    await clients.viewer.listPipelines({});
    const err = await failure(clients.viewer.startPipelineExecution({ name: "crud-a" }));
    expect(err.code).toBe(GrpcStatus.PERMISSION_DENIED);
    const approve = await failure(
      clients.viewer.putApprovalResult({ pipelineName: "gated", stageName: "Gate", actionName: "Approve", result: { status: "Approved", summary: "" }, token: "t" }),
    );
    expect(approve.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });

  it("keeps approvers to approvals and reading (the token is in the pipeline state)", async () => {
    const err = await failure(clients.approver.createPipeline({ pipeline: threeStagePipeline("by-approver") }));
    expect(err.code).toBe(GrpcStatus.PERMISSION_DENIED);
    const listed = await clients.approver.listPipelines({});
    expect(listed.pipelines.length).toBeGreaterThan(0);
    const stop = await failure(clients.approver.startPipelineExecution({ name: listed.pipelines[0]?.name ?? "" }));
    expect(stop.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });
});
