// The poller against real servers with a V2 declaration whose triggers filter changes:
// filePaths (computed from a bare mirror), tags (ls-remote), and a failing remote seen through
// ListSourceStates.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { GrpcStatus, createClient } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { SourceChangedSchema, SourceService, StateChangeEventSchema } from "@sluice/proto";
import type { SourceChanged } from "@sluice/proto";
import { MongoClient } from "mongodb";
// Types inject("servers"), provided by the testkit global setup.
import type {} from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startSourcePoller } from "../src/service.js";
import type { SourcePoller } from "../src/service.js";

const servers = inject("servers");
const prefix = `spt${process.pid}`;
const repo = mkdtempSync(join(tmpdir(), "sluice-trigger-repo-"));
const cache = mkdtempSync(join(tmpdir(), "sluice-trigger-cache-"));
const git = (...args: string[]): string => execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();
const VIEWER = "viewer-token-0123456789abcdef";
const RUNNER = "runner-token-0123456789abcdef";

function commit(file: string): string {
  mkdirSync(dirname(join(repo, file)), { recursive: true });
  writeFileSync(join(repo, file), file);
  git("add", "-A");
  git("commit", "-qm", `add ${file}`);
  return git("rev-parse", "HEAD");
}

let bus: Bus;
let mongo: MongoClient;
let poller: SourcePoller;
let sources: Client<typeof SourceService>;
const received: SourceChanged[] = [];
type Cursor = { _id: string; lastRevision: string | null; knownTags?: string[] | null; lastSkipReason?: string; consecutiveFailures?: number; leaseOwner?: string; lastPolledAt?: number };
const cursors = () => mongo.db(`sluice_sources_${prefix}`).collection<Cursor>("cursors");
const dueNow = () => cursors().updateMany({}, { $set: { nextPollAt: 0 } });
// Stored messages ever (the stream may be a work queue that drops acked ones): dedup skips a sequence number.
const published = async (): Promise<number> => (await bus.jsm.streams.info(bus.streams.sources)).state.last_seq;

const source = (name: string, url: string) => ({
  name,
  actionTypeId: { category: "Source", owner: "AWS", provider: "CodeStarSourceConnection", version: "1" },
  configuration: { RepositoryUrl: url, BranchName: "main" },
  outputArtifacts: [{ name: `${name}Out` }],
});

