import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { create, toBinary } from "@bufbuild/protobuf";
import { connectBus } from "@sluice/bus";
import type { Bus, EventSubscription } from "@sluice/bus";
import { initialRuntime, noopLogger } from "@sluice/domain";
import type { JobOutcome } from "@sluice/domain";
import { JobSchema, PipelineDeclarationSchema } from "@sluice/proto";
import type { StateChangeEvent } from "@sluice/proto";
import { MongoClient } from "mongodb";
import { specOf } from "../src/pipelines/spec-of.js";
import { createOutboxRelay } from "../src/runtime/outbox-relay.js";
import type { OutboxRelay, OutboxRelayOptions } from "../src/runtime/outbox-relay.js";
import { declarationEntry, parseJob } from "../src/runtime/outbox.js";
import type { OutboxEntry } from "../src/runtime/outbox.js";
import { createOutboxPublisher } from "../src/runtime/publisher.js";
import type { OutboxPublisher } from "../src/runtime/publisher.js";
import { createRuntimeRepository } from "../src/runtime/runtime-repository.js";
import type { RuntimeRepository } from "../src/runtime/runtime-repository.js";
import { isolation, tapJobs, threeStagePipeline } from "./helpers.js";
import type { JobTap } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("rly");

let mongo: MongoClient;
let bus: Bus;
let tap: JobTap;
let events: EventSubscription;
const seen: StateChangeEvent[] = [];
let repository: RuntimeRepository;

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
  repository = createRuntimeRepository(mongo.db(iso.dbName));
  bus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-relay-test", logger: noopLogger, prefix: iso.prefix });
  await bus.ensureStreams();
  tap = await tapJobs(bus);
  events = await bus.subscribeEvents(bus.subjects.eventFilter(), (e) => {
    seen.push(e);
  });
});

afterAll(async () => {
  await events?.stop();
  await tap?.stop();
  await bus?.close();
  await mongo?.db(iso.dbName).dropDatabase();
  await mongo?.close();
});

function jobEntry(pipelineName: string, jobId: string, at: number): OutboxEntry {
  const job = create(JobSchema, { jobId, actionExecutionId: `${jobId}-run`, attempt: 1, pipelineName, pipelineExecutionId: "execution", stageName: "Source", actionName: "Checkout" });
  return { id: jobId, at, type: "job", subject: bus.subjects.jobSubject("default", "Source", "Git"), payload: toBinary(JobSchema, job), inputArtifactIds: [], outputNames: [] };
}

/** A relay whose undispatched jobs' results are collected. */
function relayOver(publisher: OutboxPublisher, republishWithinMs = 90_000, turn: OutboxRelayOptions["turn"] = (_name, work) => work()): { relay: OutboxRelay; failed: JobOutcome[] } {
  const failed: JobOutcome[] = [];
  const relay = createOutboxRelay({
    publisher,
    repository,
    undispatched: (_name, result) => {
      failed.push(result);
      return Promise.resolve();
    },
    logger: noopLogger,
    clock: Date.now,
    republishWithinMs,
    turn,
  });
  return { relay, failed };
}

