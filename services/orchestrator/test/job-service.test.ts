// JobService, CodePipeline's job-worker protocol, on real NATS and MongoDB: custom jobs from the
// bus are polled, acknowledged with the poll's nonce, and answered; the answer takes the runner
// results' path into the pipeline.
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { createClient } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { ActionTypeService, JobService } from "@sluice/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PipelineDeclarationSchema } from "@sluice/proto";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator } from "../src/service.js";
import { TOKENS, clientsFor, dropDatabase, failure, isJob, isolation, produced, report, tapJobs, testConfig } from "./helpers.js";
import type { Clients, JobTap } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("jobsvc");

const ROLLOUT = { category: "Deploy", owner: "Custom", provider: "Rollout", version: "1" } as const;
const HOUR_MS = 3_600_000;

let service: Orchestrator | undefined;
let clients: Clients | undefined;
let bus: Bus | undefined;
let tap: JobTap | undefined;
let workerA: Client<typeof JobService>;
let workerB: Client<typeof JobService>;
let viewerJobs: Client<typeof JobService>;
let types: Client<typeof ActionTypeService>;
// The orchestrator's clock runs this far ahead of the wall clock (hand-outs expire, deadlines pass).
let offsetMs = 0;

beforeAll(async () => {
  const tokens = `${TOKENS},worker-a=runner:worker-a-token,worker-b=runner:worker-b-token`;
  service = await startOrchestrator(testConfig(servers, iso, { SLUICE_AUTH_TOKENS: tokens }), { clock: () => Date.now() + offsetMs });
  clients = clientsFor(service.port);
  bus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-job-service-test", logger: noopLogger, prefix: iso.prefix });
  tap = await tapJobs(bus);
  const address = `127.0.0.1:${service.port}`;
  workerA = createClient(JobService, address, { token: "worker-a-token", deadlineMs: 20_000 });
  workerB = createClient(JobService, address, { token: "worker-b-token", deadlineMs: 20_000 });
  viewerJobs = createClient(JobService, address, { token: "viewer-token", deadlineMs: 20_000 });
  types = createClient(ActionTypeService, address, { token: "op-token", deadlineMs: 20_000 });
  await types.createCustomActionType({
    ...ROLLOUT,
    configurationProperties: [
      { name: "Environment", required: true, key: true, queryable: true, secret: false },
      { name: "Token", required: false, key: false, queryable: false, secret: true },
    ],
    inputArtifactDetails: { minimumCount: 0, maximumCount: 1 },
    outputArtifactDetails: { minimumCount: 0, maximumCount: 1 },
  });
});

afterAll(async () => {
  for (const c of [workerA, workerB, viewerJobs, types]) c.close();
  clients?.close();
  await tap?.stop();
  await bus?.close();
  await service?.stop(5_000);
  await dropDatabase(servers.mongoUrl, iso.dbName);
});

type DeclarationInit = MessageInitShape<typeof PipelineDeclarationSchema>;

/** Source (Git) → Deploy (one action, "Ship", of the custom type Rollout). */
function pipeline(name: string, environment: string): DeclarationInit {
  return {
    name,
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Checkout",
            actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
            configuration: { RepositoryUrl: "file:///tmp/repo.git" },
            outputArtifacts: [{ name: "Src" }],
          },
        ],
      },
      { name: "Deploy", actions: [{ name: "Ship", actionTypeId: ROLLOUT, configuration: { Environment: environment, Token: `token-of-${environment}` } }] },
    ],
  };
}

/** What a test knows of a custom job: its id and the action execution it belongs to. */
interface CustomJob {
  jobId: string;
  actionExecutionId: string;
  pipelineExecutionId: string;
}

