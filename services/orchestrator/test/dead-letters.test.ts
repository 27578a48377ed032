import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { Bus, Consumer } from "@sluice/bus";
import { DomainError } from "@sluice/domain";
import { JobSchema } from "@sluice/proto";
import type { Job } from "@sluice/proto";
import { runnerJobsFilter } from "../src/jobs/job-intake.js";
import { isolation, startHarness, threeStagePipeline } from "./helpers.js";
import type { Clients, Harness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("dlq");

let harness: Harness | undefined;
let clients: Clients;
let bus: Bus;
let runner: Consumer | undefined;
const taken: Job[] = [];

/** The Checkout action's latest execution as GetPipelineState shows it. */
async function checkout(name: string): Promise<{ status: string; message: string } | undefined> {
  const state = await clients.viewer.getPipelineState({ name });
  const latest = state.stageStates[0]?.actionStates[0]?.latestExecution;
  return latest === undefined ? undefined : { status: latest.status, message: latest.errorDetails?.message ?? "" };
}

beforeAll(async () => {
  harness = await startHarness(servers, iso, { name: "orchestrator-dlq-test" });
  ({ clients, bus } = harness);
  // A runner on the real bus, with the bus's own consume loop and dead-lettering.
  runner = await bus.consume({
    stream: bus.streams.jobs,
    durable: "runner-default",
    filterSubject: runnerJobsFilter(bus),
    schema: JobSchema,
    handler: async (job, ctx) => {
      taken.push(job);
      if (job.pipelineName === "refused") {
        // What a runner throws for a job it can never run.
        throw new DomainError("ValidationException", "configuration.RepositoryUrl: scheme not allowed on this runner");
      }
      if (job.pipelineName === "exhausted") {
        // What a runner throws each time it loses the job's lease (see action-runner job-leases.ts).
        throw new Error(`job ${job.jobId}: lease lost`);
      }
      if (job.pipelineName === "garbled") {
        // The job's bytes arrive damaged (with the headers the orchestrator set): the runner
        // cannot decode them, so its consume loop dead-letters them before any handler runs.
        const hdrs = natsHeaders();
        for (const name of ["Sluice-Pipeline", "Sluice-Pipeline-Execution", "Sluice-Stage", "Sluice-Action", "Sluice-Action-Execution", "Sluice-Attempt"]) {
          hdrs.set(name, ctx.header(name));
        }
        await bus.js.publish(ctx.subject, new Uint8Array([0xff, 0xff, 0xff]), { msgID: `${job.jobId}:garbled`, headers: hdrs });
      }
    },
  });
});

afterAll(async () => {
  await runner?.stop();
  await harness?.stop();
});

describe("dead-lettered jobs", () => {
  it("a job the runner refuses as poison fails its action at once, naming the reason", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline("refused") });
    // The job's own deadline is far away: only the dead letter can fail it this soon.
    await expect.poll(() => checkout("refused"), { timeout: 10_000 }).toMatchObject({ status: "Failed" });
    const failed = await checkout("refused");
    expect(failed?.message).toMatch(/dead-lettered after 1 deliveries/);
    expect(failed?.message).toContain("ValidationException: configuration.RepositoryUrl: scheme not allowed on this runner");
    expect(taken.filter((j) => j.pipelineName === "refused")).toHaveLength(1);
  });

  it("a job whose deliveries are exhausted fails its action, naming the deliveries and the last error", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline("exhausted") });
    await expect.poll(() => checkout("exhausted"), { timeout: 20_000 }).toMatchObject({ status: "Failed" });
    const failed = await checkout("exhausted");
    expect(failed?.message).toMatch(/dead-lettered after 5 deliveries and never ran to completion: failed 5 deliveries, last error: job \S+ lease lost/);
    expect(taken.filter((j) => j.pipelineName === "exhausted")).toHaveLength(5);
  });

  it("a job the runner cannot decode fails its action at once (found by the job's headers)", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline("garbled") });
    await expect.poll(() => checkout("garbled"), { timeout: 10_000 }).toMatchObject({ status: "Failed" });
    expect((await checkout("garbled"))?.message).toMatch(/dead-lettered .*cannot decode sluice\.v1\.Job/);
    const executions = await clients.viewer.listPipelineExecutions({ pipelineName: "garbled" });
    expect(executions.pipelineExecutionSummaries[0]?.status).toBe("Failed");
  });
});