describe("outbox relay", () => {
  it("publishes entries and settles them", async () => {
    const { relay, failed } = relayOver(createOutboxPublisher({ bus, logger: noopLogger, artifacts: undefined }));
    const job = jobEntry("published", "published-job", Date.now());
    const event = declarationEntry(bus.subjects, "published", "CREATED", 1, undefined, Date.now());
    expect(await relay.publish("published", [job, event])).toBe(2);
    expect((await tap.next((j) => j.jobId === job.id)).pipelineName).toBe("published");
    await expect.poll(() => seen.some((e) => e.eventId === event.id), { timeout: 10_000 }).toBe(true);
    expect([...(relay.settledOf("published") ?? [])].sort()).toEqual([job.id, event.id].sort());
    expect(failed).toEqual([]);
    relay.prune("published", [event]);
    expect([...(relay.settledOf("published") ?? [])]).toEqual([event.id]);
  });

  it("hands the failed result of a job whose grants were refused to the sink, as a runner would report it", async () => {
    const refusing: OutboxPublisher = {
      publish: (entry) => Promise.resolve({ kind: "rejected", job: parseJob(entry), reason: "artifact grants refused: no such artifact" }),
    };
    const { relay, failed } = relayOver(refusing);
    const job = jobEntry("refused", "refused-job", Date.now());
    expect(await relay.publish("refused", [job])).toBe(1);
    expect(failed).toEqual([
      expect.objectContaining({
        jobId: "refused-job",
        actionExecutionId: "refused-job-run",
        attempt: 1,
        pipelineName: "refused",
        status: "Failed",
        errorDetails: { code: "JobFailed", message: "artifact grants refused: no such artifact" },
        updatedBy: "orchestrator",
      }),
    ]);
    expect(relay.settledOf("refused")?.has(job.id)).toBe(true);
  });

  it("sweeps due entries: re-publishes them, fails job entries too old to publish again, leaves young ones", async () => {
    const now = Date.now();
    const state = initialRuntime(specOf(create(PipelineDeclarationSchema, threeStagePipeline("swept")), "sluice-artifacts"));
    const due = declarationEntry(bus.subjects, "swept", "CREATED", 1, undefined, now - 60_000);
    const ambiguous = jobEntry("swept", "ambiguous-job", now - 10 * 60_000);
    const young = declarationEntry(bus.subjects, "swept", "UPDATED", 2, undefined, now);
    await repository.insert("swept", 1, { state, outbox: [due, ambiguous, young], deleted: false });
    const { relay, failed } = relayOver(createOutboxPublisher({ bus, logger: noopLogger, artifacts: undefined }));
    const swept: string[] = [];
    const published = await relay.sweep(3_000, (name) => {
      swept.push(name);
      return Promise.resolve();
    });
    expect(published).toBe(1);
    expect(swept).toEqual(["swept"]);
    await expect.poll(() => seen.some((e) => e.eventId === due.id), { timeout: 10_000 }).toBe(true);
    expect(failed.map((r) => [r.jobId, r.status])).toEqual([["ambiguous-job", "Failed"]]);
    expect(failed[0]?.errorDetails?.message).toMatch(/restarted and found this job written 600 s ago/);
    expect([...(relay.settledOf("swept") ?? [])].sort()).toEqual([due.id, ambiguous.id].sort());
    expect(seen.some((e) => e.eventId === young.id)).toBe(false);
  });

  it("never fails a published job whose entry a write dropped after the sweep listed it", async () => {
    // The job is long-running (its entry is older than republishWithinMs) and was published by
    // this process. The sweep lists the outbox; before it looks closer, a write (the job's
    // started report) drops the settled entry and the books forget it.
    const state = initialRuntime(specOf(create(PipelineDeclarationSchema, threeStagePipeline("raced")), "sluice-artifacts"));
    const running = jobEntry("raced", "running-job", Date.now() - 10 * 60_000);
    await repository.insert("raced", 1, { state, outbox: [running], deleted: false });
    const published: OutboxPublisher = { publish: () => Promise.resolve({ kind: "published" }) };
    const holder: { relay?: OutboxRelay } = {};
    const writeBetween: OutboxRelayOptions["turn"] = async (name, work) => {
      const stored = await repository.findOutbox(name);
      if (stored !== undefined && (await repository.writeOutbox(name, stored.rev, []))) holder.relay?.prune(name, []);
      return work();
    };
    const made = relayOver(published, 90_000, writeBetween);
    holder.relay = made.relay;
    await made.relay.publish("raced", [running]);
    expect(await made.relay.sweep(3_000, () => Promise.resolve())).toBe(0);
    expect(made.failed).toEqual([]);
  });
});
