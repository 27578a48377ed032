// The example job worker (examples/job-worker, written against @sluice/client) against a real
// orchestrator on real NATS and MongoDB: it polls, acknowledges, continues twice with continuation
// tokens, then succeeds with an output variable, and a second worker's acknowledge of the job it
// holds gets InvalidNonceException. The action is of a custom action type declared through
// ActionTypeService; no runner runs, so the test answers the Git source's job itself.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { createJobClient, createSluiceClient } from "@sluice/client";
import type { SluiceClient } from "@sluice/client";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { handleJob, pollOnce } from "@sluice/example-job-worker";
import type { Handled, JobClient, PolledJob } from "@sluice/example-job-worker";
import { loadOrchestratorConfig, runnerJobsFilter, startOrchestrator } from "@sluice/orchestrator";
import type { Orchestrator } from "@sluice/orchestrator";
import { JobResultSchema, JobSchema } from "@sluice/proto";
import { MongoClient } from "mongodb";
import { POLL, rpcError } from "./helpers.js";

const servers = inject("servers");
const id = randomBytes(4).toString("hex");
const prefix = `e2ejw${id}`;
const dbName = `e2e_job_worker_${id}`;
const ROLLOUT = { category: "Deploy", provider: "ExampleRollout", version: "1" } as const;

let orchestrator: Orchestrator | undefined;
let sluice: SluiceClient | undefined;
let bus: Bus | undefined;
let source: Consumer | undefined;
let workerA: JobClient;
let workerB: JobClient;

beforeAll(async () => {
  orchestrator = await startOrchestrator(
    loadOrchestratorConfig({
      NATS_URL: servers.natsUrl,
      MONGO_URL: servers.mongoUrl,
      MONGO_DB: dbName,
      SLUICE_AUTH_TOKENS: "dev=admin:admin-token-e2e,worker-a=runner:worker-a-token,worker-b=runner:worker-b-token",
      SLUICE_DEV_MODE: "true",
      SLUICE_BUS_PREFIX: prefix,
      OUTBOX_SWEEP_MS: "100",
      TIMER_SWEEP_MS: "100",
    }),
  );
  const address = `127.0.0.1:${orchestrator.port}`;
  sluice = createSluiceClient({ address, token: "admin-token-e2e", deadlineMs: 15_000 });
  workerA = createJobClient({ address, token: "worker-a-token", deadlineMs: 15_000 });
  workerB = createJobClient({ address, token: "worker-b-token", deadlineMs: 15_000 });
  bus = await connectBus({ servers: servers.natsUrl, name: "e2e-job-worker", logger: noopLogger, prefix });
  const admin = bus;
  source = await admin.consume({
    stream: admin.streams.jobs,
    durable: "e2e-source",
    filterSubject: runnerJobsFilter(admin),
    schema: JobSchema,
    handler: async (job) => {
      // The Source action succeeds at once (the Deploy action's jobs go to JobService, not here).
      if (job.actionName === "Checkout") {
        await admin.publish(
          admin.subjects.resultSubject(job.pipelineName, { runner: "default" }),
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
            outputArtifacts: [{ name: "Src", artifactId: `${job.actionExecutionId}/Src`, bucket: job.artifactBucket, key: `k/${job.actionExecutionId}`, sha256: "ab".repeat(32), sizeBytes: 1n }],
          },
          { msgId: `result:${job.jobId}` },
        );
      }
    },
  });
});

afterAll(async () => {
  workerA?.close();
  workerB?.close();
  sluice?.close();
  await source?.stop();
  await bus?.close();
  await orchestrator?.stop(5_000);
  const mongo = await MongoClient.connect(servers.mongoUrl);
  await mongo.db(dbName).dropDatabase();
  await mongo.close();
});

async function deployState(name: string) {
  const state = await sluice?.pipelines.getPipelineState({ name });
  return state?.stageStates.find((s) => s.stageName === "Deploy")?.actionStates[0]?.latestExecution;
}

describe("a custom job worker", () => {
  it("polls, acknowledges, continues twice, then succeeds; a second worker's acknowledge gets InvalidNonceException", { timeout: 90_000 }, async () => {
    const name = `job-worker-${id}`;
    await sluice?.actionTypes.createCustomActionType({
      ...ROLLOUT,
      configurationProperties: [{ name: "Hosts", required: false, key: false, secret: false, queryable: false, type: "Number" }],
      inputArtifactDetails: { minimumCount: 0, maximumCount: 0 },
      outputArtifactDetails: { minimumCount: 0, maximumCount: 0 },
    });
    await sluice?.pipelines.createPipeline({
      pipeline: {
        name,
        stages: [
          {
            name: "Source",
            actions: [{ name: "Checkout", actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" }, configuration: { RepositoryUrl: "file:///tmp/none.git" }, outputArtifacts: [{ name: "Src" }] }],
          },
          { name: "Deploy", actions: [{ name: "Roll", namespace: "Roll", actionTypeId: { ...ROLLOUT, owner: "Custom" }, configuration: { Hosts: "3" } }] },
        ],
      },
    });

    // Worker A takes the first job; worker B, holding no nonce of it, cannot acknowledge it.
    let first: PolledJob | undefined;
    await expect
      .poll(async () => {
        first = (await workerA.pollForJobs({ actionTypeId: { ...ROLLOUT, owner: "Custom" } })).jobs[0];
        return first?.data?.pipelineContext?.pipelineName;
      }, POLL)
      .toBe(name);
    const stolen = await rpcError(() => workerB.acknowledgeJob({ jobId: first?.id ?? "", nonce: "a-guess" }));
    expect(stolen.errorCode).toBe("InvalidNonceException");
    const handled: Handled[] = [await handleJob(workerA, first as PolledJob)];
    expect(handled[0]).toMatchObject({ outcome: "continued", continuationToken: "step-1" });
    expect(await deployState(name)).toMatchObject({ status: "InProgress", percentComplete: 33, summary: "step 1 of 3 done" });

    // The follow-up jobs carry the tokens; the worker continues once more, then succeeds.
    await expect
      .poll(async () => {
        handled.push(...(await pollOnce(workerA, ROLLOUT)));
        return handled.at(-1)?.outcome;
      }, POLL)
      .toBe("succeeded");
    expect(handled.map((h) => h.outcome)).toEqual(["continued", "continued", "succeeded"]);
    expect(new Set(handled.map((h) => h.jobId)).size).toBe(3);

    await expect.poll(() => deployState(name), POLL).toMatchObject({ status: "Succeeded", percentComplete: 100, summary: "all 3 steps done", lastUpdatedBy: "worker-a" });
    const { pipelineExecutionSummaries } = (await sluice?.pipelines.listPipelineExecutions({ pipelineName: name })) ?? { pipelineExecutionSummaries: [] };
    expect(pipelineExecutionSummaries[0]?.status).toBe("Succeeded");
    const { actionExecutionDetails } = (await sluice?.pipelines.listActionExecutions({ pipelineName: name })) ?? { actionExecutionDetails: [] };
    const roll = actionExecutionDetails.find((d) => d.actionName === "Roll");
    expect(roll?.output?.outputVariables).toEqual({ StepsDone: "3" });
  });
});
