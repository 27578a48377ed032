import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { create } from "@bufbuild/protobuf";
import { decide, initialRuntime, noopLogger } from "@sluice/domain";
import type { ExecutionRuntime, PipelineRuntime } from "@sluice/domain";
import { PipelineDeclarationSchema } from "@sluice/proto";
import { MongoClient } from "mongodb";
import type { Collection } from "mongodb";
import { specOf } from "../src/pipelines/spec-of.js";
import { createArchiver } from "../src/runtime/archiver.js";
import type { ArchivedExecution, Archiver } from "../src/runtime/archiver.js";
import { isolation, threeStagePipeline } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("arch");

let mongo: MongoClient;
let executions: Collection<ArchivedExecution>;
let archiver: Archiver;

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
  const db = mongo.db(iso.dbName);
  executions = db.collection<ArchivedExecution>("executions");
  archiver = createArchiver(db, noopLogger);
  await archiver.ensureIndexes();
});

afterAll(async () => {
  await mongo?.db(iso.dbName).dropDatabase();
  await mongo?.close();
});

/** A runtime with one execution in flight and one that ended with `status` (as the state machine leaves them). */
function runtimeWithEnded(name: string, status: ExecutionRuntime["status"]): { state: PipelineRuntime; ended: string; running: string } {
  let state = initialRuntime(specOf(create(PipelineDeclarationSchema, threeStagePipeline(name)), "sluice-artifacts"));
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const executionId = randomUUID();
    ids.push(executionId);
    state = decide(state, { type: "ExecutionRequested", executionId, trigger: { triggerType: "StartPipelineExecution", triggerDetail: "test" } }, { now: 1_000 + i, newId: randomUUID }).state;
  }
  const [ended = "", running = ""] = ids;
  const exec = state.executions[ended];
  if (exec === undefined) throw new Error("no execution");
  return { state: { ...state, executions: { ...state.executions, [ended]: { ...exec, status, lastUpdateTime: 2_000 } } }, ended, running };
}

describe("archiver", () => {
  it("copies terminal executions into executions, once per form they end in", async () => {
    const { state, ended, running } = runtimeWithEnded("archived", "Succeeded");
    await archiver.archive("archived", state);
    expect(await executions.findOne({ _id: ended })).toMatchObject({ _id: ended, pipelineName: "archived", status: "Succeeded" });
    expect(await executions.findOne({ _id: running })).toBeNull();
    expect(archiver.archivedIn("archived", state)).toEqual([ended]);

    // What it copied is not copied again …
    await executions.deleteOne({ _id: ended });
    await archiver.archive("archived", state);
    expect(await executions.findOne({ _id: ended })).toBeNull();
    // … until the execution ends again (a retry), in another form.
    const exec = state.executions[ended]!;
    const again = { ...state, executions: { ...state.executions, [ended]: { ...exec, status: "Failed" as const, lastUpdateTime: 3_000 } } };
    expect(archiver.archivedIn("archived", again)).toEqual([]);
    await archiver.archive("archived", again);
    expect(await executions.findOne({ _id: ended })).toMatchObject({ status: "Failed" });
    expect(archiver.archivedIn("archived", again)).toEqual([ended]);
  });

  it("forgets executions the runtime no longer has, and whole pipelines", async () => {
    const { state, ended } = runtimeWithEnded("forgotten", "Stopped");
    await archiver.archive("forgotten", state);
    const { [ended]: _gone, ...rest } = state.executions;
    archiver.prune("forgotten", { ...state, executions: rest });
    expect(archiver.archivedIn("forgotten", state)).toEqual([]);
    await archiver.archive("forgotten", state);
    expect(archiver.archivedIn("forgotten", state)).toEqual([ended]);
    archiver.forget("forgotten");
    expect(archiver.archivedIn("forgotten", state)).toEqual([]);
  });
});