/** Runs a pipeline up to its Ship action, whose job the orchestrator dispatches to JobService. */
async function customJob(name: string, environment: string): Promise<CustomJob> {
  if (clients === undefined || bus === undefined || tap === undefined) throw new Error("not started");
  await clients.ops.createPipeline({ pipeline: pipeline(name, environment) });
  const checkout = await tap.next(isJob(name, "Checkout"));
  await report(bus, checkout, { outputArtifacts: produced(checkout, "Src") });
  const run = await expect
    .poll(async () => (await service?.runtime.read(name))?.executions[checkout.pipelineExecutionId]?.stages.find((s) => s.name === "Deploy")?.actions[0], { timeout: 20_000, interval: 50 })
    .toBeDefined()
    .then(async () => (await service?.runtime.read(name))?.executions[checkout.pipelineExecutionId]?.stages.find((s) => s.name === "Deploy")?.actions[0]);
  if (run === undefined) throw new Error("Ship never started");
  return { jobId: `${run.actionExecutionId}:1`, actionExecutionId: run.actionExecutionId, pipelineExecutionId: checkout.pipelineExecutionId };
}

/** Polls as `worker` until the job shows up (the intake stores it asynchronously). */
async function pollFor(worker: Client<typeof JobService>, jobId: string, queryParam: Record<string, string>) {
  return expect
    .poll(async () => (await worker.pollForJobs({ actionTypeId: ROLLOUT, maxBatchSize: 10, queryParam })).jobs.find((j) => j.id === jobId), { timeout: 20_000, interval: 100 })
    .toBeDefined()
    .then(() => undefined);
}

async function shipState(name: string) {
  const state = await clients?.viewer.getPipelineState({ name });
  return state?.stageStates.find((s) => s.stageName === "Deploy")?.actionStates[0]?.latestExecution;
}

