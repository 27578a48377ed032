import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { create } from "@bufbuild/protobuf";
import { createCatalog } from "@sluice/bus";
import { decide, initialRuntime, noopLogger } from "@sluice/domain";
import type { PipelineRuntime } from "@sluice/domain";
import { PipelineDeclarationSchema } from "@sluice/proto";
import { MongoClient } from "mongodb";
import type { Db } from "mongodb";
import { specOf } from "../src/pipelines/spec-of.js";
import { createKeyedSerial } from "../src/serial.js";
import { createArchiver } from "../src/runtime/archiver.js";
import type { Archiver } from "../src/runtime/archiver.js";
import { compacted, createCompactor } from "../src/runtime/compactor.js";
import type { Compactor } from "../src/runtime/compactor.js";
import { declarationEntry } from "../src/runtime/outbox.js";
import type { OutboxEntry } from "../src/runtime/outbox.js";
import { createRuntimeRepository } from "../src/runtime/runtime-repository.js";
import type { RuntimeRepository, StoredRuntime } from "../src/runtime/runtime-repository.js";
import { isolation, threeStagePipeline } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("cmp");
const { subjects } = createCatalog();

let mongo: MongoClient;
let db: Db;
let repository: RuntimeRepository;

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
  db = mongo.db(iso.dbName);
  repository = createRuntimeRepository(db);
});

afterAll(async () => {
  await mongo?.db(iso.dbName).dropDatabase();
  await mongo?.close();
});

/** A runtime whose only execution has ended, and two outbox entries. */
function quietPipeline(name: string): { state: PipelineRuntime; ended: string; outbox: OutboxEntry[] } {
  const ended = randomUUID();
  const started = decide(
    initialRuntime(specOf(create(PipelineDeclarationSchema, threeStagePipeline(name)), "sluice-artifacts")),
    { type: "ExecutionRequested", executionId: ended, trigger: { triggerType: "StartPipelineExecution", triggerDetail: "test" } },
    { now: 1_000, newId: randomUUID },
  ).state;
  const exec = started.executions[ended]!;
  const state: PipelineRuntime = { ...started, executions: { [ended]: { ...exec, status: "Succeeded" } } };
  const outbox = [declarationEntry(subjects, name, "CREATED", 1, undefined, 1), declarationEntry(subjects, name, "UPDATED", 2, undefined, 2)];
  return { state, ended, outbox };
}

/** A compactor over a one-document cache, with `settled` as what the relay settled. */
function compactorFor(settled: Set<string>, compactAfterMs: number): { compactor: Compactor; cache: Map<string, StoredRuntime>; archiver: Archiver; writes: string[] } {
  const cache = new Map<string, StoredRuntime>();
  const archiver = createArchiver(db, noopLogger);
  const writes: string[] = [];
  const compactor = createCompactor({
    repository,
    archiver,
    cache,
    serial: createKeyedSerial(),
    settledOf: () => settled,
    written: (name) => writes.push(name),
    logger: noopLogger,
    compactAfterMs,
  });
  return { compactor, cache, archiver, writes };
}

describe("compactor", () => {
  it("drops settled entries and archived executions from what the next write stores", () => {
    const { state, ended, outbox } = quietPipeline("pure");
    expect(compacted({ state, outbox }, undefined, [])).toEqual({ state, outbox, changed: false });
    const next = compacted({ state, outbox }, new Set([outbox[0]!.id]), [ended]);
    expect(next.changed).toBe(true);
    expect(next.outbox).toEqual([outbox[1]]);
    expect(next.state.executions).toEqual({});
  });

  it("compacts a quiet cached document: archives its ended execution, then drops it and the published entry", async () => {
    const { state, ended, outbox } = quietPipeline("quiet");
    const stored = await repository.insert("quiet", 1, { state, outbox, deleted: false });
    const { compactor, cache, writes } = compactorFor(new Set([outbox[0]!.id]), 50);
    cache.set("quiet", stored!);
    compactor.noteWrite("quiet");
    compactor.schedule("quiet");
    await expect.poll(() => writes, { timeout: 5_000 }).toEqual(["quiet"]);
    const now = await repository.find("quiet");
    expect(now?.outbox.map((e) => e.id)).toEqual([outbox[1]!.id]);
    expect(now?.state.executions).toEqual({});
    expect(cache.get("quiet")?.rev).toBe(now?.rev);
    expect(await db.collection("executions").findOne({ _id: ended as unknown as never })).toMatchObject({ pipelineName: "quiet" });
  });

  it("trims only the stored outbox of a document it has no copy of, at close without waiting for the quiet time", async () => {
    const { state, outbox } = quietPipeline("uncached");
    await repository.insert("uncached", 1, { state, outbox, deleted: false });
    const { compactor } = compactorFor(new Set([outbox[1]!.id]), 60_000);
    compactor.schedule("uncached");
    await compactor.close();
    const now = await repository.find("uncached");
    expect(now?.outbox.map((e) => e.id)).toEqual([outbox[0]!.id]);
    expect(now?.state).toEqual(state);
  });
});
