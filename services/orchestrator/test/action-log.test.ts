// GetActionLog's stream side against a real NATS JetStream: replaying an action's SLUICE_LOGS
// subject, following it while the action runs, and ending when the action ends.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { LogBatchSchema } from "@sluice/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { busLogReader, streamedLogMessages } from "../src/api/action-log.js";
import { isolation } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("alog");
let bus: Bus;

beforeAll(async () => {
  bus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-action-log-test", logger: noopLogger, prefix: iso.prefix });
  await bus.ensureStreams();
});

afterAll(async () => {
  await bus?.close();
});

type BatchInit = MessageInitShape<typeof LogBatchSchema>;

async function publish(actionExecutionId: string, batch: { lines: NonNullable<BatchInit["lines"]>; final?: boolean; stored?: boolean }): Promise<void> {
  await bus.publish(bus.subjects.logSubject("demo", actionExecutionId), LogBatchSchema, { pipelineName: "demo", actionExecutionId, attempt: 1, jobId: `${actionExecutionId}:1`, ...batch }, { msgId: randomUUID() });
}

function lines(...texts: string[]): NonNullable<BatchInit["lines"]> {
  return texts.map((text, i) => ({ sequence: BigInt(i + 1), stream: "stdout", text }));
}

async function collectAll(gen: AsyncIterable<{ lines?: { text?: string }[]; status?: string }>): Promise<{ texts: string[]; statuses: string[] }> {
  const texts: string[] = [];
  const statuses: string[] = [];
  for await (const m of gen) {
    texts.push(...(m.lines ?? []).map((l) => l.text ?? ""));
    statuses.push(m.status ?? "");
  }
  return { texts, statuses };
}

describe("streamedLogMessages", () => {
  it("without follow replays what the subject holds and ends, leaving out an id that only sanitizes the same", async () => {
    const id = `ae-${randomUUID()}`;
    await publish(id, { lines: lines("one", "two") });
    await publish(id, { lines: lines("three") });
    // "ae.x" and "ae_x" share a subject token: the batch names its own action execution.
    await bus.publish(bus.subjects.logSubject("demo", id), LogBatchSchema, { pipelineName: "demo", actionExecutionId: `${id}.other`, lines: lines("not mine") }, { msgId: randomUUID() });
    await publish(id, { lines: lines("four") });
    const got = await collectAll(
      streamedLogMessages({ reader: busLogReader(bus), pipelineName: "demo", actionExecutionId: id, follow: false, status: () => Promise.resolve("InProgress"), signal: new AbortController().signal }),
    );
    expect(got.texts).toEqual(["one", "two", "three", "four"]);
  });

  it("without follow answers one empty message for a subject with nothing on it", async () => {
    const got = await collectAll(
      streamedLogMessages({ reader: busLogReader(bus), pipelineName: "demo", actionExecutionId: `ae-${randomUUID()}`, follow: false, status: () => Promise.resolve("InProgress"), signal: new AbortController().signal }),
    );
    expect(got).toEqual({ texts: [], statuses: ["InProgress"] });
  });

  it("with follow sends batches published after it started, and ends after the final batch once the action ended", async () => {
    const id = `ae-${randomUUID()}`;
    let status = "InProgress";
    await publish(id, { lines: lines("before") });
    const received: string[] = [];
    const follow = (async () => {
      for await (const m of streamedLogMessages({ reader: busLogReader(bus), pipelineName: "demo", actionExecutionId: id, follow: true, status: () => Promise.resolve(status), signal: new AbortController().signal })) {
        received.push(...m.lines!.map((l) => l.text ?? ""));
        if (m.status !== "InProgress") received.push(`status:${m.status}`);
      }
    })();
    await expect.poll(() => received, { timeout: 10_000, interval: 50 }).toEqual(["before"]);
    await publish(id, { lines: lines("while running") });
    await expect.poll(() => received, { timeout: 10_000, interval: 50 }).toEqual(["before", "while running"]);
    await publish(id, { lines: [], final: true, stored: true });
    status = "Succeeded";
    await follow;
    expect(received).toEqual(["before", "while running", "status:Succeeded"]);
  });

  it("with follow ends when the action ended without a final batch (a runner that died)", async () => {
    const id = `ae-${randomUUID()}`;
    let status = "InProgress";
    await publish(id, { lines: lines("last words") });
    const received: string[] = [];
    const follow = (async () => {
      for await (const m of streamedLogMessages({ reader: busLogReader(bus), pipelineName: "demo", actionExecutionId: id, follow: true, status: () => Promise.resolve(status), signal: new AbortController().signal })) {
        received.push(...m.lines!.map((l) => l.text ?? ""));
      }
    })();
    await expect.poll(() => received, { timeout: 10_000, interval: 50 }).toEqual(["last words"]);
    status = "Failed";
    await follow;
    expect(received).toEqual(["last words"]);
  });

  it("with follow stops when the caller goes away", async () => {
    const id = `ae-${randomUUID()}`;
    await publish(id, { lines: lines("only") });
    const controller = new AbortController();
    const received: string[] = [];
    const follow = (async () => {
      for await (const m of streamedLogMessages({ reader: busLogReader(bus), pipelineName: "demo", actionExecutionId: id, follow: true, status: () => Promise.resolve("InProgress"), signal: controller.signal })) {
        received.push(...m.lines!.map((l) => l.text ?? ""));
      }
    })();
    await expect.poll(() => received, { timeout: 10_000, interval: 50 }).toEqual(["only"]);
    controller.abort();
    await follow;
    expect(received).toEqual(["only"]);
  });
});
