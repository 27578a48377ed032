// The Http invoke provider (Sluice's Lambda invoke) through the whole cluster: the runner POSTs the
// signed job to an endpoint; an endpoint that answers 202 reports later through JobService with the
// job id it was sent, as a Lambda function calls PutJobSuccessResult/PutJobFailureResult.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobClient } from "@sluice/client";
import type { Client } from "@sluice/client";
import type { JobService } from "@sluice/proto";
import { POLL, makeGitRepo, rpcError, suffix, useCluster } from "./helpers.js";

const SECRET = "e2e-http-invoke-signing-secret-0123456789";
const env = useCluster("http-invoke", { serviceEnv: { "action-runner": { HTTP_INVOKE_SECRET: SECRET, EGRESS_ALLOW: "127.0.0.1" } } });

let endpoint: Server;
let url = "";
/** Job ids the endpoint was sent, in order. */
const received: string[] = [];
let worker: Client<typeof JobService>;

beforeAll(async () => {
  endpoint = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const event = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { "CodePipeline.job"?: { id?: string } };
      received.push(event["CodePipeline.job"]?.id ?? "");
      // Accepted: the work goes on, the answer comes later.
      res.writeHead(202, { "Content-Type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/invoke`;
  worker = createJobClient({ address: env.cluster.addresses.orchestrator, token: env.cluster.tokens.runner, deadlineMs: 15_000 });
});

afterAll(async () => {
  worker?.close();
  await new Promise((resolve) => endpoint?.close(resolve));
});

async function invokeState(name: string) {
  const state = await env.sluice.pipelines.getPipelineState({ name });
  return state.stageStates.find((s) => s.stageName === "Invoke")?.actionStates[0]?.latestExecution;
}

async function createInvokePipeline(name: string): Promise<void> {
  const repo = makeGitRepo(env, { "README.md": "hello\n" }, "first");
  await env.sluice.pipelines.createPipeline({
    pipeline: {
      name,
      stages: [
        {
          name: "Source",
          actions: [{ name: "Checkout", actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" }, configuration: { RepositoryUrl: repo.url }, outputArtifacts: [{ name: "Src" }] }],
        },
        {
          name: "Invoke",
          actions: [{ name: "Notify", namespace: "Notify", actionTypeId: { category: "Invoke", owner: "AWS", provider: "Http", version: "1" }, configuration: { Url: url }, inputArtifacts: [{ name: "Src" }] }],
        },
      ],
    },
  });
}

describe("Http invoke answered later through JobService", () => {
  it("a 202 leaves the action InProgress until the endpoint's PutJobSuccessResult", async () => {
    const name = `http-later-${suffix()}`;
    await createInvokePipeline(name);
    await expect.poll(() => received.length, POLL).toBeGreaterThan(0);
    const jobId = received.at(-1) ?? "";
    await expect.poll(() => invokeState(name), POLL).toMatchObject({ status: "InProgress" });
    // The job is there for the endpoint: its details, then its answer.
    const { jobDetails } = await worker.getJobDetails({ jobId });
    expect(jobDetails).toMatchObject({ id: jobId, status: "InProgress", data: { actionConfiguration: { Url: url }, pipelineContext: { pipelineName: name, action: { name: "Notify" } } } });
    expect(await invokeState(name)).toMatchObject({ status: "InProgress" });
    await worker.putJobSuccessResult({ jobId, executionDetails: { summary: "notified 3 subscribers", externalExecutionId: "hook-42" }, outputVariables: { Subscribers: "3" } });
    await expect.poll(() => invokeState(name), POLL).toMatchObject({ status: "Succeeded", summary: "notified 3 subscribers", externalExecutionId: "hook-42" });
    const { actionExecutionDetails } = await env.sluice.pipelines.listActionExecutions({ pipelineName: name });
    expect(actionExecutionDetails.find((d) => d.actionName === "Notify")?.output?.outputVariables).toEqual({ Subscribers: "3" });
    // Answered once: a second answer is refused.
    expect((await rpcError(() => worker.putJobFailureResult({ jobId, failureDetails: { type: "JobFailed", message: "again" } }))).errorCode).toBe("InvalidJobStateException");
  });

  it("a later PutJobFailureResult fails the action with its type and message", async () => {
    const name = `http-later-fail-${suffix()}`;
    const before = received.length;
    await createInvokePipeline(name);
    await expect.poll(() => received.length, POLL).toBeGreaterThan(before);
    const jobId = received.at(-1) ?? "";
    await expect.poll(() => invokeState(name), POLL).toMatchObject({ status: "InProgress" });
    await worker.putJobFailureResult({ jobId, failureDetails: { type: "ConfigurationError", message: "no subscribers configured" } });
    await expect.poll(() => invokeState(name), POLL).toMatchObject({ status: "Failed", errorDetails: { code: "ConfigurationError", message: "no subscribers configured" } });
  });
});
