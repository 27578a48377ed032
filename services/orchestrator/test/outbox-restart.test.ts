import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { create } from "@bufbuild/protobuf";
import { nanos } from "@nats-io/transport-node";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { JobSchema } from "@sluice/proto";
import { MongoClient } from "mongodb";
import type { OutboxEntry } from "../src/runtime/outbox.js";
import { decodeOutbox } from "../src/runtime/runtime-codec.js";
import type { RuntimeDoc } from "../src/runtime/runtime-store.js";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator, OrchestratorDeps } from "../src/service.js";
import { clientsFor, isJob, isolation, produced, report, tapJobs, testConfig, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("rst");

let mongo: MongoClient;
let bus: Bus;
let tap: JobTap;
let service: Orchestrator | undefined;
let clients: Clients | undefined;
// The orchestrator's clock: a restart "3 minutes later" moves it, not the test's wall time.
let clockOffsetMs = 0;

/** Starts (or restarts) the orchestrator; only the test sweeps the outbox, so every sweep is observed. */
async function start(deps: OrchestratorDeps = {}): Promise<void> {
  clients?.close();
  await service?.stop(5_000);
  service = await startOrchestrator(testConfig(servers, iso, { OUTBOX_SWEEP_MS: "1h" }), { clock: () => Date.now() + clockOffsetMs, ...deps });
  clients = clientsFor(service.port);
}

const outboxOf = async (name: string): Promise<OutboxEntry[]> =>
  decodeOutbox((await mongo.db(iso.dbName).collection<RuntimeDoc>("runtime").findOne({ _id: name })) ?? { outbox: [] });

/**
 * Makes JetStream forget message ids: the stream's duplicate window shrinks to 100 ms (the least it takes) and a probe
 * id is published until the server takes it twice. From then on a repeated Nats-Msg-Id is a new
 * message, as it would be 3 minutes after the first publish.
 *
 * Every try updates the window again (alternating 100 and 150 ms): nats-server fires its purge timer
 * when the window changes, but that purge can run before the update stores the new window and then
 * re-arms itself for what is left of the old 2 minutes. A later update purges with the window stored by the earlier one.
 */
async function outlastDuplicateWindow(): Promise<void> {
  const info = await bus.jsm.streams.info(bus.streams.jobs);
  const probe = create(JobSchema, { jobId: "probe", pipelineName: "probe" });
  const subject = bus.subjects.jobSubject("default", "Probe", "Probe");
  await bus.publish(subject, JobSchema, probe, { msgId: "window-probe" });
  let tries = 0;
  await expect
    .poll(
      async () => {
        tries++;
        await bus.jsm.streams.update(bus.streams.jobs, { ...info.config, duplicate_window: nanos(tries % 2 === 0 ? 150 : 100) });
        await new Promise((resolve) => setTimeout(resolve, 200));
        return (await bus.publish(subject, JobSchema, probe, { msgId: "window-probe" })).duplicate;
      },
      { timeout: 10_000, interval: 100 },
    )
    .toBe(false);
}

/** Publishes a marker job after everything the sweep published, and waits for the tap to see it. */
async function drained(tag: string): Promise<void> {
  const marker = create(JobSchema, { jobId: `marker-${tag}`, pipelineName: "marker" });
  await bus.publish(bus.subjects.jobSubject("default", "Source", "Git"), JobSchema, marker, { msgId: marker.jobId });
  await tap.next((j) => j.jobId === marker.jobId);
}

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
  bus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-restart-test", logger: noopLogger, prefix: iso.prefix });
  await bus.ensureStreams();
  tap = await tapJobs(bus);
});

afterAll(async () => {
  clients?.close();
  await service?.stop(5_000);
  await tap?.stop();
  await bus?.close();
  await mongo?.db(iso.dbName).dropDatabase();
  await mongo?.close();
});

describe("published outbox entries across a restart after the duplicate window", () => {
  it("a job published and marked is not published again by an orchestrator restarted 3 minutes later", async () => {
    clockOffsetMs = 0;
    await start();
    await clients!.ops.createPipeline({ pipeline: threeStagePipeline("marked") });
    const job = await tap.next(isJob("marked", "Checkout"));
    // The mark is durable: the entry leaves the stored outbox soon after its publish.
    await expect.poll(async () => (await outboxOf("marked")).some((e) => e.id === job.jobId), { timeout: 10_000 }).toBe(false);

    clockOffsetMs = 3 * 60_000;
    await start();
    await outlastDuplicateWindow();
    await service!.runtime.sweepOutbox(3_000);
    await drained("marked");
    expect(tap.jobs.filter((j) => j.jobId === job.jobId)).toHaveLength(1);
    // The runner still working on it finishes the action as usual.
    await report(bus, job, { outputArtifacts: produced(job, "Src"), revision: { revisionId: "c0ffee", branch: "main" } });
    await expect
      .poll(async () => (await clients!.viewer.getPipelineState({ name: "marked" })).stageStates[0]?.latestExecution?.status, { timeout: 10_000 })
      .toBe("Succeeded");
  });

  it("a job published just before a crash lost its mark fails its action instead of running twice", async () => {
    clockOffsetMs = 0;
    // No compaction: the stop below leaves the published job in the stored outbox, unmarked, as a crash would.
    await start({ compactAfterMs: Infinity });
    await clients!.ops.createPipeline({ pipeline: threeStagePipeline("crashed") });
    const job = await tap.next(isJob("crashed", "Checkout"));
    expect((await outboxOf("crashed")).some((e) => e.id === job.jobId)).toBe(true);

    clockOffsetMs = 3 * 60_000;
    await start();
    await outlastDuplicateWindow();
    await service!.runtime.sweepOutbox(3_000);
    await drained("crashed");
    expect(tap.jobs.filter((j) => j.jobId === job.jobId)).toHaveLength(1);
    const action = (await clients!.viewer.getPipelineState({ name: "crashed" })).stageStates[0]?.actionStates[0]?.latestExecution;
    expect(action?.status).toBe("Failed");
    expect(action?.errorDetails?.message).toMatch(/without a record of its publication.*could run it twice/);
  });

  it("within the window a restarted orchestrator still publishes what may never have gone out", async () => {
    clockOffsetMs = 0;
    await start({ compactAfterMs: Infinity });
    await clients!.ops.createPipeline({ pipeline: threeStagePipeline("recent") });
    const job = await tap.next(isJob("recent", "Checkout"));
    clockOffsetMs = 60_000;
    await start();
    await outlastDuplicateWindow();
    await service!.runtime.sweepOutbox(3_000);
    await drained("recent");
    // At-least-once inside the window (JetStream drops the repeat there; here it was made to forget).
    expect(tap.jobs.filter((j) => j.jobId === job.jobId)).toHaveLength(2);
    expect((await clients!.viewer.getPipelineState({ name: "recent" })).stageStates[0]?.actionStates[0]?.latestExecution?.status).toBe("InProgress");
  });
});
