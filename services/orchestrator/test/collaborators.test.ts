import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { DomainError, noopLogger } from "@sluice/domain";
import { GrpcStatus, createServer, createTokenAuthenticator, isRpcError, parseTokenTable } from "@sluice/grpc";
import type { SluiceServer } from "@sluice/grpc";
import { ApprovalService, ArtifactService, JobResultSchema } from "@sluice/proto";
import type { IssueJobGrantsRequest, Job, PutApprovalResultRequest } from "@sluice/proto";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator } from "../src/service.js";
import { approvalPipeline, clientsFor, dropDatabase, isolation, tapJobs, testConfig, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap } from "./helpers.js";

// The orchestrator's two gRPC collaborators, played by a real gRPC server with
// the services' contracts: it records what the orchestrator sends and answers
// as the artifact and approval services do (the end-to-end tests run the real ones).

const servers = inject("servers");
const iso = isolation("col");
const PEER_TOKENS = "orchestrator=service:svc-token,alice=approver:alice-token";

interface GrantCall {
  principal: string;
  request: IssueJobGrantsRequest;
}
interface ApprovalCall {
  principal: string;
  request: PutApprovalResultRequest;
}
const grantCalls: GrantCall[] = [];
const approvalCalls: ApprovalCall[] = [];

const unsupported = (): never => {
  throw new DomainError("ServiceUnavailableException", "not part of this test");
};

let peer: SluiceServer;
let service: Orchestrator;
let clients: Clients;
let bus: Bus;
let tap: JobTap;

beforeAll(async () => {
  peer = createServer({
    logger: noopLogger,
    auth: createTokenAuthenticator(parseTokenTable(PEER_TOKENS)),
    permissions: { IssueJobGrants: ["service"], PutApprovalResult: ["approver"] },
  });
  peer.add(ArtifactService, {
    issueJobGrants(req, ctx) {
      grantCalls.push({ principal: ctx.principal.id, request: req });
      if (req.pipelineName === "grants-refused") return Promise.reject(new DomainError("ArtifactNotFoundException", "artifact store refused the grants"));
      const grant = (key: string, method: string) => ({ url: `http://objects.test/${key}?sig=x`, method, bucket: req.bucket, key, expiresAt: timestampFromMs(Date.now() + 900_000) });
      return Promise.resolve({
        inputs: req.inputArtifactIds.map((id) => ({ name: id.split("/")[1] ?? "", artifactId: id, sha256: "ab".repeat(32), sizeBytes: 42n, grant: grant(id, "GET") })),
        outputs: req.outputNames.map((name) => ({ name, artifactId: `${req.actionExecutionId}/${name}`, grant: grant(`${req.actionExecutionId}/${name}`, "PUT") })),
      });
    },
    commitArtifact: unsupported,
    getArtifact: unsupported,
    listArtifacts: unsupported,
    createDownloadGrant: unsupported,
    renewOutputGrants: unsupported,
    issueDeployGrants: unsupported,
  });
  peer.add(ApprovalService, {
    putApprovalResult(req, ctx) {
      approvalCalls.push({ principal: ctx.principal.id, request: req });
      if (req.token === "stale") return Promise.reject(new DomainError("InvalidApprovalTokenException", "the approval token is not valid"));
      return Promise.resolve({ approvedAt: timestampFromMs(1_700_000_000_000) });
    },
    listApprovals: unsupported,
    getApproval: unsupported,
  });
  const peerPort = await peer.listen("127.0.0.1", 0);
  service = await startOrchestrator(
    testConfig(servers, iso, { ARTIFACT_ADDR: `127.0.0.1:${peerPort}`, APPROVAL_ADDR: `127.0.0.1:${peerPort}`, SLUICE_SERVICE_TOKEN: "svc-token" }),
  );
  clients = clientsFor(service.port);
  bus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-collaborators-test", logger: noopLogger, prefix: iso.prefix });
  tap = await tapJobs(bus);
});

afterAll(async () => {
  clients?.close();
  await tap?.stop();
  await bus?.close();
  await service?.stop(5_000);
  await peer?.stop(1_000);
  await dropDatabase(servers.mongoUrl, iso.dbName);
});

async function succeed(job: Job, outputs: string[]): Promise<void> {
  await bus.publish(
    bus.subjects.resultSubject(job.pipelineName, { runner: "default" }),
    JobResultSchema,
    {
      jobId: job.jobId,
      actionExecutionId: job.actionExecutionId,
      attempt: job.attempt,
      pipelineName: job.pipelineName,
      pipelineExecutionId: job.pipelineExecutionId,
      stageName: job.stageName,
      actionName: job.actionName,
      status: "Succeeded",
      outputArtifacts: outputs.map((name) => ({
        name,
        artifactId: `${job.actionExecutionId}/${name}`,
        bucket: job.artifactBucket,
        key: `${job.actionExecutionId}/${name}`,
        sha256: "ab".repeat(32),
        sizeBytes: 42n,
      })),
      revision: { revisionId: "c0ffee" },
    },
    { msgId: `${job.jobId}:result` },
  );
}

