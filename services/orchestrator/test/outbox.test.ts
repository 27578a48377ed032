import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { connectBus } from "@sluice/bus";
import type { Bus, EventSubscription } from "@sluice/bus";
import { initialRuntime, noopLogger } from "@sluice/domain";
import { JobSchema, PipelineDeclarationSchema, StateChangeEventSchema } from "@sluice/proto";
import type { StateChangeEvent } from "@sluice/proto";
import { MongoClient } from "mongodb";
import { createPipelineStore } from "../src/pipelines/pipeline-store.js";
import { specOf } from "../src/pipelines/spec-of.js";
import { declarationEntry, parseEvent } from "../src/runtime/outbox.js";
import type { OutboxEntry } from "../src/runtime/outbox.js";
import { decodeOutbox } from "../src/runtime/runtime-codec.js";
import type { LegacyOutboxEntry } from "../src/runtime/runtime-codec.js";
import type { RuntimeDoc } from "../src/runtime/runtime-store.js";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator } from "../src/service.js";
import { isolation, tapJobs, testConfig, threeStagePipeline } from "./helpers.js";
import type { JobTap } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("obx");

let mongo: MongoClient;
let bus: Bus;
let tap: JobTap;
let events: EventSubscription;
const seen: StateChangeEvent[] = [];
let service: Orchestrator | undefined;

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
  bus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-outbox-test", logger: noopLogger, prefix: iso.prefix });
  await bus.ensureStreams();
  tap = await tapJobs(bus);
  events = await bus.subscribeEvents(bus.subjects.eventFilter(), (event) => {
    seen.push(event);
  });
});

afterAll(async () => {
  await service?.stop(5_000);
  await events?.stop();
  await tap?.stop();
  await bus?.close();
  await mongo?.db(iso.dbName).dropDatabase();
  await mongo?.close();
});

const outboxIdsOf = (doc: RuntimeDoc | null): string[] | undefined => (doc === null ? undefined : decodeOutbox(doc).map((e) => e.id));

describe("outbox sweeper", () => {
  it("publishes what a crashed orchestrator wrote but never published, and only old entries", async () => {
    // The state a crash between the conditional write and the publish leaves behind.
    const db = mongo.db(iso.dbName);
    const now = Date.now();
    const stored = await createPipelineStore(db).create(create(PipelineDeclarationSchema, threeStagePipeline("crashed")), [], new Date(now - 60_000));
    const job = create(JobSchema, {
      jobId: "11111111-1111-4111-8111-111111111111:1",
      actionExecutionId: "11111111-1111-4111-8111-111111111111",
      attempt: 1,
      pipelineName: "crashed",
      pipelineVersion: 1,
      pipelineExecutionId: "22222222-2222-4222-8222-222222222222",
      stageName: "Source",
      actionName: "Checkout",
      actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
      deadline: timestampFromMs(now + 60_000),
      artifactBucket: "sluice-artifacts",
    });
    // As an orchestrator wrote them before outbox entries were binary: JSON text, protobuf JSON payloads.
    const legacyEvent = (e: OutboxEntry): LegacyOutboxEntry => ({ ...e, payload: toJsonString(StateChangeEventSchema, parseEvent(e)) });
    const jobEntry: LegacyOutboxEntry = {
      id: job.jobId,
      at: now - 60_000,
      type: "job",
      subject: bus.subjects.jobSubject("default", "Source", "Git"),
      payload: toJsonString(JobSchema, job),
      inputArtifactIds: [],
      outputNames: ["Src"],
    };
    const eventEntry = declarationEntry(bus.subjects, "crashed", "CREATED", 1, stored.declaration, now - 60_000);
    // Written a moment ago: the write that made it is still publishing it.
    const fresh = declarationEntry(bus.subjects, "crashed", "UPDATED", 2, stored.declaration, now + 10 * 60_000);
    const doc: RuntimeDoc = {
      _id: "crashed",
      rev: now,
      stateJson: JSON.stringify(initialRuntime(specOf(stored.declaration, "sluice-artifacts"))),
      outbox: [jobEntry, legacyEvent(eventEntry), legacyEvent(fresh)].map((e) => JSON.stringify(e)),
      nextDeadline: null,
      deleted: false,
    };
    await db.collection<RuntimeDoc>("runtime").insertOne(doc);

    service = await startOrchestrator(testConfig(servers, iso));

    const published = await tap.next((j) => j.jobId === job.jobId);
    expect(published.pipelineExecutionId).toBe(job.pipelineExecutionId);
    expect(tap.subjects.get(job.jobId)).toBe(`${iso.prefix}.sluice.jobs.default.Source.Git`);
    await expect.poll(() => seen.filter((e) => e.eventId === eventEntry.id).length, { timeout: 10_000 }).toBe(1);
    await expect
      .poll(async () => outboxIdsOf(await db.collection<RuntimeDoc>("runtime").findOne({ _id: "crashed" })), { timeout: 10_000 })
      .toEqual([fresh.id]);
    expect(seen.some((e) => e.eventId === fresh.id)).toBe(false);
  });

  it("drops what the writer published from the outbox once the pipeline is quiet", async () => {
    const runtime = mongo.db(iso.dbName).collection<RuntimeDoc>("runtime");
    const outboxIds = async (): Promise<string[] | undefined> => outboxIdsOf(await runtime.findOne({ _id: "crashed" }));
    const before = await outboxIds();
    expect(before).toHaveLength(1);
    const { decision } = await service!.runtime.apply("crashed", {
      type: "ExecutionRequested",
      executionId: randomUUID(),
      trigger: { triggerType: "StartPipelineExecution", triggerDetail: "test" },
    });
    const jobIds = decision.commands.flatMap((c) => (c.type === "DispatchJob" ? [c.job.jobId] : []));
    const jobId = jobIds[0] ?? "";
    const written = [...jobIds, ...decision.events.map((e) => e.event.eventId)];
    expect(written.length).toBeGreaterThan(1);
    // Published by the write that made them (not by the sweeper: they are younger than its minimum age) …
    expect((await tap.next((j) => j.jobId === jobId)).pipelineName).toBe("crashed");
    await expect.poll(() => written.filter((id) => seen.some((e) => e.eventId === id) || id === jobId).length, { timeout: 10_000 }).toBe(written.length);
    // … then dropped by the compaction; the entry nobody published stays.
    await expect.poll(outboxIds, { timeout: 10_000 }).toEqual(before);
  });
});
