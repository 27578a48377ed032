import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { GrpcStatus, createClient, isRpcError } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { ApprovalService, JobResultSchema, JobSchema } from "@sluice/proto";
import type { JobResult } from "@sluice/proto";
import { MongoClient } from "mongodb";
import type { ApprovalDoc, AuditDoc, DecisionDoc } from "../src/approval-store.js";
import { loadApprovalConfig } from "../src/config.js";
import { startApprovalService } from "../src/service.js";
import type { RunningApprovalService } from "../src/service.js";

const servers = inject("servers");
const suffix = randomUUID().slice(0, 8);
const prefix = `apr${suffix}`;
const dbName = `test_approvals_${suffix}`;
const TOKENS = "orchestrator=service:svc-token,alice=approver:alice-token,bob=approver:bob-token,vic=viewer:viewer-token";

let service: RunningApprovalService;
let bus: Bus;
let results: Consumer;
let mongo: MongoClient;
const received: JobResult[] = [];
let orchestrator: Client<typeof ApprovalService>;
let alice: Client<typeof ApprovalService>;
let bob: Client<typeof ApprovalService>;
let viewer: Client<typeof ApprovalService>;
let anonymous: Client<typeof ApprovalService>;

beforeAll(async () => {
  const config = loadApprovalConfig({
    NATS_URL: servers.natsUrl,
    MONGO_URL: servers.mongoUrl,
    MONGO_DB: dbName,
    SLUICE_AUTH_TOKENS: TOKENS,
    SLUICE_DEV_MODE: "true",
    SLUICE_BUS_PREFIX: prefix,
    APPROVAL_SWEEP_MS: "100",
  });
  service = await startApprovalService(config);
  bus = await connectBus({ servers: servers.natsUrl, name: "approval-test", logger: noopLogger, prefix });
  // The orchestrator's side: read every result the approval service publishes.
  results = await bus.consume({
    stream: bus.streams.results,
    durable: "test-results",
    filterSubject: bus.subjects.streamFilter("results"),
    schema: JobResultSchema,
    handler: (result) => {
      received.push(result);
      return Promise.resolve();
    },
  });
  mongo = await MongoClient.connect(servers.mongoUrl);
  const address = `127.0.0.1:${service.port}`;
  orchestrator = createClient(ApprovalService, address, { token: "svc-token" });
  alice = createClient(ApprovalService, address, { token: "alice-token" });
  bob = createClient(ApprovalService, address, { token: "bob-token" });
  viewer = createClient(ApprovalService, address, { token: "viewer-token" });
  anonymous = createClient(ApprovalService, address);
});

afterAll(async () => {
  for (const c of [orchestrator, alice, bob, viewer, anonymous]) c?.close();
  await service?.stop(5_000);
  await results?.stop();
  await bus?.close();
  await mongo?.db(dbName).dropDatabase();
  await mongo?.close();
});

interface OpenedApproval {
  token: string;
  jobId: string;
  pipelineName: string;
  stageName: string;
  actionName: string;
}

/** Publishes an Approval/Manual job as the orchestrator does and waits until the service lists it. */
async function openApproval(pipelineName = `pipe-${randomUUID().slice(0, 8)}`, deadline?: Date): Promise<OpenedApproval> {
  const token = randomUUID();
  const actionExecutionId = randomUUID();
  const jobId = `${actionExecutionId}:1`;
  await bus.publish(
    bus.subjects.jobSubject("default", "Approval", "Manual"),
    JobSchema,
    {
      jobId,
      actionExecutionId,
      attempt: 1,
      pipelineName,
      pipelineVersion: 1,
      pipelineExecutionId: randomUUID(),
      stageName: "Gate",
      actionName: "Approve",
      actionTypeId: { category: "Approval", owner: "AWS", provider: "Manual", version: "1" },
      configuration: { CustomData: "Check the staging site", ExternalEntityLink: "https://staging.example.com" },
      approvalToken: token,
      ...(deadline !== undefined ? { deadline: timestampFromDate(deadline) } : {}),
    },
    { msgId: jobId },
  );
  await expect.poll(async () => (await orchestrator.listApprovals({ pipelineName })).approvals.map((a) => a.token)).toContain(token);
  return { token, jobId, pipelineName, stageName: "Gate", actionName: "Approve" };
}

