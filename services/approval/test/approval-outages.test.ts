import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { recordingLogger, startTcpRelay } from "@sluice/testkit";
import type { RecordedLine, TcpRelay } from "@sluice/testkit";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { createClient } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { ApprovalService, JobResultSchema, JobSchema } from "@sluice/proto";
import type { JobResult } from "@sluice/proto";
import { MongoClient } from "mongodb";
import { loadApprovalConfig } from "../src/config.js";
import { startApprovalService } from "../src/service.js";
import type { RunningApprovalService } from "../src/service.js";

const servers = inject("servers");
const suffix = randomUUID().slice(0, 8);
const prefix = `apo${suffix}`;
const dbName = `test_approval_outages_${suffix}`;
const TOKENS = "orchestrator=service:svc-token,alice=approver:alice-token";

let mongoRelay: TcpRelay;
let natsRelay: TcpRelay;
let service: RunningApprovalService;
let bus: Bus;
let results: Consumer;
let mongo: MongoClient;
let orchestrator: Client<typeof ApprovalService>;
let alice: Client<typeof ApprovalService>;
const received: JobResult[] = [];
const logs: RecordedLine[] = [];

beforeAll(async () => {
  const mongoUrl = new URL(servers.mongoUrl);
  const natsUrl = new URL(servers.natsUrl);
  mongoRelay = await startTcpRelay({ host: mongoUrl.hostname, port: Number(mongoUrl.port) });
  natsRelay = await startTcpRelay({ host: natsUrl.hostname, port: Number(natsUrl.port) });
  const config = loadApprovalConfig({
    NATS_URL: `nats://127.0.0.1:${natsRelay.port}`,
    MONGO_URL: `mongodb://127.0.0.1:${mongoRelay.port}/`,
    MONGO_DB: dbName,
    SLUICE_AUTH_TOKENS: TOKENS,
    SLUICE_DEV_MODE: "true",
    SLUICE_BUS_PREFIX: prefix,
    APPROVAL_SWEEP_MS: "100",
  });
  service = await startApprovalService(config, { logger: recordingLogger(logs), mongoServerSelectionTimeoutMs: 300 });
  bus = await connectBus({ servers: servers.natsUrl, name: "approval-outage-test", logger: noopLogger, prefix });
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
  orchestrator = createClient(ApprovalService, `127.0.0.1:${service.port}`, { token: "svc-token" });
  alice = createClient(ApprovalService, `127.0.0.1:${service.port}`, { token: "alice-token" });
});

afterAll(async () => {
  mongoRelay?.up();
  natsRelay?.up();
  orchestrator?.close();
  alice?.close();
  await service?.stop(5_000);
  await results?.stop();
  await bus?.close();
  await mongo?.db(dbName).dropDatabase();
  await mongo?.close();
  await mongoRelay?.close();
  await natsRelay?.close();
});

async function publishApprovalJob(pipelineName: string): Promise<{ token: string; jobId: string }> {
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
      approvalToken: token,
    },
    { msgId: jobId },
  );
  return { token, jobId };
}

describe("approval service outages", () => {
  it("an approval job that arrives while MongoDB is down is retried past max_deliver and opened once it is back", async () => {
    mongoRelay.down();
    const { token } = await publishApprovalJob("mongo-down");
    await expect
      .poll(() => Math.max(0, ...logs.filter((l) => l.fields["durable"] === "approval" && l.msg.includes("transient")).map((l) => Number(l.fields["deliveryCount"]))), {
        timeout: 60_000,
        interval: 200,
      })
      .toBeGreaterThanOrEqual(7);
    mongoRelay.up();
    await expect.poll(async () => (await orchestrator.listApprovals({ pipelineName: "mongo-down" })).approvals.map((a) => a.token), { timeout: 20_000 }).toContain(token);
    const dead = await bus.jsm.streams.info(bus.streams.dlq);
    expect(dead.state.messages).toBe(0);
  });

  it("a decision made while NATS is unreachable is published as the action's result once it is back", async () => {
    const { token, jobId } = await publishApprovalJob("nats-down");
    await expect.poll(async () => (await orchestrator.listApprovals({ pipelineName: "nats-down" })).approvals.map((a) => a.token), { timeout: 20_000 }).toContain(token);
    natsRelay.down();
    await alice.putApprovalResult({ pipelineName: "nats-down", stageName: "Gate", actionName: "Approve", token, result: { status: "Approved", summary: "ship it" } });
    // Stored, not yet on the bus.
    expect(await mongo.db(dbName).collection<{ _id: string; published: boolean }>("decisions").findOne({ _id: token })).toMatchObject({ published: false });
    expect(received.some((r) => r.jobId === jobId)).toBe(false);
    natsRelay.up();
    await expect.poll(() => received.filter((r) => r.jobId === jobId).map((r) => r.status), { timeout: 30_000 }).toEqual(["Succeeded"]);
    await expect.poll(async () => (await mongo.db(dbName).collection<{ _id: string; published: boolean }>("decisions").findOne({ _id: token }))?.published, { timeout: 10_000 }).toBe(true);
  });
});
