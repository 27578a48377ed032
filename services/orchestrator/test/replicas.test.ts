import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import type { JobOutcome } from "@sluice/domain";
import type { Job } from "@sluice/proto";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator } from "../src/service.js";
import { clientsFor, dropDatabase, isolation, tapJobs, testConfig, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap } from "./helpers.js";

// Two replicas on one database and bus. Each caches the runtime documents it
// writes, so every write of one makes the other's copy stale; the conditional
// write must turn that into a re-read, never into a lost change. Calls here
// alternate between the replicas one at a time: FerretDB (the test server
// when no mongod is installed) does not make concurrent conditional updates
// atomic, so truly simultaneous writers need MongoDB (see runtime-store.ts);
// for the same reason neither replica compacts documents in the background.

const servers = inject("servers");
const iso = isolation("rep");

let a: Orchestrator;
let b: Orchestrator;
let clientsA: Clients;
let clientsB: Clients;
let bus: Bus;
let tap: JobTap;

beforeAll(async () => {
  a = await startOrchestrator(testConfig(servers, iso), { compactAfterMs: Infinity });
  b = await startOrchestrator(testConfig(servers, iso), { compactAfterMs: Infinity });
  clientsA = clientsFor(a.port);
  clientsB = clientsFor(b.port);
  bus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-replicas-test", logger: noopLogger, prefix: iso.prefix });
  tap = await tapJobs(bus);
});

afterAll(async () => {
  clientsA?.close();
  clientsB?.close();
  await tap?.stop();
  await bus?.close();
  await a?.stop(5_000);
  await b?.stop(5_000);
  await dropDatabase(servers.mongoUrl, iso.dbName);
});

/** A successful result of `job`, producing its declared outputs. */
function success(job: Job): JobOutcome {
  return {
    jobId: job.jobId,
    actionExecutionId: job.actionExecutionId,
    attempt: job.attempt,
    pipelineName: job.pipelineName,
    pipelineExecutionId: job.pipelineExecutionId,
    stageName: job.stageName,
    actionName: job.actionName,
    status: "Succeeded",
    outputArtifacts: job.outputArtifacts.map((o) => ({
      name: o.name,
      artifactId: `${job.actionExecutionId}/${o.name}`,
      bucket: job.artifactBucket,
      key: `${job.actionExecutionId}/${o.name}`,
      sha256: "ab".repeat(32),
      sizeBytes: 1,
    })),
    outputVariables: {},
    ...(job.stageName === "Source" ? { revision: { revisionId: `rev-${job.pipelineExecutionId.slice(0, 4)}` } } : {}),
  };
}

const jobOf = (action: string, executionId: string) => (job: Job) => job.pipelineName === "shared" && job.actionName === action && job.pipelineExecutionId === executionId;

describe("two orchestrator replicas", () => {
  it("apply every change made through either, whatever each one has cached", async () => {
    await clientsA.ops.createPipeline({ pipeline: threeStagePipeline("shared") });
    const e0Source = await tap.next((j) => j.pipelineName === "shared");
    const e0 = e0Source.pipelineExecutionId;
    // B loads and caches the document; E1 waits in front of the locked Source stage.
    const e1 = (await clientsB.ops.startPipelineExecution({ name: "shared" })).pipelineExecutionId;
    // A's copy is stale now: its write fails, it re-reads, and E2 supersedes E1.
    const e2 = (await clientsA.ops.startPipelineExecution({ name: "shared" })).pipelineExecutionId;
    // B's copy is stale: E0's source result still lands (E0 moves on, E2 enters Source).
    await b.runtime.apply("shared", { type: "JobCompleted", result: success(e0Source) });
    const e0Build = await tap.next(jobOf("Compile", e0));
    const e2Source = await tap.next(jobOf("Checkout", e2));
    // A finishes E2's source (E2 waits for Build) and E0's build, dispatching jobs B never saw.
    await a.runtime.apply("shared", { type: "JobCompleted", result: success(e2Source) });
    await a.runtime.apply("shared", { type: "JobCompleted", result: success(e0Build) });
    const e0Deploy = await tap.next(jobOf("Ship", e0));
    await tap.next(jobOf("Compile", e2));
    // B's cached copy does not know E0's deploy job: it must re-read rather than ignore the result.
    const applied = await b.runtime.apply("shared", { type: "JobCompleted", result: success(e0Deploy) });
    expect(applied.decision?.ignored).toBeUndefined();

    const list = await clientsB.viewer.listPipelineExecutions({ pipelineName: "shared" });
    const status = Object.fromEntries(list.pipelineExecutionSummaries.map((s) => [s.pipelineExecutionId, s.status]));
    expect(status).toEqual({ [e0]: "Succeeded", [e1]: "Superseded", [e2]: "InProgress" });
    const state = await clientsA.viewer.getPipelineState({ name: "shared" });
    expect(state.stageStates.map((s) => [s.stageName, s.latestExecution?.pipelineExecutionId, s.latestExecution?.status])).toEqual([
      ["Source", e2, "Succeeded"],
      ["Build", e2, "InProgress"],
      ["Deploy", e0, "Succeeded"],
    ]);
  });
});
