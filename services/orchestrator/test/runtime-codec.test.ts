import { randomUUID } from "node:crypto";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { createCatalog } from "@sluice/bus";
import { MAX_REQUEST_TOKENS, decide, initialRuntime } from "@sluice/domain";
import type { PipelineRuntime } from "@sluice/domain";
import { JobSchema, PipelineDeclarationSchema, StateChangeEventSchema } from "@sluice/proto";
import { Binary, MongoClient } from "mongodb";
import type { Collection } from "mongodb";
import { specOf } from "../src/pipelines/spec-of.js";
import { declarationEntry, parseEvent, parseJob } from "../src/runtime/outbox.js";
import type { OutboxEntry } from "../src/runtime/outbox.js";
import { decodeOutbox, decodeState, encodeOutbox, encodePart, encodeState, partMark } from "../src/runtime/runtime-codec.js";
import type { EncodedRuntime } from "../src/runtime/runtime-codec.js";
import { isolation, threeStagePipeline } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("codec");
const { subjects } = createCatalog();

let mongo: MongoClient;
let docs: Collection<EncodedRuntime & { outbox: Array<Binary | string> }>;

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
  docs = mongo.db(iso.dbName).collection("codec");
});

afterAll(async () => {
  await mongo?.db(iso.dbName).dropDatabase();
  await mongo?.close();
});

/** A runtime holding `tokens` earlier request tokens, after one more execution was requested with a token. */
function runtimeWithTokens(tokens: number): PipelineRuntime {
  const state = initialRuntime(specOf(create(PipelineDeclarationSchema, threeStagePipeline("codec")), "sluice-artifacts"));
  state.requestTokens = Array.from({ length: tokens }, (_, i) => ({ token: `token-${i}`, executionId: `execution-${i}`, at: 1_000 + i }));
  return requested(state, "latest");
}

function requested(state: PipelineRuntime, clientRequestToken: string): PipelineRuntime {
  const event = { type: "ExecutionRequested", executionId: randomUUID(), clientRequestToken, trigger: { triggerType: "StartPipelineExecution", triggerDetail: "test" } } as const;
  return decide(state, event, { now: 50_000, newId: randomUUID }).state;
}

describe("runtime codec", () => {
  it("stores each outbox entry as one binary value and reads it back", async () => {
    const job = create(JobSchema, { jobId: "j1", pipelineName: "codec", configuration: { "odd.key$": "value" } });
    const entries: OutboxEntry[] = [
      { id: "j1", at: 5, type: "job", subject: subjects.jobSubject("default", "Build", "Commands"), payload: toBinary(JobSchema, job), inputArtifactIds: ["a/b"], outputNames: ["Built"] },
      declarationEntry(subjects, "codec", "CREATED", 1, undefined, 7),
    ];
    await docs.insertOne({ _id: "binary", outbox: encodeOutbox(entries) });
    const stored = await docs.findOne({ _id: "binary" });
    expect(stored?.outbox.every((e) => e instanceof Binary)).toBe(true);
    const decoded = decodeOutbox(stored ?? { outbox: [] });
    expect(decoded).toEqual(entries);
    expect(parseJob(decoded[0] as OutboxEntry).configuration).toEqual({ "odd.key$": "value" });
    expect(parseEvent(decoded[1] as OutboxEntry).pipeline).toBe("codec");
  });

  it("reads the JSON text outbox entries of documents written before the binary form", async () => {
    const event = declarationEntry(subjects, "codec", "UPDATED", 2, undefined, 9);
    const job = create(JobSchema, { jobId: "j2", pipelineName: "codec", attempt: 2 });
    const legacy = [
      { id: "j2", at: 3, type: "job", subject: "sluice.jobs.default.Source.Git", payload: toJsonString(JobSchema, job), inputArtifactIds: [], outputNames: ["Src"] },
      { ...event, payload: toJsonString(StateChangeEventSchema, parseEvent(event)) },
    ];
    await docs.insertOne({ _id: "legacy", outbox: legacy.map((e) => JSON.stringify(e)) });
    const decoded = decodeOutbox((await docs.findOne({ _id: "legacy" })) ?? { outbox: [] });
    expect(decoded.map((e) => e.id)).toEqual(["j2", event.id]);
    expect(parseJob(decoded[0] as OutboxEntry).attempt).toBe(2);
    expect(decoded[1]?.payload).toEqual(event.payload);
  });

  it("keeps request tokens and rollback targets out of the state blob, in fields of their own", async () => {
    const state = runtimeWithTokens(2);
    const stateZ = await encodeState(state);
    const blob = JSON.parse(inflateRawSync(stateZ.buffer.subarray(0, stateZ.position)).toString("utf8")) as Record<string, unknown>;
    expect(Object.keys(blob)).not.toContain("requestTokens");
    expect(Object.keys(blob)).not.toContain("rollbackTargets");
    await docs.insertOne({ _id: "parts", outbox: [], stateZ, requestTokensZ: await encodePart(state, "requestTokens") });
    const { state: decoded, marks } = await decodeState((await docs.findOne({ _id: "parts" })) ?? { _id: "parts" });
    expect(decoded).toEqual(state);
    expect(marks).toEqual({ requestTokens: partMark(state, "requestTokens"), rollbackTargets: "" });
  });

  it("reads the parts from inside the state of documents written before they had fields, with empty marks", async () => {
    const state = runtimeWithTokens(2);
    await docs.insertMany([
      { _id: "old-z", outbox: [], stateZ: new Binary(deflateRawSync(JSON.stringify(state), { level: 1 })) },
      { _id: "old-json", outbox: [], stateJson: JSON.stringify(state) },
    ]);
    for (const _id of ["old-z", "old-json"]) {
      const { state: decoded, marks } = await decodeState((await docs.findOne({ _id })) ?? { _id });
      expect(decoded).toEqual(state);
      expect(decoded.requestTokens).toHaveLength(3);
      expect(marks).toEqual({ requestTokens: "", rollbackTargets: "" });
    }
  });

  it("marks every change of the request tokens, at the cap too", () => {
    const full = runtimeWithTokens(MAX_REQUEST_TOKENS - 1);
    expect(full.requestTokens).toHaveLength(MAX_REQUEST_TOKENS);
    const next = requested(full, "one-more");
    expect(next.requestTokens).toHaveLength(MAX_REQUEST_TOKENS);
    expect(partMark(next, "requestTokens")).not.toBe(partMark(full, "requestTokens"));
    // A decision that leaves them alone keeps the mark, though decide() copied the array.
    const same = decide(next, { type: "TimerFired" }, { now: 100_000, newId: randomUUID }).state;
    expect(partMark(same, "requestTokens")).toBe(partMark(next, "requestTokens"));
    expect(partMark(initialRuntime(full.spec), "requestTokens")).toBe("");
  });
});
