// Errors of the public gRPC API of a whole cluster: invalid declarations are rejected with the AWS
// exception name and every problem's field path, names are unique, unknown pipelines are NOT_FOUND, and
// every service refuses calls without a valid bearer token while its health check stays open.
import * as grpc from "@grpc/grpc-js";
import { createApprovalClient, createArtifactClient, createSluiceClient, readPipelineJson } from "@sluice/client";
import { CLUSTER_SERVICES } from "@sluice/testkit";
import { service as healthService } from "grpc-health-check";
import { describe, expect, it } from "vitest";
import { bucketName, containing, makeGitRepo, pipelineJson, rpcError, suffix, useCluster } from "./helpers.js";

const env = useCluster("api-errors");

/** A valid declaration (as parsed JSON) to break one field at a time. */
function validDeclaration(name: string, repoUrl: string): { pipeline: { name: string; stages: Record<string, unknown>[] } & Record<string, unknown> } {
  return JSON.parse(
    pipelineJson({ name, repoUrl, artifactBucket: bucketName("artifacts"), deployBucket: bucketName("deploy"), buildCommands: ["mkdir -p dist", "cp -r site/. dist/"] }),
  ) as { pipeline: { name: string; stages: Record<string, unknown>[] } & Record<string, unknown> };
}

describe("invalid declarations", () => {
  it("rejects an input artifact no earlier action produces with InvalidStructureException and the field path", async () => {
    const name = `bad-input-${suffix()}`;
    const decl = validDeclaration(name, "file:///nonexistent/repo");
    const build = (decl.pipeline.stages[1]!["actions"] as Record<string, unknown>[])[0]!;
    build["inputArtifacts"] = [{ name: "NotProducedAnywhere" }];

    const err = await rpcError(() => env.sluice.pipelines.createPipeline(readPipelineJson(JSON.stringify(decl))));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.errorCode).toBe("InvalidStructureException");
    expect(err.violations).toContainEqual({
      field: "pipeline.stages[1].actions[0].inputArtifacts[0].name",
      message: containing("is not produced by an earlier action"),
    });
    expect(err.message).toContain("pipeline.stages[1].actions[0].inputArtifacts[0].name");

    // Nothing was stored.
    const missing = await rpcError(() => env.sluice.pipelines.getPipeline({ name }));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
  });

  it("rejects a one-stage pipeline and lists every other problem of the declaration too", async () => {
    const name = `one-stage-${suffix()}`;
    const decl = validDeclaration(name, "file:///nonexistent/repo");
    decl.pipeline.stages = decl.pipeline.stages.slice(0, 1);
    (decl.pipeline.stages[0]!["actions"] as Record<string, unknown>[])[0]!["runOrder"] = 0;

    const err = await rpcError(() => env.sluice.pipelines.createPipeline(readPipelineJson(JSON.stringify(decl))));
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.errorCode).toBe("InvalidStructureException");
    expect(err.violations).toEqual(
      expect.arrayContaining([
        { field: "pipeline.stages", message: containing("got 1") },
        { field: "pipeline.stages[0].actions[0].runOrder", message: containing("got 0") },
      ]),
    );
  });

  it("refuses a second pipeline with the same name with PipelineNameInUseException", async () => {
    const name = `taken-${suffix()}`;
    const repo = makeGitRepo(env, { "site/index.html": "hi\n" }, "initial");
    const json = pipelineJson({ name, repoUrl: repo.url, artifactBucket: bucketName("artifacts"), deployBucket: bucketName("deploy"), buildCommands: ["mkdir -p dist"] });
    await env.sluice.pipelines.createPipeline(readPipelineJson(json));

    const err = await rpcError(() => env.sluice.pipelines.createPipeline(readPipelineJson(json)));
    expect(err.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(err.errorCode).toBe("PipelineNameInUseException");
    expect(err.message).toContain(name);
    const { pipeline, metadata } = await env.sluice.pipelines.getPipeline({ name });
    expect(pipeline?.version).toBe(1);
    expect(metadata?.pipelineArn).toContain(name);
  });

  it("answers NOT_FOUND with PipelineNotFoundException for an unknown pipeline", async () => {
    const name = `never-created-${suffix()}`;
    const calls: [string, () => Promise<unknown>][] = [
      ["GetPipeline", () => env.sluice.pipelines.getPipeline({ name })],
      ["GetPipelineState", () => env.sluice.pipelines.getPipelineState({ name })],
      ["StartPipelineExecution", () => env.sluice.pipelines.startPipelineExecution({ name })],
      ["ListPipelineExecutions", () => env.sluice.pipelines.listPipelineExecutions({ pipelineName: name })],
    ];
    for (const [method, call] of calls) {
      const err = await rpcError(call);
      expect({ method, code: err.code, errorCode: err.errorCode }).toEqual({ method, code: grpc.status.NOT_FOUND, errorCode: "PipelineNotFoundException" });
    }
  });
});