function answer(a: OpenedApproval, status: string, summary = "looks good") {
  return { pipelineName: a.pipelineName, stageName: a.stageName, actionName: a.actionName, token: a.token, result: { status, summary } };
}

async function resultFor(jobId: string): Promise<JobResult> {
  await expect.poll(() => received.some((r) => r.jobId === jobId)).toBe(true);
  const found = received.filter((r) => r.jobId === jobId);
  expect(found).toHaveLength(1);
  return found[0] as JobResult;
}

async function rpcError(promise: Promise<unknown>) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isRpcError(err)) throw new Error(`expected an rpc error, got ${String(err)}`);
  return err;
}

describe("ApprovalService", () => {
  it("lists an approval job from the bus, approves it once, and publishes a Succeeded result", async () => {
    const a = await openApproval();
    const listed = await viewer.listApprovals({ pipelineName: a.pipelineName });
    expect(listed.approvals[0]).toMatchObject({
      token: a.token,
      status: "Pending",
      stageName: "Gate",
      actionName: "Approve",
      customData: "Check the staging site",
      externalEntityLink: "https://staging.example.com",
    });

    const before = Date.now();
    const response = await alice.putApprovalResult(answer(a, "Approved"));
    expect(Number(response.approvedAt?.seconds ?? 0n) * 1000).toBeGreaterThanOrEqual(before - 1000);

    const result = await resultFor(a.jobId);
    expect(result).toMatchObject({
      status: "Succeeded",
      summary: "looks good",
      updatedBy: "alice",
      externalExecutionId: a.token,
      pipelineName: a.pipelineName,
      attempt: 1,
    });
    expect(result.errorDetails).toBeUndefined();

    const second = await rpcError(bob.putApprovalResult(answer(a, "Rejected")));
    expect(second.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(second.errorCode).toBe("ApprovalAlreadyCompletedException");

    const decided = await orchestrator.listApprovals({ pipelineName: a.pipelineName, status: "Approved" });
    expect(decided.approvals[0]).toMatchObject({ token: a.token, status: "Approved", decidedBy: "alice", summary: "looks good" });

    const audit = await mongo.db(dbName).collection<AuditDoc>("audit").find({ token: a.token }).sort({ at: 1 }).toArray();
    expect(audit.map((e) => [e.principal, e.outcome])).toEqual([
      ["alice", "Approved"],
      ["bob", "Refused"],
    ]);
    expect(audit[1]?.reason).toContain("ApprovalAlreadyCompletedException");
  });

  it("publishes a Failed result with ApprovalRejected for a rejection", async () => {
    const a = await openApproval();
    await bob.putApprovalResult(answer(a, "Rejected", "not ready"));
    const result = await resultFor(a.jobId);
    expect(result).toMatchObject({ status: "Failed", summary: "not ready", updatedBy: "bob", errorDetails: { code: "ApprovalRejected", message: "not ready" } });
  });

  it("lets exactly one of several concurrent answers win", async () => {
    for (let round = 0; round < 5; round++) {
      const a = await openApproval();
      const outcomes = await Promise.allSettled([
        alice.putApprovalResult(answer(a, "Approved")),
        bob.putApprovalResult(answer(a, "Rejected")),
        alice.putApprovalResult(answer(a, "Rejected")),
      ]);
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      for (const lost of outcomes.filter((o) => o.status === "rejected")) {
        expect(isRpcError(lost.reason, "ApprovalAlreadyCompletedException")).toBe(true);
      }
      await resultFor(a.jobId);
    }
  });

  it("answers InvalidApprovalTokenException for an unknown token, another action's token, or an expired approval", async () => {
    const a = await openApproval();
    const unknown = await rpcError(alice.putApprovalResult({ ...answer(a, "Approved"), token: randomUUID() }));
    expect(unknown.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(unknown.errorCode).toBe("InvalidApprovalTokenException");
    const otherStage = await rpcError(alice.putApprovalResult({ ...answer(a, "Approved"), stageName: "Deploy" }));
    expect(otherStage.errorCode).toBe("InvalidApprovalTokenException");

    const expired = await openApproval(undefined, new Date(Date.now() - 1000));
    const late = await rpcError(alice.putApprovalResult(answer(expired, "Approved")));
    expect(late.errorCode).toBe("InvalidApprovalTokenException");
    expect((await orchestrator.listApprovals({ pipelineName: a.pipelineName })).approvals[0]?.status).toBe("Pending");
  });

  it("validates answers field by field", async () => {
    const err = await rpcError(
      alice.putApprovalResult({ pipelineName: "p", stageName: "", actionName: "a", token: "nope", result: { status: "Maybe", summary: "x".repeat(513) } }),
    );
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.violations.map((v) => v.field).sort()).toEqual(["result.status", "result.summary", "stageName", "token"]);
    const list = await rpcError(viewer.listApprovals({ status: "Done", maxResults: 0 }));
    expect(list.violations.map((v) => v.field).sort()).toEqual(["maxResults", "status"]);
    const page = await rpcError(viewer.listApprovals({ nextToken: "garbage" }));
    expect(page.errorCode).toBe("InvalidNextTokenException");
  });

  it("requires a token and the approver role to answer", async () => {
    const a = await openApproval();
    const denied = await rpcError(viewer.putApprovalResult(answer(a, "Approved")));
    expect(denied.code).toBe(GrpcStatus.PERMISSION_DENIED);
    const service = await rpcError(orchestrator.putApprovalResult(answer(a, "Approved")));
    expect(service.code).toBe(GrpcStatus.PERMISSION_DENIED);
    const none = await rpcError(anonymous.listApprovals({}));
    expect(none.code).toBe(GrpcStatus.UNAUTHENTICATED);
  });

  it("pages newest first and records a redelivered job once", async () => {
    const pipelineName = `paged-${suffix}`;
    const first = await openApproval(pipelineName);
    const second = await openApproval(pipelineName);
    const third = await openApproval(pipelineName);
    const page1 = await viewer.listApprovals({ pipelineName, maxResults: 2 });
    expect(page1.approvals.map((x) => x.token)).toEqual([third.token, second.token]);
    expect(page1.nextToken).not.toBe("");
    const page2 = await viewer.listApprovals({ pipelineName, maxResults: 2, nextToken: page1.nextToken });
    expect(page2.approvals.map((x) => x.token)).toEqual([first.token]);
    expect(page2.nextToken).toBe("");

    // The same job again under another message id (a redelivery past the duplicate window).
    const doc = await mongo.db(dbName).collection<ApprovalDoc>("approvals").findOne({ _id: first.token });
    await bus.publish(
      bus.subjects.jobSubject("default", "Approval", "Manual"),
      JobSchema,
      { jobId: first.jobId, actionExecutionId: doc?.actionExecutionId ?? "", attempt: 1, pipelineName, stageName: "Gate", actionName: "Approve", approvalToken: first.token },
      { msgId: `${first.jobId}-again` },
    );
    const marker = await openApproval(pipelineName);
    const all = await viewer.listApprovals({ pipelineName });
    expect(all.approvals.map((x) => x.token)).toEqual([marker.token, third.token, second.token, first.token]);
  });

  it("finishes a decision the process died on: applies it to the approval and publishes its result", async () => {
    // A crash right after the winning answer's decision was inserted leaves the
    // approval Pending and the result unpublished.
    const a = await openApproval();
    const decidedAt = new Date(Date.now() - 60_000);
    await mongo.db(dbName).collection<DecisionDoc>("decisions").insertOne({ _id: a.token, status: "Approved", summary: "ok", decidedBy: "carol", decidedAt, published: false });
    const result = await resultFor(a.jobId);
    expect(result).toMatchObject({ status: "Succeeded", updatedBy: "carol", externalExecutionId: a.token });
    expect((await orchestrator.listApprovals({ pipelineName: a.pipelineName })).approvals[0]).toMatchObject({ status: "Approved", decidedBy: "carol" });
    await expect.poll(async () => (await mongo.db(dbName).collection<DecisionDoc>("decisions").findOne({ _id: a.token }))?.published).toBe(true);
    const late = await rpcError(alice.putApprovalResult(answer(a, "Rejected")));
    expect(late.errorCode).toBe("ApprovalAlreadyCompletedException");
  });
});
