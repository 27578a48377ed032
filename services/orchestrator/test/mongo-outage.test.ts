import { Socket, createServer } from "node:net";
import type { Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { fromBinary } from "@bufbuild/protobuf";
import type { Logger } from "@sluice/domain";
import { DeadLetterSchema } from "@sluice/proto";
import { isJob, isolation, produced, report, startHarness, threeStagePipeline } from "./helpers.js";
import type { TappedHarness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("mgo");

/**
 * A TCP relay in front of the real MongoDB-compatible server that can be cut: `down()` drops
 * every connection and refuses new ones (what an unreachable database looks like to the driver),
 * `up()` lets them through again.
 */
interface Relay {
  readonly url: string;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

async function startRelay(target: URL): Promise<Relay> {
  let open = true;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = new Socket();
    upstream.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("relay: no port");
  return {
    url: `mongodb://127.0.0.1:${address.port}/`,
    down() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    up() {
      open = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Keeps the warnings of every child logger (the bus logs each redelivery with its count). */
function recordingLogger(into: { msg: string; fields: Record<string, unknown> }[], base: Record<string, unknown> = {}): Logger {
  const keep = (msg: string, fields?: Record<string, unknown>): void => void into.push({ msg, fields: { ...base, ...fields } });
  return { debug: () => undefined, info: () => undefined, warn: keep, error: keep, child: (fields) => recordingLogger(into, { ...base, ...fields }) };
}

let relay: Relay;
let harness: TappedHarness | undefined;
const logs: { msg: string; fields: Record<string, unknown> }[] = [];

beforeAll(async () => {
  relay = await startRelay(new URL(servers.mongoUrl));
  harness = await startHarness({ ...servers, mongoUrl: relay.url }, iso, {
    name: "orchestrator-mongo-outage-test",
    tapJobs: true,
    deps: { logger: recordingLogger(logs), mongoServerSelectionTimeoutMs: 300 },
  });
});

afterAll(async () => {
  relay.up();
  await harness?.stop();
  await relay.close();
});

describe("a MongoDB outage", () => {
  it("holds a result through more failed deliveries than max_deliver, then applies it; nothing is dead-lettered", async () => {
    const { clients, bus, tap } = harness!;
    await clients.ops.createPipeline({ pipeline: threeStagePipeline("outage") });
    const source = await tap.next(isJob("outage", "Checkout"));

    relay.down();
    await report(bus, source, { outputArtifacts: produced(source, "Src"), revision: { revisionId: "c0ffee", branch: "main" } });
    // The default limit is 5 deliveries; wait until the result has failed more often than that.
    await expect
      .poll(
        () =>
          Math.max(0, ...logs.filter((l) => l.fields["durable"] === "orchestrator-results" && l.msg.includes("transient")).map((l) => Number(l.fields["deliveryCount"]))),
        { timeout: 60_000, interval: 200 },
      )
      .toBeGreaterThanOrEqual(7);
    relay.up();

    // The result is applied once the database is back: the build job is dispatched.
    await tap.next(isJob("outage", "Compile", source.pipelineExecutionId));
    const state = await clients.viewer.getPipelineState({ name: "outage" });
    expect(state.stageStates[0]?.latestExecution?.status).toBe("Succeeded");
    const dlq = await bus.jsm.streams.getMessage(bus.streams.dlq, { last_by_subj: bus.subjects.dlqSubject(bus.streams.results) }).catch(() => null);
    expect(dlq === null ? undefined : fromBinary(DeadLetterSchema, dlq.data)).toBeUndefined();
  });
});
