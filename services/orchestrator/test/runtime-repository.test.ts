import { randomUUID } from "node:crypto";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { create } from "@bufbuild/protobuf";
import { createCatalog } from "@sluice/bus";
import { decide, initialRuntime } from "@sluice/domain";
import type { PipelineRuntime } from "@sluice/domain";
import { PipelineDeclarationSchema } from "@sluice/proto";
import { Binary, MongoClient } from "mongodb";
import type { Collection } from "mongodb";
import { specOf } from "../src/pipelines/spec-of.js";
import { declarationEntry } from "../src/runtime/outbox.js";
import { createRuntimeRepository } from "../src/runtime/runtime-repository.js";
import type { Revision, RuntimeDoc, RuntimeRepository } from "../src/runtime/runtime-repository.js";
import { isolation, threeStagePipeline } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("repo");
const { subjects } = createCatalog();

let mongo: MongoClient;
let docs: Collection<RuntimeDoc>;
let repository: RuntimeRepository;

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
  const db = mongo.db(iso.dbName);
  docs = db.collection<RuntimeDoc>("runtime");
  repository = createRuntimeRepository(db);
  await repository.ensureIndexes();
});

afterAll(async () => {
  await mongo?.db(iso.dbName).dropDatabase();
  await mongo?.close();
});

const fresh = (name: string): PipelineRuntime => initialRuntime(specOf(create(PipelineDeclarationSchema, threeStagePipeline(name)), "sluice-artifacts"));

function requested(state: PipelineRuntime, clientRequestToken?: string): PipelineRuntime {
  const trigger = { triggerType: "StartPipelineExecution", triggerDetail: "test" };
  const event = { type: "ExecutionRequested", executionId: randomUUID(), trigger, ...(clientRequestToken === undefined ? {} : { clientRequestToken }) } as const;
  return decide(state, event, { now: Date.now(), newId: randomUUID }).state;
}

function inflated(stored: Binary | undefined): unknown {
  return stored === undefined ? undefined : (JSON.parse(inflateRawSync(stored.buffer.subarray(0, stored.position)).toString("utf8")) as unknown);
}

describe("runtime repository", () => {
  it("creates a document once and reads it back", async () => {
    const state = fresh("created");
    const outbox = [declarationEntry(subjects, "created", "CREATED", 1, undefined, 1)];
    const inserted = await repository.insert("created", 1_000, { state, outbox, deleted: false });
    expect(inserted?.rev).toBe(1_000);
    expect(await repository.insert("created", 2_000, { state, outbox: [], deleted: false })).toBeUndefined();
    const found = await repository.find("created");
    expect(found).toMatchObject({ rev: 1_000, state, outbox, deleted: false });
    expect(await repository.findState("created")).toEqual(state);
    expect(await repository.find("nothing")).toBeUndefined();
  });

  it("writes only when the document is still at the revision the write starts from", async () => {
    const state = fresh("guarded");
    const created = await repository.insert("guarded", 10, { state, outbox: [], deleted: false });
    const next = requested(state);
    const won = await repository.write("guarded", created!, { state: next, outbox: [], deleted: false });
    expect(won?.rev).toBe(11);
    // A writer still at revision 10 loses, and changes nothing.
    expect(await repository.write("guarded", created!, { state, outbox: [], deleted: false })).toBeUndefined();
    expect(await repository.writeOutbox("guarded", 10, [declarationEntry(subjects, "guarded", "UPDATED", 2, undefined, 2)])).toBe(false);
    expect((await repository.find("guarded"))?.state).toEqual(next);
    expect(await repository.findDue(Number.MAX_SAFE_INTEGER)).toContain("guarded");
    expect(await repository.writeOutbox("guarded", 11, [declarationEntry(subjects, "guarded", "UPDATED", 2, undefined, 2)])).toBe(true);
    expect((await repository.findOutboxes()).find((o) => o.name === "guarded")).toMatchObject({ rev: 12, outbox: [{ type: "event" }] });
  });

  it("writes the request tokens only with a write that changes them, in the same conditional write", async () => {
    const withToken = requested(fresh("tokens"), "first");
    let revision: Revision | undefined = await repository.insert("tokens", 100, { state: withToken, outbox: [], deleted: false });
    expect(inflated((await docs.findOne({ _id: "tokens" }))?.requestTokensZ)).toEqual(withToken.requestTokens);
    // A stand-in value the stored field holds from here on: a write that does not change the tokens leaves it.
    const standIn = [{ token: "stand-in", executionId: "none", at: 0 }];
    await docs.updateOne({ _id: "tokens" }, { $set: { requestTokensZ: new Binary(deflateRawSync(JSON.stringify(standIn))) } });
    const untouched = requested(withToken);
    revision = await repository.write("tokens", revision!, { state: untouched, outbox: [], deleted: false });
    expect(revision).toBeDefined();
    expect((await repository.find("tokens"))?.state.requestTokens).toEqual(standIn);
    const second = requested(untouched, "second");
    revision = await repository.write("tokens", revision!, { state: second, outbox: [], deleted: false });
    expect((await repository.find("tokens"))?.state).toEqual(second);
    const { requestTokens: _dropped, ...none } = second;
    await repository.write("tokens", revision!, { state: none, outbox: [], deleted: false });
    const stored = await docs.findOne({ _id: "tokens" });
    expect(stored?.requestTokensZ).toBeUndefined();
    expect((await repository.find("tokens"))?.state.requestTokens).toBeUndefined();
  });

  it("moves the parts out of the state of a document written before they had fields", async () => {
    const state = requested(fresh("old"), "old-token");
    await docs.insertOne({ _id: "old", rev: 5, stateJson: JSON.stringify(state), outbox: [], nextDeadline: null, deleted: false });
    const found = await repository.find("old");
    expect(found?.state).toEqual(state);
    await repository.write("old", found!, { state, outbox: [], deleted: false });
    const stored = await docs.findOne({ _id: "old" });
    expect(stored?.stateJson).toBeUndefined();
    expect(Object.keys(inflated(stored?.stateZ) as object)).not.toContain("requestTokens");
    expect(inflated(stored?.requestTokensZ)).toEqual(state.requestTokens);
    expect((await repository.find("old"))?.state).toEqual(state);
  });
});
