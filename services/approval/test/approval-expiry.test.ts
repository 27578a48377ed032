// Approval expiry, GetApproval and webhook notifications against real servers, on an injected
// clock: expiry and notification retries follow the service's clock, so the test moves it.
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type {} from "@sluice/testkit";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { GrpcStatus, createClient, isRpcError } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { ApprovalService, JobResultSchema, JobSchema } from "@sluice/proto";
import type { JobResult } from "@sluice/proto";
import { MongoClient } from "mongodb";
import type { ApprovalDoc } from "../src/approval-store.js";
import { loadApprovalConfig } from "../src/config.js";
import { NOTIFY_MAX_ATTEMPTS, notifyRetryDelayMs } from "../src/notifications.js";
import { startApprovalService } from "../src/service.js";
import type { RunningApprovalService } from "../src/service.js";

const servers = inject("servers");
const suffix = randomUUID().slice(0, 8);
const prefix = `apx${suffix}`;
const dbName = `test_approval_expiry_${suffix}`;
const TOKENS = "orchestrator=service:svc-token,alice=approver:alice-token";
const MINUTE = 60_000;

/** The service's clock; only ever moved forward. */
let clock = Date.now();
const advance = (ms: number): void => {
  clock += ms;
};

interface Hook {
  path: string;
  body: unknown;
  contentType: string | undefined;
}
const hooks: Hook[] = [];
const failuresLeft = new Map<string, number>();
let webhook: http.Server;
let webhookUrl: string;
const hanging = new Set<http.ServerResponse>();

let service: RunningApprovalService;
let bus: Bus;
let results: Consumer;
let mongo: MongoClient;
const received: JobResult[] = [];
let orchestrator: Client<typeof ApprovalService>;
let alice: Client<typeof ApprovalService>;

