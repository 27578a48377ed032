// The poller reads `.sluice/pipeline.json` at each new head of the first Git source's branch
// (from its bare mirror) and sends it with SourceChanged; other source actions send none.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { SourceChangedSchema, StateChangeEventSchema } from "@sluice/proto";
import type { SourceChanged } from "@sluice/proto";
import { MongoClient } from "mongodb";
// Types inject("servers"), provided by the testkit global setup.
import type {} from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { MAX_DEFINITION_BYTES } from "../src/definition-file.js";
import { startSourcePoller } from "../src/service.js";
import type { SourcePoller } from "../src/service.js";

const servers = inject("servers");
const prefix = `spd${process.pid}`;
const repo = mkdtempSync(join(tmpdir(), "sluice-defn-repo-"));
const cache = mkdtempSync(join(tmpdir(), "sluice-defn-cache-"));
const git = (...args: string[]): string => execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();

function commit(file: string, text: string | undefined): string {
  mkdirSync(join(repo, ".sluice"), { recursive: true });
  if (text === undefined) git("rm", "-q", file);
  else writeFileSync(join(repo, file), text);
  git("add", "-A");
  git("commit", "-qm", `change ${file}`);
  return git("rev-parse", "HEAD");
}

let bus: Bus;
let mongo: MongoClient;
let poller: SourcePoller;
const received: SourceChanged[] = [];
const cursors = () => mongo.db(`sluice_sources_${prefix}`).collection<{ _id: string; lastRevision: string | null; leaseOwner?: string }>("cursors");
const dueNow = () => cursors().updateMany({}, { $set: { nextPollAt: 0 } });
const gitSource = (name: string) => ({
  name,
  actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
  configuration: { RepositoryUrl: `file://${repo}`, BranchName: "main" },
  outputArtifacts: [{ name: `${name}Out` }],
});

/** Polls once and returns what that poll published, by action. */
async function poll(): Promise<Map<string, SourceChanged>> {
  const before = received.length;
  await dueNow();
  const count = await poller.pollNow();
  await expect.poll(() => received.length - before, { timeout: 10_000 }).toBe(count);
  return new Map(received.slice(before).map((m) => [m.sourceActionName, m]));
}

beforeAll(async () => {
  git("init", "-q", "-b", "main");
  commit("README.md", "hello");
  mongo = await MongoClient.connect(servers.mongoUrl);
  bus = await connectBus({ servers: servers.natsUrl, name: "poller-defn-test", logger: noopLogger, prefix });
  await bus.ensureStreams();
  poller = await startSourcePoller(
    {
      natsUrl: servers.natsUrl,
      mongoUrl: servers.mongoUrl,
      mongoDb: `sluice_sources_${prefix}`,
      grpcHost: "127.0.0.1",
      grpcPort: 0,
      authTokens: "dev=admin:dev-token-0123456789abcdef",
      logLevel: "warn",
      shutdownGraceMs: 2000,
      pollIntervalMs: 3_600_000 /* the test drives polls itself */,
      pollTickMs: 3_600_000,
      gitTimeoutMs: 10_000,
      gitCacheDir: cache,
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
  const declaration = { name: "defn", stages: [{ name: "Source", actions: [gitSource("App"), gitSource("Tools")] }, { name: "Build", actions: [] }] };
  const event = create(StateChangeEventSchema, { eventId: "decl-defn-1", detailType: "Sluice Pipeline Declaration Change", pipeline: "defn", state: "CREATED", declaration });
  await bus.publish(bus.subjects.eventSubject("defn", "declaration"), StateChangeEventSchema, event, { msgId: event.eventId });
  // The baseline: both cursors at the first commit, every lease given back.
  const first = git("rev-parse", "HEAD");
  await vi.waitFor(
    async () => {
      await dueNow();
      await poller.pollNow();
      const all = await cursors().find({}).toArray();
      const settled = all.filter((c) => c.lastRevision === first && (c.leaseOwner ?? "") === "");
      if (settled.length !== 2) throw new Error("no baseline yet");
    },
    { timeout: 15_000, interval: 100 },
  );
});

afterAll(async () => {
  await poller.stop(2000);
  await bus.close();
  await mongo.close();
  rmSync(repo, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

describe("pipeline definitions in the repository", () => {
  it("sends the file at the new head with the first Git source's change only, and none once it is gone", async () => {
    const text = JSON.stringify({ pipeline: { name: "defn", stages: [] } }, null, 2);
    const added = commit(".sluice/pipeline.json", text);
    const first = await poll();
    expect(first.get("App")?.revision?.revisionId).toBe(added);
    expect(first.get("App")?.definition).toMatchObject({ text, problem: "" });
    expect(first.get("Tools")?.revision?.revisionId).toBe(added);
    expect(first.get("Tools")?.definition).toBeUndefined();

    // A commit that leaves the file as it is still carries it: the orchestrator compares.
    const other = commit("README.md", "changed");
    const second = await poll();
    expect(second.get("App")?.revision?.revisionId).toBe(other);
    expect(second.get("App")?.definition?.text).toBe(text);

    const removed = commit(".sluice/pipeline.json", undefined);
    const third = await poll();
    expect(third.get("App")?.revision?.revisionId).toBe(removed);
    expect(third.get("App")?.definition).toBeUndefined();
  });

  it("sends a file past the size cap as a problem, unread", async () => {
    const huge = commit(".sluice/pipeline.json", " ".repeat(MAX_DEFINITION_BYTES + 1));
    const changes = await poll();
    expect(changes.get("App")?.revision?.revisionId).toBe(huge);
    expect(changes.get("App")?.definition).toMatchObject({ text: "", problem: `.sluice/pipeline.json is ${MAX_DEFINITION_BYTES + 1} bytes; at most ${MAX_DEFINITION_BYTES} are read` });
  });
});
