// The attack: one caller opens WatchPipelineExecution streams until the
// orchestrator runs out of consumers and timers. The caps stop it per
// principal and in all, with RESOURCE_EXHAUSTED, and a closed watch frees its
// slot.
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { GrpcStatus, isRpcError } from "@sluice/grpc";
import type { WatchPipelineExecutionResponse } from "@sluice/proto";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator } from "../src/service.js";
import { clientsFor, dropDatabase, isolation, testConfig, threeStagePipeline } from "./helpers.js";
import type { Clients } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("wlim");

let service: Orchestrator;
let clients: Clients;

beforeAll(async () => {
  service = await startOrchestrator(testConfig(servers, iso, { WATCH_MAX_PER_PRINCIPAL: "3", WATCH_MAX_TOTAL: "5" }), { watchResyncMs: 60_000 });
  clients = clientsFor(service.port);
});

afterAll(async () => {
  clients?.close();
  await service?.stop(5_000);
  await dropDatabase(servers.mongoUrl, iso.dbName);
});

interface OpenWatch {
  messages: WatchPipelineExecutionResponse[];
  ended: boolean;
  done: Promise<unknown>;
  close(): void;
}

function open(client: Clients["viewer"], pipelineName: string, pipelineExecutionId: string): OpenWatch {
  const controller = new AbortController();
  const messages: WatchPipelineExecutionResponse[] = [];
  const w = { messages, ended: false } as OpenWatch;
  const done = (async () => {
    for await (const m of client.watchPipelineExecution({ pipelineName, pipelineExecutionId }, { signal: controller.signal })) messages.push(m);
  })().then(
    () => "ended",
    (err: unknown) => err,
  ).finally(() => (w.ended = true));
  return Object.assign(w, { done, close: () => controller.abort() });
}

/** Opens a watch and waits for its first snapshot (the slot is then taken). */
async function opened(client: Clients["viewer"], pipelineName: string, executionId: string): Promise<OpenWatch> {
  const w = open(client, pipelineName, executionId);
  await expect.poll(() => w.messages.length, { timeout: 10_000 }).toBeGreaterThan(0);
  return w;
}

/** Resolves "open" once the watch has sent its first snapshot (the server holds a slot for it). */
async function firstMessage(w: OpenWatch): Promise<unknown> {
  while (w.messages.length === 0 && !w.ended) await new Promise((resolve) => setTimeout(resolve, 20));
  return w.messages.length > 0 ? "open" : w.done;
}

function exhausted(err: unknown): { code: number | undefined; errorCode: string | undefined; message: string } {
  return isRpcError(err) ? { code: err.code, errorCode: err.errorCode, message: err.message } : { code: undefined, errorCode: undefined, message: String(err) };
}

describe("WatchPipelineExecution caps", () => {
  it("refuses a caller's watch over WATCH_MAX_PER_PRINCIPAL and any watch over WATCH_MAX_TOTAL, and frees a slot when a watch closes", async () => {
    const name = "watch-capped";
    await clients.ops.createPipeline({ pipeline: threeStagePipeline(name) });
    // The first execution waits for its source job (nobody runs it): it stays InProgress.
    await expect.poll(async () => (await clients.ops.listPipelineExecutions({ pipelineName: name })).pipelineExecutionSummaries.length, { timeout: 10_000 }).toBe(1);
    const executionId = (await clients.ops.listPipelineExecutions({ pipelineName: name })).pipelineExecutionSummaries[0]!.pipelineExecutionId;

    // The viewer opens as many as it may, then one more.
    const mine = [];
    for (let i = 0; i < 3; i++) mine.push(await opened(clients.viewer, name, executionId));
    const over = exhausted(await open(clients.viewer, name, executionId).done);
    expect(over).toMatchObject({ code: GrpcStatus.RESOURCE_EXHAUSTED, errorCode: "LimitExceededException" });
    expect(over.message).toContain("vic already has 3 open WatchPipelineExecution streams");
    expect(over.message).toContain("WATCH_MAX_PER_PRINCIPAL=3");

    // Another caller still gets in, up to the overall cap.
    const theirs = [await opened(clients.approver, name, executionId), await opened(clients.approver, name, executionId)];
    const full = exhausted(await open(clients.ops, name, executionId).done);
    expect(full).toMatchObject({ code: GrpcStatus.RESOURCE_EXHAUSTED, errorCode: "LimitExceededException" });
    expect(full.message).toContain("WATCH_MAX_TOTAL=5");

    // Every open watch is still being served.
    for (const w of [...mine, ...theirs]) expect(w.messages[0]?.snapshot?.pipelineExecution?.pipelineExecutionId).toBe(executionId);

    // Closing one frees its slot for its owner (once the server has seen the cancel).
    mine[0]!.close();
    expect(exhausted(await mine[0]!.done).code).toBe(GrpcStatus.CANCELLED);
    let again: OpenWatch | undefined;
    await expect
      .poll(
        async () => {
          const w = open(clients.viewer, name, executionId);
          const first = await Promise.race([w.done, firstMessage(w)]);
          if (first === "open") again = w;
          return again === undefined ? exhausted(first).code : "served";
        },
        { timeout: 10_000 },
      )
      .toBe("served");

    const rest = [...mine.slice(1), ...theirs, ...(again === undefined ? [] : [again])];
    for (const w of rest) w.close();
    await Promise.all(rest.map((w) => w.done));
  });
});