beforeAll(async () => {
  // /ok answers 204; /flaky/<n>… fails with 500 n times, then 204; /down always 500; /hang never answers.
  webhook = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "";
      hooks.push({ path, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown, contentType: req.headers["content-type"] });
      if (path.startsWith("/hang")) {
        hanging.add(res);
        return;
      }
      const flaky = /^\/flaky\/(\d+)/.exec(path);
      if (flaky !== null) {
        const left = failuresLeft.get(path) ?? Number(flaky[1]);
        failuresLeft.set(path, left - 1);
        res.writeHead(left > 0 ? 500 : 204).end();
        return;
      }
      res.writeHead(path.startsWith("/down") ? 500 : 204).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}`;

  const config = loadApprovalConfig({
    NATS_URL: servers.natsUrl,
    MONGO_URL: servers.mongoUrl,
    MONGO_DB: dbName,
    SLUICE_AUTH_TOKENS: TOKENS,
    SLUICE_BUS_PREFIX: prefix,
    APPROVAL_SWEEP_MS: "50",
    APPROVAL_CONSOLE_URL: "https://sluice.example.com",
    // The test's short tokens and its loopback webhook: both refused by the production defaults.
    SLUICE_DEV_MODE: "true",
    EGRESS_ALLOW: "127.0.0.1/32",
  });
  service = await startApprovalService(config, { now: () => new Date(clock), notifyTimeoutMs: 300 });
  bus = await connectBus({ servers: servers.natsUrl, name: "approval-expiry-test", logger: noopLogger, prefix });
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
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  orchestrator?.close();
  alice?.close();
  await service?.stop(5_000);
  await results?.stop();
  await bus?.close();
  await mongo?.db(dbName).dropDatabase();
  await mongo?.close();
  await new Promise<void>((resolve) => (webhook ? webhook.close(() => resolve()) : resolve()));
});

interface Opened {
  token: string;
  jobId: string;
  pipelineName: string;
}

/** Publishes an Approval/Manual job as the orchestrator does and waits until the service has it. */
async function openApproval(opts: { pipelineName?: string; deadline?: Date; configuration?: Record<string, string> } = {}): Promise<Opened> {
  const pipelineName = opts.pipelineName ?? `pipe-${randomUUID().slice(0, 8)}`;
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
      configuration: { CustomData: "check staging", ExternalEntityLink: "https://staging.example.com", ...opts.configuration },
      approvalToken: token,
      ...(opts.deadline !== undefined ? { deadline: timestampFromDate(opts.deadline) } : {}),
    },
    { msgId: jobId },
  );
  await expect.poll(async () => (await orchestrator.listApprovals({ pipelineName })).approvals.map((a) => a.token)).toContain(token);
  return { token, jobId, pipelineName };
}

function answer(a: Opened, status: string) {
  return { pipelineName: a.pipelineName, stageName: "Gate", actionName: "Approve", token: a.token, result: { status, summary: "ok" } };
}

async function approval(token: string) {
  const got = await orchestrator.getApproval({ token });
  if (got.approval === undefined) throw new Error("GetApproval returned no approval");
  return got.approval;
}

async function rpcError(promise: Promise<unknown>) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isRpcError(err)) throw new Error(`expected an rpc error, got ${String(err)}`);
  return err;
}

const hooksTo = (path: string) => hooks.filter((h) => h.path === path);

/** The stored approval document, notification state included. */
function stored(token: string): Promise<ApprovalDoc | null> {
  return mongo.db(dbName).collection<ApprovalDoc>("approvals").findOne({ _id: token });
}

describe("approval expiry", () => {
  it("marks an unanswered approval Expired at its deadline, refuses answers, and publishes no result", async () => {
    const pipelineName = `expiring-${suffix}`;
    const deadline = new Date(clock + 10 * MINUTE);
    const a = await openApproval({ pipelineName, deadline });
    const open = await approval(a.token);
    expect(open.status).toBe("Pending");
    expect(open.expiresAt && timestampDate(open.expiresAt)).toEqual(deadline);

    advance(10 * MINUTE + 1000);
    await expect.poll(async () => (await approval(a.token)).status).toBe("Expired");
    const expired = await approval(a.token);
    expect(expired.decidedBy).toBe("");
    expect(expired.decidedAt && timestampDate(expired.decidedAt)).toEqual(deadline);
    expect((await orchestrator.listApprovals({ pipelineName, status: "Expired" })).approvals.map((x) => x.token)).toEqual([a.token]);

    const late = await rpcError(alice.putApprovalResult(answer(a, "Approved")));
    expect(late.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(late.errorCode).toBe("InvalidApprovalTokenException");
    expect(late.message).toContain(`approval expired at ${deadline.toISOString()}`);

    // A later approval of the same pipeline (same result partition) is answered; once its
    // result is in, the expired one would have arrived before it.
    const next = await openApproval({ pipelineName, deadline: new Date(clock + 60 * MINUTE) });
    await alice.putApprovalResult(answer(next, "Approved"));
    await expect.poll(() => received.some((r) => r.jobId === next.jobId)).toBe(true);
    expect(received.filter((r) => r.jobId === a.jobId)).toEqual([]);
  });

  it("refuses an answer once the deadline passed, whether or not the sweeper marked the approval yet", async () => {
    // Written straight into the store with a past deadline: the answer may race the sweep.
    const deadline = new Date(clock - 1);
    const token = randomUUID();
    const actionExecutionId = randomUUID();
    const pipelineName = `late-${suffix}`;
    await mongo
      .db(dbName)
      .collection<ApprovalDoc>("approvals")
      .insertOne({
        _id: token,
        pipelineName,
        pipelineExecutionId: "e",
        stageName: "Gate",
        actionName: "Approve",
        actionExecutionId,
        jobId: `${actionExecutionId}:1`,
        attempt: 1,
        status: "Pending",
        summary: "",
        decidedBy: "",
        decidedAt: null,
        created: new Date(clock - MINUTE),
        customData: "",
        externalEntityLink: "",
        expiresAt: deadline,
      });
    const err = await rpcError(alice.putApprovalResult(answer({ token, jobId: `${actionExecutionId}:1`, pipelineName }, "Rejected")));
    expect(err.errorCode).toBe("InvalidApprovalTokenException");
    expect(err.message).toContain("approval expired at");
    await expect.poll(async () => (await approval(token)).status).toBe("Expired");
  });

  it("expires 7 days after opening when the job carries no deadline", async () => {
    const opened = clock;
    const a = await openApproval();
    const got = await approval(a.token);
    expect(got.expiresAt && timestampDate(got.expiresAt).getTime()).toBe(opened + 7 * 24 * 60 * MINUTE);
    advance(7 * 24 * 60 * MINUTE - MINUTE);
    await alice.putApprovalResult(answer(a, "Approved"));
    // Answered a minute before expiry: approved, recorded who and when, never expired afterwards.
    advance(2 * MINUTE);
    const decided = await approval(a.token);
    expect(decided).toMatchObject({ status: "Approved", decidedBy: "alice", summary: "ok" });
  });
});

describe("GetApproval", () => {
  it("answers one approval by token, and InvalidApprovalTokenException for an unknown one", async () => {
    const a = await openApproval({ deadline: new Date(clock + 60 * MINUTE) });
    expect(await approval(a.token.toUpperCase())).toMatchObject({
      token: a.token,
      status: "Pending",
      customData: "check staging",
      externalEntityLink: "https://staging.example.com",
      notificationStatus: "",
    });
    const unknown = await rpcError(orchestrator.getApproval({ token: randomUUID() }));
    expect(unknown.errorCode).toBe("InvalidApprovalTokenException");
    const bad = await rpcError(orchestrator.getApproval({ token: "nope" }));
    expect(bad.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(bad.violations.map((v) => v.field)).toEqual(["token"]);
  });
});

describe("approval notifications", () => {
  it("POSTs AWS's approval message to NotificationUrl, retrying a failure on the stored schedule", async () => {
    const path = `/flaky/1/${suffix}`;
    const deadline = new Date(clock + 60 * MINUTE);
    const a = await openApproval({ deadline, configuration: { NotificationUrl: `${webhookUrl}${path}` } });
    await expect.poll(() => hooksTo(path).length).toBe(1);
    // The failure is recorded with its retry time (the first attempt's lease ends later than that).
    const opened = clock;
    await expect.poll(async () => (await stored(a.token))?.notifyNextAt?.getTime()).toBe(opened + notifyRetryDelayMs(1));
    expect(await stored(a.token)).toMatchObject({ notifyStatus: "Pending", notifyAttempts: 1, notifyLastError: "HTTP 500" });
    expect((await approval(a.token)).notificationStatus).toBe("Pending");
    expect(hooksTo(path)[0]).toEqual({
      path,
      contentType: "application/json",
      body: {
        region: "local",
        consoleLink: `https://sluice.example.com/pipelines/${a.pipelineName}`,
        approval: {
          pipelineName: a.pipelineName,
          stageName: "Gate",
          actionName: "Approve",
          token: a.token,
          expires: `${deadline.toISOString().slice(0, 16)}Z`,
          externalEntityLink: "https://staging.example.com",
          approvalReviewLink: `https://sluice.example.com/pipelines/${a.pipelineName}/stages/Gate/actions/Approve/approve?token=${a.token}`,
          customData: "check staging",
        },
      },
    });
    advance(notifyRetryDelayMs(1));
    await expect.poll(async () => (await approval(a.token)).notificationStatus).toBe("Sent");
    expect(hooksTo(path)).toHaveLength(2);
  });

  it("gives up after the last attempt, and never holds up the approval", async () => {
    const path = `/down/${suffix}`;
    const a = await openApproval({ deadline: new Date(clock + 60 * MINUTE), configuration: { NotificationUrl: `${webhookUrl}${path}` } });
    for (let attempt = 1; attempt < NOTIFY_MAX_ATTEMPTS; attempt++) {
      await expect.poll(() => hooksTo(path).length).toBe(attempt);
      // The failed attempt is recorded with its retry time (the clock stands still meanwhile); then reach it.
      const failedAt = clock;
      await expect.poll(async () => (await stored(a.token))?.notifyNextAt?.getTime()).toBe(failedAt + notifyRetryDelayMs(attempt));
      expect((await stored(a.token))?.notifyAttempts).toBe(attempt);
      advance(notifyRetryDelayMs(attempt));
    }
    await expect.poll(async () => (await approval(a.token)).notificationStatus).toBe("Failed");
    expect(hooksTo(path)).toHaveLength(NOTIFY_MAX_ATTEMPTS);
    // The approval itself was open all along and still takes an answer.
    await alice.putApprovalResult(answer(a, "Approved"));
    await expect.poll(() => received.some((r) => r.jobId === a.jobId && r.status === "Succeeded")).toBe(true);
  });

  it("times out a webhook that does not answer and skips the retry once the approval is answered", async () => {
    const path = `/hang/${suffix}`;
    const a = await openApproval({ deadline: new Date(clock + 60 * MINUTE), configuration: { NotificationUrl: `${webhookUrl}${path}` } });
    const opened = clock;
    await expect.poll(async () => (await stored(a.token))?.notifyNextAt?.getTime(), { timeout: 10_000 }).toBe(opened + notifyRetryDelayMs(1));
    expect((await stored(a.token))?.notifyLastError).toBe("no answer within 300 ms");
    await alice.putApprovalResult(answer(a, "Rejected"));
    advance(notifyRetryDelayMs(1));
    await expect.poll(async () => (await approval(a.token)).notificationStatus).toBe("Skipped");
    expect(hooksTo(path)).toHaveLength(1);
  });

  it("does not send to a URL that is not http(s)", async () => {
    const a = await openApproval({ deadline: new Date(clock + 60 * MINUTE), configuration: { NotificationUrl: "arn:aws:sns:us-east-1:1:topic" } });
    expect((await approval(a.token)).notificationStatus).toBe("Failed");
  });
});
