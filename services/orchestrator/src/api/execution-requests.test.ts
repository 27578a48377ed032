import { create } from "@bufbuild/protobuf";
import { StartPipelineExecutionRequestSchema } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import type { PipelineSpec } from "@sluice/domain";
import { isDomainError } from "@sluice/domain";
import { startOptions, startTrigger } from "./execution-requests.js";

const operator = { id: "ci", roles: ["operator"] };
const poller = { id: "source-poller", roles: ["service"] };

describe("startTrigger", () => {
  it("records the caller of a plain start", () => {
    expect(startTrigger(create(StartPipelineExecutionRequestSchema, { name: "p" }), operator)).toEqual({ triggerType: "StartPipelineExecution", triggerDetail: "ci" });
  });

  it("lets only a service name the trigger, and only CloudWatchEvent", () => {
    const scheduled = create(StartPipelineExecutionRequestSchema, { name: "p", trigger: { triggerType: "CloudWatchEvent", triggerDetail: "schedule nightly" } });
    expect(startTrigger(scheduled, poller)).toEqual({ triggerType: "CloudWatchEvent", triggerDetail: "schedule nightly" });
    expect(() => startTrigger(scheduled, operator)).toThrow(expect.objectContaining({ code: "AccessDeniedException" }) as Error);
    expect(() => startTrigger(create(StartPipelineExecutionRequestSchema, { name: "p" }), poller)).toThrow(expect.objectContaining({ code: "AccessDeniedException" }) as Error);
    const forged = create(StartPipelineExecutionRequestSchema, { name: "p", trigger: { triggerType: "Webhook", triggerDetail: "x" } });
    expect(() => startTrigger(forged, poller)).toThrow(expect.objectContaining({ code: "ValidationException", violations: [{ field: "trigger.triggerType", message: 'must be one of CloudWatchEvent, got "Webhook"' }] }) as Error);
  });
});

describe("startOptions sourceRevisions", () => {
  // Only what startOptions reads of the spec: the first stage's source actions.
  const spec = {
    stages: [
      {
        name: "Source",
        actions: [
          { name: "Code", category: "Source", builtIn: "Git" },
          { name: "Bundle", category: "Source", builtIn: "ObjectStore" },
        ],
      },
    ],
  } as unknown as PipelineSpec;
  const start = (sourceRevisions: { actionName: string; revisionType: string; revisionValue: string }[]) =>
    startOptions(create(StartPipelineExecutionRequestSchema, { name: "p", sourceRevisions }), spec);
  const violationsOf = (fn: () => unknown): { field: string; message: string }[] => {
    try {
      fn();
    } catch (err) {
      if (isDomainError(err)) return err.violations.map((v) => ({ field: v.field, message: v.message }));
      throw err;
    }
    throw new Error("expected a ValidationException");
  };

  it("pins an ObjectStore source by S3_OBJECT_VERSION_ID or S3_OBJECT_KEY", () => {
    expect(start([{ actionName: "Bundle", revisionType: "S3_OBJECT_VERSION_ID", revisionValue: "v-123" }]).pinnedRevisions).toEqual([
      { actionName: "Bundle", revisionId: "v-123" },
    ]);
    expect(start([{ actionName: "Bundle", revisionType: "S3_OBJECT_KEY", revisionValue: "builds/42.zip" }]).pinnedRevisions).toEqual([
      { actionName: "Bundle", revisionId: "builds/42.zip", revisionType: "S3_OBJECT_KEY" },
    ]);
  });

  it("refuses S3 types for Git sources and COMMIT_ID for ObjectStore sources, naming revisionType", () => {
    const violations = violationsOf(() =>
      start([
        { actionName: "Code", revisionType: "S3_OBJECT_VERSION_ID", revisionValue: "v-1" },
        { actionName: "Bundle", revisionType: "COMMIT_ID", revisionValue: "abc1234" },
      ]),
    );
    expect(violations).toEqual([
      { field: "sourceRevisions[0].revisionType", message: "S3_OBJECT_VERSION_ID is not supported for a Git source: pin it with COMMIT_ID (S3 revision types pin ObjectStore sources)" },
      { field: "sourceRevisions[1].revisionType", message: '"Bundle" is an ObjectStore source: pin it with S3_OBJECT_VERSION_ID or S3_OBJECT_KEY, not COMMIT_ID' },
    ]);
  });
});
