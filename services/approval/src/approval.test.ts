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
import { notificationOf, notificationUrlProblem, notifyRetryDelayMs } from "./notifications.js";
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

  it("expires 7 days after opening when the job carries no deadline", () => {
    const doc = approvalOfJob(job({ deadline: undefined }), now);
    expect(doc.expiresAt).toEqual(new Date("2025-01-09T03:04:05.000Z"));
    expect(doc.notifyStatus).toBe("");
  });

  it("makes a NotificationUrl's notification due at once, and fails an unusable one without sending", () => {
    const configuration = { NotificationUrl: " https://hooks.example.com/T1/B2/secret " };
    expect(approvalOfJob(job({ configuration }), now)).toMatchObject({
      notifyStatus: "Pending",
      notifyUrl: "https://hooks.example.com/T1/B2/secret",
      notifyAttempts: 0,
      notifyNextAt: now,
    });
    const bad = approvalOfJob(job({ configuration: { NotificationUrl: "arn:aws:sns:us-east-1:123456789012:approvals" } }), now);
    expect(bad).toMatchObject({ notifyStatus: "Failed", notifyNextAt: null });
    expect(bad.notifyLastError).toBe("NotificationUrl must be an http or https URL, not arn:");
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

describe("notifications", () => {
  it("shapes the body like AWS's SNS approval message", () => {
    const doc = approvalOfJob(job(), now);
    expect(notificationOf(doc, { region: "local", consoleUrl: "https://sluice.example.com/" })).toEqual({
      region: "local",
      consoleLink: "https://sluice.example.com/pipelines/web",
      approval: {
        pipelineName: "web",
        stageName: "Gate",
        actionName: "Approve",
        token: TOKEN,
        expires: "2025-01-09T00:00Z",
        externalEntityLink: "https://example.com/review",
        approvalReviewLink: `https://sluice.example.com/pipelines/web/stages/Gate/actions/Approve/approve?token=${TOKEN}`,
        customData: "please check",
      },
    });
    expect(notificationOf(doc, { region: "local", consoleUrl: undefined })).toMatchObject({ consoleLink: "", approval: { approvalReviewLink: "" } });
  });

  it("accepts only absolute http(s) URLs and backs off 10 s, 30 s, 90 s …", () => {
    expect(notificationUrlProblem("http://127.0.0.1:8080/hook")).toBeUndefined();
    expect(notificationUrlProblem("hooks.example.com/x")).toBe("is not an absolute URL");
    expect(notificationUrlProblem("file:///etc/passwd")).toMatch(/http or https/);
    expect([1, 2, 3].map(notifyRetryDelayMs)).toEqual([10_000, 30_000, 90_000]);
  });
});

describe("loadApprovalConfig", () => {
  it("applies defaults and names every bad variable", () => {
    const config = loadApprovalConfig({ NATS_URL: "nats://127.0.0.1:4222", MONGO_URL: "mongodb://127.0.0.1", SLUICE_DEV_MODE: "true", SLUICE_AUTH_TOKENS: "a=approver:t" });
    expect(config).toMatchObject({ mongoDb: "sluice_approvals", sweepMs: 5000, busPrefix: undefined, region: "local", consoleUrl: undefined });
    const load = () =>
      loadApprovalConfig({ MONGO_URL: "mongodb://127.0.0.1", SLUICE_AUTH_TOKENS: "a=king:t", APPROVAL_SWEEP_MS: "soon", APPROVAL_CONSOLE_URL: "ftp://x" });
    expect(load).toThrow(/NATS_URL/);
    expect(load).toThrow(/SLUICE_AUTH_TOKENS/);
    expect(load).toThrow(/APPROVAL_SWEEP_MS/);
    expect(load).toThrow(/APPROVAL_CONSOLE_URL/);
  });
});