describe("authentication", () => {
  it("refuses calls without a token or with a wrong token on every service's API", async () => {
    const { addresses, tokens } = env.cluster;
    for (const token of [undefined, "not-a-valid-token"]) {
      const auth = token === undefined ? {} : { token };
      const sluice = createSluiceClient({ address: addresses.orchestrator, ...auth });
      const approvals = createApprovalClient({ address: addresses.approval, ...auth });
      const artifacts = createArtifactClient({ address: addresses.artifact, ...auth });
      try {
        const calls: [string, () => Promise<unknown>][] = [
          ["PipelineService.ListPipelines", () => sluice.pipelines.listPipelines({})],
          ["PipelineService.CreatePipeline", () => sluice.pipelines.createPipeline({ pipeline: { name: "x" } })],
          ["ApprovalService.ListApprovals", () => approvals.listApprovals({})],
          ["ApprovalService.PutApprovalResult", () => approvals.putApprovalResult({ pipelineName: "x", stageName: "s", actionName: "a", token: "t", result: { status: "Approved" } })],
          ["ArtifactService.ListArtifacts", () => artifacts.listArtifacts({ pipelineName: "x", pipelineExecutionId: "y" })],
          ["ArtifactService.IssueJobGrants", () => artifacts.issueJobGrants({ pipelineName: "x" })],
        ];
        for (const [method, call] of calls) {
          const err = await rpcError(call);
          expect({ method, token: token ?? "(none)", code: err.code, errorCode: err.errorCode, message: err.message }).toEqual({
            method,
            token: token ?? "(none)",
            code: grpc.status.UNAUTHENTICATED,
            errorCode: "UnauthenticatedException",
            message: token === undefined ? "missing bearer token" : "invalid token",
          });
        }
      } finally {
        sluice.close();
        approvals.close();
        artifacts.close();
      }
    }

    // A valid token without the method's role is authenticated but not allowed.
    const runner = createSluiceClient({ address: addresses.orchestrator, token: tokens.runner });
    try {
      const err = await rpcError(() => runner.pipelines.listPipelines({}));
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    } finally {
      runner.close();
    }
    // And the admin token works.
    await expect(env.sluice.pipelines.listPipelines({})).resolves.toBeDefined();
  });

  it("serves the health check without a token on every service", async () => {
    const HealthClient = grpc.makeClientConstructor(healthService, "grpc.health.v1.Health") as unknown as new (
      address: string,
      creds: grpc.ChannelCredentials,
    ) => grpc.Client & {
      Check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
    };
    for (const service of CLUSTER_SERVICES) {
      const client = new HealthClient(env.cluster.addresses[service], grpc.credentials.createInsecure());
      try {
        const status = await new Promise<string>((resolve, reject) => {
          client.Check({ service: "" }, { deadline: Date.now() + 5000 }, (err, res) => (err === null ? resolve(res?.status ?? "") : reject(err)));
        });
        expect({ service, status }).toEqual({ service, status: "SERVING" });
      } finally {
        client.close();
      }
    }
  });
});
