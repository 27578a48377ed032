// WatchPipelineExecution against real servers: the snapshot, every change to
// a terminal status, a client that cancels, and a server that shuts down.
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { GrpcStatus, isRpcError } from "@sluice/grpc";
import type { WatchPipelineExecutionResponse } from "@sluice/proto";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator } from "../src/service.js";
import { clientsFor, dropDatabase, isJob, isolation, produced, report, tapJobs, testConfig, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("wat");

let service: Orchestrator;
let clients: Clients;
let bus: Bus;
let tap: JobTap;

beforeAll(async () => {
  service = await startOrchestrator(testConfig(servers, iso), { watchResyncMs: 500 });
  clients = clientsFor(service.port);
  bus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-watch-test", logger: noopLogger, prefix: iso.prefix });
  tap = await tapJobs(bus);
});

afterAll(async () => {
  clients?.close();
  await tap?.stop();
  await bus?.close();
  await service?.stop(5_000);
  await dropDatabase(servers.mongoUrl, iso.dbName);
});

/** Reads a watch to its end in the background; `messages` fills as they arrive. */
function collect(stream: AsyncIterable<WatchPipelineExecutionResponse>): { messages: WatchPipelineExecutionResponse[]; done: Promise<unknown> } {
  const messages: WatchPipelineExecutionResponse[] = [];
  const done = (async () => {
    for await (const m of stream) messages.push(m);
  })().then(
    () => "ended",
    (err: unknown) => err,
  );
  return { messages, done };
}

/** Ephemeral consumers on the events stream: one per open watch. */
async function eventConsumers(): Promise<number> {
  return (await bus.jsm.streams.info(bus.streams.events)).state.consumer_count;
}

describe("WatchPipelineExecution", () => {
  const name = "watched";

  it("sends a snapshot, then every change with a fresh snapshot, and ends when the execution is terminal", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline(name) });
    const source = await tap.next(isJob(name, "Checkout"));
    const executionId = source.pipelineExecutionId;
    const watch = collect(clients.viewer.watchPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId }));
    await expect.poll(() => watch.messages.length, { timeout: 10_000 }).toBeGreaterThan(0);
    const first = watch.messages[0];
    expect(first?.event).toBeUndefined();
    expect(first?.snapshot?.pipelineExecution?.status).toBe("InProgress");
    expect(first?.snapshot?.stageStates.map((s) => [s.stageName, s.latestExecution?.status ?? "-"])).toEqual([
      ["Source", "InProgress"],
      ["Build", "-"],
      ["Deploy", "-"],
    ]);
    expect(first?.snapshot?.stageStates[0]?.actionStates[0]?.latestExecution?.actionExecutionId).toBe(source.actionExecutionId);

    await report(bus, source, { outputArtifacts: produced(source, "Src"), revision: { revisionId: "c0ffee" } });
    const build = await tap.next(isJob(name, "Compile", executionId));
    await report(bus, build, { outputArtifacts: produced(build, "Built") });
    await report(bus, await tap.next(isJob(name, "Ship", executionId)));
    await expect(watch.done).resolves.toBe("ended");

    const events = watch.messages.flatMap((m) => (m.event === undefined ? [] : [m.event]));
    expect(events.every((e) => e.executionId === executionId)).toBe(true);
    const last = watch.messages.at(-1);
    expect(last?.event?.detailType).toBe("CodePipeline Pipeline Execution State Change");
    expect(last?.event?.state).toBe("SUCCEEDED");
    expect(last?.snapshot?.pipelineExecution?.status).toBe("Succeeded");
    expect(last?.snapshot?.stageStates.map((s) => s.latestExecution?.status)).toEqual(["Succeeded", "Succeeded", "Succeeded"]);
    const actionEvents = events.filter((e) => e.detailType === "CodePipeline Action Execution State Change").map((e) => `${e.action}:${e.state}`);
    expect(actionEvents).toEqual(expect.arrayContaining(["Compile:STARTED", "Compile:SUCCEEDED", "Ship:STARTED", "Ship:SUCCEEDED"]));
    // Every event message carries the state read after it: it already shows the change.
    const compileDone = watch.messages.find((m) => m.event?.action === "Compile" && m.event.state === "SUCCEEDED");
    expect(compileDone?.snapshot?.stageStates[1]?.actionStates[0]?.latestExecution?.status).toBe("Succeeded");
  });

  it("answers a finished execution with its snapshot alone", async () => {
    const list = await clients.viewer.listPipelineExecutions({ pipelineName: name });
    const executionId = list.pipelineExecutionSummaries[0]?.pipelineExecutionId ?? "";
    const messages: WatchPipelineExecutionResponse[] = [];
    for await (const m of clients.viewer.watchPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId })) messages.push(m);
    expect(messages).toHaveLength(1);
    expect(messages[0]?.snapshot?.pipelineExecution?.status).toBe("Succeeded");
  });

  it("ends the server's stream (and its subscription) when the client cancels", async () => {
    const executionId = (await clients.ops.startPipelineExecution({ name })).pipelineExecutionId;
    const before = await eventConsumers();
    const controller = new AbortController();
    const watch = collect(clients.viewer.watchPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId }, { signal: controller.signal }));
    await expect.poll(() => watch.messages.length, { timeout: 10_000 }).toBe(1);
    expect(await eventConsumers()).toBe(before + 1);
    controller.abort();
    const outcome = await watch.done;
    expect(isRpcError(outcome) && outcome.code === GrpcStatus.CANCELLED).toBe(true);
    await expect.poll(() => eventConsumers(), { timeout: 10_000 }).toBe(before);
  });

  it("names what is wrong with the request", async () => {
    const invalid = collect(clients.viewer.watchPipelineExecution({ pipelineName: name, pipelineExecutionId: "not-an-id" }));
    const err = await invalid.done;
    expect(isRpcError(err) && err.errorCode).toBe("ValidationException");
    expect(isRpcError(err) && err.violations.map((v) => v.field)).toEqual(["pipelineExecutionId"]);
    const unknown = await collect(clients.viewer.watchPipelineExecution({ pipelineName: name, pipelineExecutionId: "00000000-0000-4000-8000-000000000000" })).done;
    expect(isRpcError(unknown) && unknown.errorCode).toBe("PipelineExecutionNotFoundException");
    const denied = await collect(clients.anonymous.watchPipelineExecution({ pipelineName: name, pipelineExecutionId: "00000000-0000-4000-8000-000000000000" })).done;
    expect(isRpcError(denied) && denied.errorCode).toBe("UnauthenticatedException");
  });
});

describe("WatchPipelineExecution at shutdown", () => {
  it("ends open watches cleanly when the orchestrator stops", async () => {
    const own = isolation("wsd");
    const stopping = await startOrchestrator(testConfig(servers, own));
    const client = clientsFor(stopping.port);
    const ownBus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-watch-shutdown", logger: noopLogger, prefix: own.prefix });
    const ownTap = await tapJobs(ownBus);
    try {
      await client.ops.createPipeline({ pipeline: threeStagePipeline("short-lived") });
      const executionId = (await ownTap.next(isJob("short-lived", "Checkout"))).pipelineExecutionId;
      const watch = collect(client.viewer.watchPipelineExecution({ pipelineName: "short-lived", pipelineExecutionId: executionId }));
      await expect.poll(() => watch.messages.length, { timeout: 10_000 }).toBe(1);
      await stopping.stop(5_000);
      await expect(watch.done).resolves.toBe("ended");
    } finally {
      client.close();
      await ownTap.stop();
      await ownBus.close();
      await stopping.stop(5_000);
      await dropDatabase(servers.mongoUrl, own.dbName);
    }
  });
});