beforeAll(async () => {
  git("init", "-q", "-b", "main");
  commit("README.md");
  mongo = await MongoClient.connect(servers.mongoUrl);
  bus = await connectBus({ servers: servers.natsUrl, name: "poller-trigger-test", logger: noopLogger, prefix });
  await bus.ensureStreams();
  poller = await startSourcePoller(
    {
      natsUrl: servers.natsUrl,
      mongoUrl: servers.mongoUrl,
      mongoDb: `sluice_sources_${prefix}`,
      grpcHost: "127.0.0.1",
      grpcPort: 0,
      authTokens: `dev=admin:dev-token-0123456789abcdef,reader=viewer:${VIEWER},worker=runner:${RUNNER}`,
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
  sources = createClient(SourceService, `127.0.0.1:${poller.port}`, { token: VIEWER });
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
    pipelineType: "V2",
    stages: [
      {
        name: "Source",
        actions: [source("App", `file://${repo}`), source("Release", `file://${repo}`), source("Broken", "https://bob:s3cret@127.0.0.1:1/nope.git")],
      },
      { name: "Build", actions: [] },
    ],
    triggers: [
      {
        providerType: "CodeStarSourceConnection",
        gitConfiguration: { sourceActionName: "App", push: [{ branches: { includes: ["main", "release/*"] }, filePaths: { includes: ["src/**"], excludes: ["src/**/*.md"] } }] },
      },
      { providerType: "CodeStarSourceConnection", gitConfiguration: { sourceActionName: "Release", push: [{ tags: { includes: ["v*"] } }] } },
    ],
  };
  const event = create(StateChangeEventSchema, { eventId: "decl-web-1", detailType: "Sluice Pipeline Declaration Change", pipeline: "web", state: "CREATED", declaration });
  await bus.publish(bus.subjects.eventSubject("web", "declaration"), StateChangeEventSchema, event, { msgId: event.eventId });
});

afterAll(async () => {
  sources.close();
  await poller.stop(2000);
  await bus.close();
  await mongo.close();
  rmSync(repo, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

describe("source-poller with triggers", () => {
  it("starts nothing for a push outside filePaths (the cursor still advances), publishes a matching one", async () => {
    const first = git("rev-parse", "HEAD");
    await expect
      .poll(async () => {
        await dueNow();
        await poller.pollNow();
        const [app, release] = await Promise.all([cursors().findOne({ _id: "web/App" }), cursors().findOne({ _id: "web/Release" })]);
        // Every lease given back, too: the round the declaration event started may still run.
        const held = await cursors().countDocuments({ $or: [{ leaseOwner: { $ne: "" } }, { lastPolledAt: { $exists: false } }] });
        return [app?.lastRevision, Array.isArray(release?.knownTags), held];
      }, { timeout: 15_000 })
      .toEqual([first, true, 0]);

    const docs = commit("docs/guide.md");
    const readme = commit("src/notes.md");
    await dueNow();
    expect(await poller.pollNow()).toBe(0);
    const app = await cursors().findOne({ _id: "web/App" });
    expect(app?.lastRevision).toBe(readme);
    expect(app?.lastSkipReason).toBe('main: no filter matched: push[0]: no changed file passes filePaths (changed: "docs/guide.md", "src/notes.md")');
    expect((await cursors().findOne({ _id: "web/Release" }))?.lastSkipReason).toBe("the trigger filters no branch pushes");
    expect(docs).not.toBe(readme);
    expect(await published()).toBe(0);

    const code = commit("src/lib/a.ts");
    await dueNow();
    expect(await poller.pollNow()).toBe(1);
    expect(await published()).toBe(1);
    await expect.poll(() => received.map((r) => r.revision?.revisionId), { timeout: 15_000 }).toEqual([code]);
    expect(received[0]?.sourceActionName).toBe("App");
    expect(received[0]?.triggerType).toBe("PollForSourceChanges");
    expect(received[0]?.triggerDetail).toBe(`file://${repo}#main push[0] matched: branch "main" matches "main"; file "src/lib/a.ts" matches "src/**"`);
  });

  it("watches every branch the filters match, not only BranchName", async () => {
    const before = await published();
    git("checkout", "-q", "-b", "feature/x");
    commit("src/feature.ts");
    git("checkout", "-q", "-b", "release/1");
    const release = commit("src/release.ts");
    await dueNow();
    // release/1 is new: nothing to diff with, so filePaths lets it through; feature/x matches no branch filter.
    expect(await poller.pollNow()).toBe(1);
    expect(await published()).toBe(before + 1);
    await expect.poll(() => received.filter((r) => r.revision?.branch === "release/1").map((r) => r.revision?.revisionId), { timeout: 15_000 }).toEqual([release]);
    expect(received.find((r) => r.revision?.branch === "release/1")?.triggerDetail).toMatch(/#release\/1 push\[0\] matched: .*changed paths are not known/);

    commit("docs/release-notes.txt");
    await dueNow();
    expect(await poller.pollNow()).toBe(0);
    expect((await cursors().findOne({ _id: "web/App" }))?.lastSkipReason).toMatch(/^release\/1: no filter matched: .*docs\/release-notes\.txt/);
    git("checkout", "-q", "main");
  });

  it("publishes a new tag's commit when a tag filter matches it, and only that", async () => {
    const before = await published();
    const head = git("rev-parse", "HEAD");
    git("tag", "nightly");
    git("tag", "-a", "v1.0", "-m", "release 1.0");
    await dueNow();
    expect(await poller.pollNow()).toBe(1);
    expect(await published()).toBe(before + 1);
    await expect.poll(() => received.filter((r) => r.sourceActionName === "Release").map((r) => r.revision?.revisionId), { timeout: 15_000 }).toEqual([head]);
    expect(received.find((r) => r.sourceActionName === "Release")?.triggerDetail).toMatch(/#refs\/tags\/v1\.0 push\[0\] matched: tag "v1.0" matches "v\*"/);

    // Seen tags are not published again.
    await dueNow();
    expect(await poller.pollNow()).toBe(0);
    expect(await published()).toBe(before + 1);
  });

  it("backs a failing remote off and shows it in ListSourceStates, credentials removed", async () => {
    const states = await sources.listSourceStates({ pipelineName: "web" });
    expect(states.sourceStates.map((s) => s.actionName)).toEqual(["App", "Broken", "Release"]);
    const broken = states.sourceStates.find((s) => s.actionName === "Broken");
    expect(broken?.consecutiveFailures).toBeGreaterThanOrEqual(1);
    expect(broken?.lastError).toMatch(/git ls-remote(: cannot reach| exited)/);
    expect(broken?.lastError).not.toContain("s3cret");
    expect(broken?.repositoryUrl).toBe("https://127.0.0.1:1/nope.git");
    expect(broken?.lastRevision).toBe("");
    expect(broken?.leaseOwner).toBe("");
    // The wait after n failures in a row is the interval doubled (n-1) times, jittered into its upper half.
    const failures = broken?.consecutiveFailures ?? 0;
    const waitMs = Number(broken?.nextPollAt?.seconds) * 1000 - Number(broken?.lastPolledAt?.seconds) * 1000;
    const ceiling = Math.min(30 * 60_000, 3_600_000 * 2 ** (failures - 1));
    expect(waitMs).toBeGreaterThanOrEqual(ceiling / 2 - 1000);
    expect(waitMs).toBeLessThanOrEqual(ceiling + 1000);

    const app = states.sourceStates.find((s) => s.actionName === "App");
    expect(app).toMatchObject({ consecutiveFailures: 0, lastError: "", hasTrigger: true, branch: "main" });
    const page = await sources.listSourceStates({ pipelineName: "web", maxResults: 2 });
    expect(page.sourceStates).toHaveLength(2);
    const rest = await sources.listSourceStates({ pipelineName: "web", maxResults: 2, nextToken: page.nextToken });
    expect(rest.sourceStates.map((s) => s.actionName)).toEqual(["Release"]);
    expect(rest.nextToken).toBe("");

    // Readers only: a runner's token is refused.
    const runner = createClient(SourceService, `127.0.0.1:${poller.port}`, { token: RUNNER });
    try {
      await expect(runner.listSourceStates({})).rejects.toMatchObject({ code: GrpcStatus.PERMISSION_DENIED });
    } finally {
      runner.close();
    }
  });
});
