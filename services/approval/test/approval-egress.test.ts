// NotificationUrl as an attack: a pipeline author points an approval's webhook at what only the
// approval service can reach (itself, the cloud metadata endpoint). The service, on its default
// egress policy, must refuse before connecting, fail the notification at once with the reason,
// log it, and keep the approval usable. A loopback receiver counts connections: it must see none.
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type {} from "@sluice/testkit";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import { createClient } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { ApprovalService, JobSchema } from "@sluice/proto";
import { MongoClient } from "mongodb";
import type { ApprovalDoc } from "../src/approval-store.js";
import { loadApprovalConfig } from "../src/config.js";
import { startApprovalService } from "../src/service.js";
import type { RunningApprovalService } from "../src/service.js";
import { tokenRef } from "../src/token-ref.js";

const servers = inject("servers");
const suffix = randomUUID().slice(0, 8);
const prefix = `apeg${suffix}`;
const dbName = `test_approval_egress_${suffix}`;
const SERVICE_TOKEN = `svc-${randomUUID()}`;
const APPROVER_TOKEN = `alice-${randomUUID()}`;

const warnings: { msg: string; fields: Record<string, unknown> }[] = [];
function recordingLogger(base: Record<string, unknown> = {}): Logger {
  return {
    debug: () => undefined,
    info: () => undefined,
    warn: (msg, fields) => warnings.push({ msg, fields: { ...base, ...fields } }),
    error: () => undefined,
    child: (fields) => recordingLogger({ ...base, ...fields }),
  };
}

let receiver: http.Server;
let port: number;
let connections = 0;
let service: RunningApprovalService;
let bus: Bus;
let mongo: MongoClient;
let orchestrator: Client<typeof ApprovalService>;
let alice: Client<typeof ApprovalService>;

beforeAll(async () => {
  receiver = http.createServer((_req, res) => res.writeHead(204).end());
  receiver.on("connection", () => connections++);
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  port = (receiver.address() as AddressInfo).port;
  // No EGRESS_ALLOW and strong tokens: the production defaults.
  const config = loadApprovalConfig({
    NATS_URL: servers.natsUrl,
    MONGO_URL: servers.mongoUrl,
    MONGO_DB: dbName,
    SLUICE_AUTH_TOKENS: `orchestrator=service:${SERVICE_TOKEN},alice=approver:${APPROVER_TOKEN}`,
    SLUICE_BUS_PREFIX: prefix,
    APPROVAL_SWEEP_MS: "50",
  });
  service = await startApprovalService(config, { logger: recordingLogger(), notifyTimeoutMs: 2000 });
  bus = await connectBus({ servers: servers.natsUrl, name: "approval-egress-test", logger: recordingLogger(), prefix });
  mongo = await MongoClient.connect(servers.mongoUrl);
  orchestrator = createClient(ApprovalService, `127.0.0.1:${service.port}`, { token: SERVICE_TOKEN });
  alice = createClient(ApprovalService, `127.0.0.1:${service.port}`, { token: APPROVER_TOKEN });
});

afterAll(async () => {
  orchestrator?.close();
  alice?.close();
  await service?.stop(5_000);
  await bus?.close();
  await mongo?.db(dbName).dropDatabase();
  await mongo?.close();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
});

/** Publishes an Approval/Manual job with the given NotificationUrl, as the orchestrator does. */
async function openApproval(notificationUrl: string): Promise<{ token: string; pipelineName: string }> {
  const pipelineName = `pipe-${randomUUID().slice(0, 8)}`;
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
      configuration: { NotificationUrl: notificationUrl },
      approvalToken: token,
    },
    { msgId: jobId },
  );
  await expect.poll(async () => (await orchestrator.listApprovals({ pipelineName })).approvals.map((a) => a.token)).toContain(token);
  return { token, pipelineName };
}

function stored(token: string): Promise<ApprovalDoc | null> {
  return mongo.db(dbName).collection<ApprovalDoc>("approvals").findOne({ _id: token });
}

describe("NotificationUrl through the egress policy", () => {
  const attacks: [string, () => string, RegExp][] = [
    ["127.0.0.1", () => `http://127.0.0.1:${port}/hook`, /127\.0\.0\.1 is a loopback address/],
    ["[::ffff:127.0.0.1]", () => `http://[::ffff:127.0.0.1]:${port}/hook`, /loopback address \(IPv4 127\.0\.0\.1 inside IPv6\)/],
    ["localhost", () => `http://localhost:${port}/hook`, /localhost resolves to .*, a loopback address/],
    ["169.254.169.254", () => "http://169.254.169.254/latest/meta-data/iam/security-credentials/", /169\.254\.169\.254 is a link-local address/],
  ];

  for (const [name, url, reason] of attacks) {
    it(`refuses ${name} before connecting, fails the notification at once and logs why`, async () => {
      const before = connections;
      const a = await openApproval(url());
      await expect.poll(async () => (await stored(a.token))?.notifyStatus).toBe("Failed");
      const doc = await stored(a.token);
      expect(doc?.notifyLastError).toMatch(/^NotificationUrl refused by the egress policy: /);
      expect(doc?.notifyLastError).toMatch(reason);
      // Not retried: a policy refusal is not a flaky webhook.
      expect(doc?.notifyAttempts).toBe(1);
      expect(doc?.notifyNextAt).toBeNull();
      expect((await orchestrator.getApproval({ token: a.token })).approval?.notificationStatus).toBe("Failed");
      // Logs name the approval by a digest of its token, never the token itself.
      const logged = warnings.find((w) => w.fields["approval"] === tokenRef(a.token));
      expect(logged?.msg).toBe("approval notification refused; not retrying");
      expect(String(logged?.fields["err"])).toMatch(reason);
      expect(connections).toBe(before);
      // The approval itself stays open and takes an answer.
      await alice.putApprovalResult({ pipelineName: a.pipelineName, stageName: "Gate", actionName: "Approve", token: a.token, result: { status: "Approved", summary: "ok" } });
    });
  }
});
