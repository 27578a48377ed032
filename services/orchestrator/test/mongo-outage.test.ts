import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { recordingLogger, startTcpRelay } from "@sluice/testkit";
import type { RecordedLine, TcpRelay } from "@sluice/testkit";
import { fromBinary } from "@bufbuild/protobuf";
import { DeadLetterSchema } from "@sluice/proto";
import { isJob, isolation, produced, report, startHarness, threeStagePipeline } from "./helpers.js";
import type { TappedHarness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("mgo");

let relay: TcpRelay;
let harness: TappedHarness | undefined;
const logs: RecordedLine[] = [];

beforeAll(async () => {
  // What an unreachable database looks like to the driver: the link cut, the server still up.
  relay = await startTcpRelay({ host: new URL(servers.mongoUrl).hostname, port: Number(new URL(servers.mongoUrl).port) });
  harness = await startHarness({ ...servers, mongoUrl: `mongodb://127.0.0.1:${relay.port}/` }, iso, {
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

    // The result is applied once the database is back: the build job is dispatched. The wait covers four
    // redeliveries (6.4, 12.8, 25.6 and 30 s): the driver may not have seen the server again by the first,
    // and on a loaded machine the poll above may see the 7th delivery late.
    await tap.next(isJob("outage", "Compile", source.pipelineExecutionId), 90_000);
    const state = await clients.viewer.getPipelineState({ name: "outage" });
    expect(state.stageStates[0]?.latestExecution?.status).toBe("Succeeded");
    const dlq = await bus.jsm.streams.getMessage(bus.streams.dlq, { last_by_subj: bus.subjects.dlqSubject(bus.streams.results) }).catch(() => null);
    expect(dlq === null ? undefined : fromBinary(DeadLetterSchema, dlq.data)).toBeUndefined();
  }, 180_000);
});