describe("JobService", () => {
  let job: CustomJob;
  let nonceA = "";

  it("refuses malformed calls with ValidationException naming the fields", async () => {
    const poll = await failure(workerA.pollForJobs({ maxBatchSize: 101 }));
    expect(poll.errorCode).toBe("ValidationException");
    expect(poll.violations.map((v) => v.field)).toEqual(["actionTypeId", "maxBatchSize"]);
    const owner = await failure(workerA.pollForJobs({ actionTypeId: { ...ROLLOUT, owner: "AWS" } }));
    expect(owner.violations.map((v) => v.field)).toEqual(["actionTypeId.owner"]);
    const fail = await failure(workerA.putJobFailureResult({ jobId: "x", failureDetails: { type: "Oops", message: "" } }));
    expect(fail.violations.map((v) => v.field)).toEqual(["failureDetails.type", "failureDetails.message"]);
    const vars = await failure(workerA.putJobSuccessResult({ jobId: "x", continuationToken: "t", outputVariables: { "bad name": "v" }, executionDetails: { percentComplete: 101 } }));
    expect(vars.violations.map((v) => v.field)).toEqual(["executionDetails.percentComplete", "outputVariables", "outputVariables.bad name"]);
    const ack = await failure(workerA.acknowledgeJob({ jobId: "x" }));
    expect(ack.violations.map((v) => v.field)).toEqual(["nonce"]);
  });

  it("polls only a declared type, filtering only on its queryable property", async () => {
    const unknown = await failure(workerA.pollForJobs({ actionTypeId: { ...ROLLOUT, provider: "Nope" } }));
    expect(unknown.errorCode).toBe("ActionTypeNotFoundException");
    const missing = await failure(workerA.pollForJobs({ actionTypeId: ROLLOUT }));
    expect(missing.violations).toEqual([{ field: "queryParam", message: 'is required: Custom/Deploy/Rollout/1 has the queryable property "Environment"; poll with its value' }]);
    const other = await failure(workerA.pollForJobs({ actionTypeId: ROLLOUT, queryParam: { Token: "x" } }));
    expect(other.violations.map((v) => v.field)).toEqual(["queryParam.Token"]);
  });

  it("is for job workers: a viewer may not poll", async () => {
    const denied = await failure(viewerJobs.pollForJobs({ actionTypeId: ROLLOUT }));
    expect(denied.errorCode).toBe("AccessDeniedException");
  });

  it("answers JobNotFoundException for an unknown job", async () => {
    const err = await failure(workerA.getJobDetails({ jobId: "no-such-job" }));
    expect(err.errorCode).toBe("JobNotFoundException");
    expect((await failure(workerA.acknowledgeJob({ jobId: "no-such-job", nonce: "n" }))).errorCode).toBe("JobNotFoundException");
  });

  it("hands a queued job out with its JobData, filtered by queryParam, to one poller at a time", async () => {
    job = await customJob("jobs-main", "prod");
    const staging = await workerA.pollForJobs({ actionTypeId: ROLLOUT, queryParam: { Environment: "staging" } });
    expect(staging.jobs).toEqual([]);
    let polled: Awaited<ReturnType<typeof workerA.pollForJobs>>["jobs"][number] | undefined;
    await expect
      .poll(async () => {
        polled = (await workerA.pollForJobs({ actionTypeId: ROLLOUT, queryParam: { Environment: "prod" } })).jobs[0];
        return polled?.id;
      }, { timeout: 20_000, interval: 100 })
      .toBe(job.jobId);
    nonceA = polled?.nonce ?? "";
    expect(nonceA).not.toBe("");
    expect(polled?.data).toMatchObject({
      actionTypeId: ROLLOUT,
      // The worker gets the secret property's value; every answer about the pipeline masks it.
      actionConfiguration: { Environment: "prod", Token: "token-of-prod" },
      pipelineContext: { pipelineName: "jobs-main", stage: { name: "Deploy" }, action: { name: "Ship", actionExecutionId: job.actionExecutionId }, pipelineExecutionId: job.pipelineExecutionId },
      continuationToken: "",
    });
    // Handed out and not acknowledged yet: nobody else gets it.
    expect((await workerB.pollForJobs({ actionTypeId: ROLLOUT, maxBatchSize: 100, queryParam: { Environment: "prod" } })).jobs).toEqual([]);
  });

  it("lets only the holder of the nonce acknowledge: a second worker gets InvalidNonceException", async () => {
    const stale = await failure(workerB.acknowledgeJob({ jobId: job.jobId, nonce: "not-the-nonce" }));
    expect(stale.errorCode).toBe("InvalidNonceException");
    expect(stale.violations.map((v) => v.field)).toEqual(["nonce"]);
    expect(await workerA.acknowledgeJob({ jobId: job.jobId, nonce: nonceA })).toMatchObject({ status: "InProgress" });
    // A repeat by the holder (its answer was lost) is answered again.
    expect(await workerA.acknowledgeJob({ jobId: job.jobId, nonce: nonceA })).toMatchObject({ status: "InProgress" });
    expect((await failure(workerB.acknowledgeJob({ jobId: job.jobId, nonce: "another" }))).errorCode).toBe("InvalidNonceException");
  });

  it("GetJobDetails returns the job's data and status", async () => {
    const { jobDetails } = await workerA.getJobDetails({ jobId: job.jobId });
    expect(jobDetails).toMatchObject({ id: job.jobId, status: "InProgress", data: { actionConfiguration: { Environment: "prod" }, pipelineContext: { pipelineName: "jobs-main" } } });
    const shown = await clients?.viewer.getPipeline({ name: "jobs-main" });
    expect(shown?.pipeline?.stages[1]?.actions[0]?.configuration).toEqual({ Environment: "prod", Token: "****" });
  });

  it("a success with a continuation token keeps the action InProgress, shows its progress and dispatches a follow-up job", async () => {
    const foreign = await failure(workerB.putJobSuccessResult({ jobId: job.jobId, continuationToken: "step-2" }));
    expect(foreign.errorCode).toBe("AccessDeniedException");
    await workerA.putJobSuccessResult({ jobId: job.jobId, continuationToken: "step-2", executionDetails: { summary: "1 of 2 hosts", percentComplete: 50, externalExecutionId: "rollout-7" } });
    expect(await shipState("jobs-main")).toMatchObject({ status: "InProgress", summary: "1 of 2 hosts", percentComplete: 50, externalExecutionId: "rollout-7", lastUpdatedBy: "worker-a" });
    const runtime = await service?.runtime.read("jobs-main");
    const run = runtime?.executions[job.pipelineExecutionId]?.stages.find((s) => s.name === "Deploy")?.actions[0];
    expect(run).toMatchObject({ status: "InProgress", continuations: 1, actionExecutionId: job.actionExecutionId });
    // Dispatched like the first job, to JobService: the follow-up carries the token.
    const followId = `${job.actionExecutionId}:1:1`;
    const follow = await expect
      .poll(async () => (await workerA.pollForJobs({ actionTypeId: ROLLOUT, queryParam: { Environment: "prod" } })).jobs.find((j) => j.id === followId), { timeout: 20_000, interval: 100 })
      .toBeDefined()
      .then(() => workerA.getJobDetails({ jobId: followId }));
    expect(follow.jobDetails?.data).toMatchObject({ continuationToken: "step-2", pipelineContext: { action: { actionExecutionId: job.actionExecutionId } } });
    // The answered job takes no second result.
    const again = await failure(workerA.putJobSuccessResult({ jobId: job.jobId }));
    expect(again.errorCode).toBe("InvalidJobStateException");
  });

  it("refuses a result for a job nobody acknowledged", async () => {
    const other = await customJob("jobs-unacked", "qa");
    await pollFor(workerB, other.jobId, { Environment: "qa" });
    const err = await failure(workerB.putJobFailureResult({ jobId: other.jobId, failureDetails: { type: "JobFailed", message: "never started" } }));
    expect(err.errorCode).toBe("InvalidJobStateException");
    expect(err.message).toMatch(/is Dispatched, not InProgress/);
  });

  it("hands a job no worker acknowledged out again after 60 s, with a new nonce", async () => {
    const other = await customJob("jobs-handout", "dev");
    let first = "";
    await expect
      .poll(async () => {
        first = (await workerA.pollForJobs({ actionTypeId: ROLLOUT, queryParam: { Environment: "dev" } })).jobs[0]?.nonce ?? "";
        return first;
      }, { timeout: 20_000, interval: 100 })
      .not.toBe("");
    offsetMs += 61_000;
    const again = (await workerB.pollForJobs({ actionTypeId: ROLLOUT, queryParam: { Environment: "dev" } })).jobs[0];
    expect(again?.id).toBe(other.jobId);
    expect(again?.nonce).not.toBe(first);
    expect((await failure(workerA.acknowledgeJob({ jobId: other.jobId, nonce: first }))).errorCode).toBe("InvalidNonceException");
    await workerB.acknowledgeJob({ jobId: other.jobId, nonce: again?.nonce ?? "" });
  });

  it("a failure result fails the action with the failure's type and message", async () => {
    const other = await customJob("jobs-failing", "eu");
    let nonce = "";
    await expect
      .poll(async () => {
        nonce = (await workerA.pollForJobs({ actionTypeId: ROLLOUT, queryParam: { Environment: "eu" } })).jobs[0]?.nonce ?? "";
        return nonce;
      }, { timeout: 20_000, interval: 100 })
      .not.toBe("");
    await workerA.acknowledgeJob({ jobId: other.jobId, nonce });
    await workerA.putJobFailureResult({ jobId: other.jobId, failureDetails: { type: "ConfigurationError", message: "no such environment: eu", externalExecutionId: "rollout-9" } });
    expect(await shipState("jobs-failing")).toMatchObject({ status: "Failed", errorDetails: { code: "ConfigurationError", message: "no such environment: eu" }, externalExecutionId: "rollout-9" });
    expect((await workerA.getJobDetails({ jobId: other.jobId })).jobDetails?.status).toBe("Failed");
  });

  it("a job past the action's timeout is TimedOut and its result is refused", async () => {
    const other = await customJob("jobs-late", "us");
    let nonce = "";
    await expect
      .poll(async () => {
        nonce = (await workerA.pollForJobs({ actionTypeId: ROLLOUT, queryParam: { Environment: "us" } })).jobs[0]?.nonce ?? "";
        return nonce;
      }, { timeout: 20_000, interval: 100 })
      .not.toBe("");
    await workerA.acknowledgeJob({ jobId: other.jobId, nonce });
    // Custom actions time out after 24 hours (AWS's default; the type sets no jobTimeout).
    offsetMs += 25 * HOUR_MS;
    const late = await failure(workerA.putJobSuccessResult({ jobId: other.jobId }));
    expect(late.errorCode).toBe("InvalidJobStateException");
    expect(late.message).toMatch(/timed out/);
    expect((await workerA.getJobDetails({ jobId: other.jobId })).jobDetails?.status).toBe("TimedOut");
  });
});
