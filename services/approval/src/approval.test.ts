import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { isDomainError } from "@sluice/domain";
import { JobSchema } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "./approval-api.js";
import type { DecisionDoc } from "./approval-store.js";
import { loadApprovalConfig } from "./config.js";
import { approvalOfJob } from "./job-intake.js";
import { resultOf } from "./results.js";

const TOKEN = "3f1c2a9e-5b7d-4c1e-9a2b-0d4e6f8a1b2c";
const now = new Date("2025-01-02T03:04:05.000Z");

function job(overrides: MessageInitShape<typeof JobSchema> = {}) {
  return create(JobSchema, {
    jobId: "ae-1:2",
    actionExecutionId: "ae-1",
    attempt: 2,
    pipelineName: "web",
    pipelineExecutionId: "e-1",
    stageName: "Gate",
    actionName: "Approve",
    approvalToken: TOKEN.toUpperCase(),
    configuration: { CustomData: "please check", ExternalEntityLink: "https://example.com/review" },
    deadline: timestampFromDate(new Date("2025-01-09T00:00:00.000Z")),
    ...overrides,
  });
}

describe("approvalOfJob", () => {
  it("opens a Pending approval keyed by the (lower-cased) token with the job's configuration and deadline", () => {
    const doc = approvalOfJob(job(), now);
    expect(doc).toMatchObject({
      _id: TOKEN,
      jobId: "ae-1:2",
      attempt: 2,
      status: "Pending",
      customData: "please check",
      externalEntityLink: "https://example.com/review",
      expiresAt: new Date("2025-01-09T00:00:00.000Z"),
      created: now,
    });
  });

  it("refuses a job without a token as a non-retryable validation error naming the field", () => {
    let error: unknown;
    try {
      approvalOfJob(job({ approvalToken: "" }), now);
    } catch (err) {
      error = err;
    }
    expect(isDomainError(error) && error.code === "ValidationException" && !error.retryable).toBe(true);
    expect(isDomainError(error) ? error.violations.map((v) => v.field) : []).toEqual(["approvalToken"]);
  });
});

describe("resultOf", () => {
  const approval = approvalOfJob(job(), now);
  const rejection: DecisionDoc = { _id: approval._id, status: "Rejected", summary: "not yet", decidedBy: "alice", decidedAt: now, published: false };

  it("turns a rejection into a Failed result with ApprovalRejected details", () => {
    const result = resultOf(approval, rejection);
    expect(result).toMatchObject({
      jobId: "ae-1:2",
      attempt: 2,
      status: "Failed",
      summary: "not yet",
      errorDetails: { code: "ApprovalRejected", message: "not yet" },
      externalExecutionId: TOKEN,
      updatedBy: "alice",
    });
    expect(result.finishedAt && timestampDate(result.finishedAt)).toEqual(now);
  });

  it("turns an approval into a Succeeded result without error details", () => {
    const result = resultOf(approval, { ...rejection, status: "Approved" });
    expect(result.status).toBe("Succeeded");
    expect(result.errorDetails).toBeUndefined();
  });
});

describe("page tokens", () => {
  it("round-trip and refuse anything else", () => {
    const cursor = { created: now, token: TOKEN };
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
    for (const bad of ["garbage", Buffer.from("[1,2]").toString("base64url"), Buffer.from('{"c":"x","t":1}').toString("base64url")]) {
      expect(() => decodeCursor(bad)).toThrow(/nextToken/);
    }
  });
});

describe("loadApprovalConfig", () => {
  it("applies defaults and names every bad variable", () => {
    const config = loadApprovalConfig({ NATS_URL: "nats://127.0.0.1:4222", MONGO_URL: "mongodb://127.0.0.1", SLUICE_AUTH_TOKENS: "a=approver:t" });
    expect(config).toMatchObject({ mongoDb: "sluice_approvals", sweepMs: 5000, busPrefix: undefined });
    const load = () => loadApprovalConfig({ MONGO_URL: "mongodb://127.0.0.1", SLUICE_AUTH_TOKENS: "a=king:t", APPROVAL_SWEEP_MS: "soon" });
    expect(load).toThrow(/NATS_URL/);
    expect(load).toThrow(/SLUICE_AUTH_TOKENS/);
    expect(load).toThrow(/APPROVAL_SWEEP_MS/);
  });
});
