import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { MongoClient } from "mongodb";
import { SourceChangedSchema, StateChangeEventSchema } from "@sluice/proto";
import type { SourceChanged } from "@sluice/proto";
// Types inject("servers"), provided by the testkit global setup.
import type {} from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startSourcePoller } from "../src/service.js";
import type { SourcePoller } from "../src/service.js";

const servers = inject("servers");
const prefix = `sp${process.pid}`;
const repo = mkdtempSync(join(tmpdir(), "sluice-poller-repo-"));
const git = (...args: string[]): string => execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();

function commit(file: string): string {
  writeFileSync(join(repo, file), file);
  git("add", "-A");
  git("commit", "-qm", `add ${file}`);
  return git("rev-parse", "HEAD");
}

let bus: Bus;
let mongo: MongoClient;
const cursors = () => mongo.db(`sluice_sources_${prefix}`).collection<{ _id: string; lastRevision: string | null; nextPollAt: number; leaseOwner?: string }>("cursors");
let poller: SourcePoller;
const received: SourceChanged[] = [];

beforeAll(async () => {
  git("init", "-q", "-b", "main");
  commit("a.txt");
  mongo = await MongoClient.connect(servers.mongoUrl);
  bus = await connectBus({ servers: servers.natsUrl, name: "poller-test", logger: noopLogger, prefix });
  await bus.ensureStreams();
  poller = await startSourcePoller(
    {
      natsUrl: servers.natsUrl,
      mongoUrl: servers.mongoUrl,
      mongoDb: `sluice_sources_${prefix}`,
      grpcHost: "127.0.0.1",
      grpcPort: 0,
      authTokens: "dev=admin:dev-token",
      logLevel: "warn",
      shutdownGraceMs: 2000,
      pollIntervalMs: 3_600_000 /* the test drives polls itself */,
      pollTickMs: 3_600_000,
      gitTimeoutMs: 10_000,
      busPrefix: prefix,
    },
    { logger: noopLogger },
  );
  await bus.consume({
    stream: bus.streams.sources,
    durable: "test-sources",
    filterSubject: bus.subjects.streamFilter("sources"),
    schema: SourceChangedSchema,
    handler: (msg) => {
      received.push(msg);
      return Promise.resolve();
    },
  });
  const declaration = {
    name: "web",
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Checkout",
            actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
            configuration: { RepositoryUrl: `file://${repo}`, BranchName: "main" },
            outputArtifacts: [{ name: "Src" }],
          },
        ],
      },
      { name: "Build", actions: [] },
    ],
  };
  const event = create(StateChangeEventSchema, {
    eventId: "decl-web-1",
    detailType: "Sluice Pipeline Declaration Change",
    pipeline: "web",
    state: "CREATED",
    declaration,
  });
  await bus.publish(bus.subjects.eventSubject("web", "declaration"), StateChangeEventSchema, event, { msgId: event.eventId });
});

afterAll(async () => {
  await poller.stop(2000);
  await bus.close();
  await mongo.close();
  rmSync(repo, { recursive: true, force: true });
});

describe("source-poller", () => {
  it("records the current head as a baseline, then publishes each new commit once", async () => {
    const first = git("rev-parse", "HEAD");
    // The declaration arrives asynchronously; the first poll of the new cursor records the baseline.
    await expect
      .poll(async () => {
        await poller.pollNow();
        const cursor = await cursors().findOne({ _id: "web/Checkout" });
        // The lease given back too: the round the declaration event started may still hold it.
        return [cursor?.lastRevision, cursor?.leaseOwner];
      }, { timeout: 15_000 })
      .toEqual([first, ""]);
    expect(received).toHaveLength(0);

    const next = commit("b.txt");
    await cursors().updateOne({ _id: "web/Checkout" }, { $set: { nextPollAt: 0 } });
    expect(await poller.pollNow()).toBe(1);
    await expect.poll(() => received.map((r) => r.revision?.revisionId), { timeout: 15_000 }).toContain(next);
    expect(received[0]?.pipelineName).toBe("web");
    expect(received[0]?.sourceActionName).toBe("Checkout");
    expect(received[0]?.triggerType).toBe("PollForSourceChanges");

    // Polling again without a new commit publishes nothing.
    await cursors().updateOne({ _id: "web/Checkout" }, { $set: { nextPollAt: 0 } });
    expect(await poller.pollNow()).toBe(0);
    expect(received).toHaveLength(1);
  });
});
