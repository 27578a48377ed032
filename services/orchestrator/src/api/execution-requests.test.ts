import { create } from "@bufbuild/protobuf";
import { StartPipelineExecutionRequestSchema } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { startTrigger } from "./execution-requests.js";

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