describe("artifact grants", () => {
  it("attaches upload grants for outputs and download grants for inputs, asking as the service principal", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline("granted") });
    const source = await tap.next((j) => j.pipelineName === "granted" && j.actionName === "Checkout");
    expect(source.outputs.map((o) => [o.name, o.artifactId, o.grant?.method])).toEqual([["Src", `${source.actionExecutionId}/Src`, "PUT"]]);
    const first = grantCalls.find((c) => c.request.actionExecutionId === source.actionExecutionId);
    expect(first?.principal).toBe("orchestrator");
    expect(first?.request).toMatchObject({ pipelineName: "granted", stageName: "Source", actionName: "Checkout", bucket: "sluice-artifacts", outputNames: ["Src"], inputArtifactIds: [] });

    await succeed(source, ["Src"]);
    const build = await tap.next((j) => j.pipelineName === "granted" && j.actionName === "Compile");
    expect(build.inputs.map((i) => [i.name, i.artifactId, i.grant?.method])).toEqual([["Src", `${source.actionExecutionId}/Src`, "GET"]]);
    expect(build.outputs.map((o) => o.name)).toEqual(["Built"]);
    const second = grantCalls.find((c) => c.request.actionExecutionId === build.actionExecutionId);
    expect(second?.request.inputArtifactIds).toEqual([`${source.actionExecutionId}/Src`]);
  });

  it("tells the artifact service where an ObjectStore (S3) deploy job may write, until the job's deadline", async () => {
    const declaration = threeStagePipeline("deploy-target");
    const deployStage = declaration.stages?.[2];
    if (deployStage?.actions?.[0] === undefined) throw new Error("fixture changed");
    deployStage.actions[0] = {
      name: "Ship",
      actionTypeId: { category: "Deploy", owner: "AWS", provider: "S3", version: "1" },
      configuration: { BucketName: "www-site", ObjectKey: "releases/#{codepipeline.PipelineExecutionId}.zip", Extract: "false" },
      inputArtifacts: [{ name: "Built" }],
    };
    await clients.ops.createPipeline({ pipeline: declaration });
    const source = await tap.next((j) => j.pipelineName === "deploy-target" && j.actionName === "Checkout");
    await succeed(source, ["Src"]);
    const build = await tap.next((j) => j.pipelineName === "deploy-target" && j.actionName === "Compile");
    expect(grantCalls.find((c) => c.request.actionExecutionId === build.actionExecutionId)?.request.deploy).toBeUndefined();
    await succeed(build, ["Built"]);
    const ship = await tap.next((j) => j.pipelineName === "deploy-target" && j.actionName === "Ship");
    const call = grantCalls.find((c) => c.request.actionExecutionId === ship.actionExecutionId);
    expect(call?.request.deploy).toMatchObject({ bucket: "www-site", objectKey: `releases/${ship.pipelineExecutionId}.zip`, extract: false });
    expect(call?.request.deploy?.expiresAt).toEqual(ship.deadline);
  });

  it("fails the action when the artifact service refuses the grants for good", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline("grants-refused") });
    await expect
      .poll(async () => (await clients.viewer.listPipelineExecutions({ pipelineName: "grants-refused" })).pipelineExecutionSummaries[0]?.status, { timeout: 10_000 })
      .toBe("Failed");
    const state = await clients.viewer.getPipelineState({ name: "grants-refused" });
    const error = state.stageStates[0]?.actionStates[0]?.latestExecution?.errorDetails;
    expect(error?.code).toBe("JobFailed");
    expect(error?.message).toContain("artifact grants refused");
    expect(tap.jobs.some((j) => j.pipelineName === "grants-refused")).toBe(false);
  });
});

describe("PutApprovalResult forwarding", () => {
  it("forwards with the caller's own credentials and returns the approval time", async () => {
    await clients.ops.createPipeline({ pipeline: approvalPipeline("gate") });
    const res = await clients.approver.putApprovalResult({
      pipelineName: "gate",
      stageName: "Gate",
      actionName: "Approve",
      result: { status: "Approved", summary: "ship it" },
      token: "0b5e1c8e-7d1f-4c1e-9a59-2a1f0c1b2d3e",
    });
    expect(res.approvedAt?.seconds).toBe(1_700_000_000n);
    const call = approvalCalls.at(-1);
    // The approval service sees alice, not the orchestrator: it records the real approver.
    expect(call?.principal).toBe("alice");
    expect(call?.request).toMatchObject({ pipelineName: "gate", stageName: "Gate", actionName: "Approve", token: "0b5e1c8e-7d1f-4c1e-9a59-2a1f0c1b2d3e" });
    expect(call?.request.result).toMatchObject({ status: "Approved", summary: "ship it" });
  });

  it("passes the approval service's domain errors through", async () => {
    try {
      await clients.approver.putApprovalResult({ pipelineName: "gate", stageName: "Gate", actionName: "Approve", result: { status: "Rejected", summary: "" }, token: "stale" });
      expect.unreachable("a stale token must be refused");
    } catch (err) {
      if (!isRpcError(err)) throw err;
      expect(err.code).toBe(GrpcStatus.FAILED_PRECONDITION);
      expect(err.errorCode).toBe("InvalidApprovalTokenException");
      expect(err.message).toBe("the approval token is not valid");
    }
  });
});
