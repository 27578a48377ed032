// Several replicas on one FerretDB: leases keep any source from being polled by two at once, a
// crashed replica's sources are taken over once its lease runs out, and a revision is
// published once however many replicas see it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { gitHostEnv } from "@sluice/service-kit";
import { MongoClient } from "mongodb";
// Types inject("servers"), provided by the testkit global setup.
import type {} from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CursorStore } from "../src/cursor-store.js";
import { createGitMirrors } from "../src/git-mirror.js";
import { pollOnce } from "../src/poller.js";
import type { PollerOptions } from "../src/poller.js";

const servers = inject("servers");
const prefix = `spl${process.pid}`;
const dbName = `sluice_sources_${prefix}`;
const repo = mkdtempSync(join(tmpdir(), "sluice-lease-repo-"));
const cache = mkdtempSync(join(tmpdir(), "sluice-lease-cache-"));
const git = (...args: string[]): string => execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();
const LEASE_MS = 60_000;
const INTERVAL_MS = 10_000;

function commit(file: string): string {
  writeFileSync(join(repo, file), file);
  git("add", "-A");
  git("commit", "-qm", `add ${file}`);
  return git("rev-parse", "HEAD");
}

// Each replica has its own MongoDB connection, as separate processes would.
let mongoA: MongoClient;
let mongoB: MongoClient;
let storeA: CursorStore;
let storeB: CursorStore;
let bus: Bus;
const published = async (): Promise<number> => (await bus.jsm.streams.info(bus.streams.sources)).state.last_seq;

function replica(store: CursorStore, owner: string, now: number): PollerOptions {
  const hostEnv = gitHostEnv(process.env);
  return {
    store,
    bus,
    logger: noopLogger,
    intervalMs: INTERVAL_MS,
    gitTimeoutMs: 10_000,
    gitHostEnv: hostEnv,
    owner,
    leaseMs: LEASE_MS,
    mirrors: createGitMirrors(cache, { timeoutMs: 10_000, hostEnv }),
    now: () => now,
  };
}

beforeAll(async () => {
  git("init", "-q", "-b", "main");
  commit("a.txt");
  mongoA = await MongoClient.connect(servers.mongoUrl);
  mongoB = await MongoClient.connect(servers.mongoUrl);
  storeA = new CursorStore(mongoA.db(dbName));
  storeB = new CursorStore(mongoB.db(dbName));
  await storeA.ensureIndexes();
  bus = await connectBus({ servers: servers.natsUrl, name: "poller-lease-test", logger: noopLogger, prefix });
  await bus.ensureStreams();
});

afterAll(async () => {
  await bus.close();
  await mongoA.close();
  await mongoB.close();
  rmSync(repo, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

describe("leased cursors", () => {
  it("two replicas racing claim disjoint sets that cover every due source; a crashed one's lease expires", async () => {
    const sources = Array.from({ length: 12 }, (_, i) => ({ actionName: `a${String(i).padStart(2, "0")}`, repositoryUrl: "file:///unused", branch: "main", trigger: null }));
    await storeA.syncPipeline("fleet", sources, 1_000);
    const t = 2_000;
    const [a, b] = await Promise.all([storeA.claimDue(t, "A", LEASE_MS, 100), storeB.claimDue(t, "B", LEASE_MS, 100)]);
    const idsA = a.map((c) => c._id);
    const idsB = b.map((c) => c._id);
    expect(idsA.filter((id) => idsB.includes(id))).toEqual([]);
    expect([...idsA, ...idsB].sort()).toEqual(sources.map((s) => `fleet/${s.actionName}`));
    expect(a.every((c) => c.leaseOwner === "A" && c.leaseUntil === t + LEASE_MS)).toBe(true);

    // B finishes its polls; A dies holding its leases. Nothing is free before A's lease runs out...
    for (const c of b) await storeB.release(c, t, { ok: true, nextPollAt: t + 10 * LEASE_MS });
    expect(await storeB.claimDue(t + LEASE_MS - 1, "B", LEASE_MS, 100)).toEqual([]);
    // ...and right after it, B takes over exactly A's sources.
    const takeover = await storeB.claimDue(t + LEASE_MS, "B", LEASE_MS, 100);
    expect(takeover.map((c) => c._id).sort()).toEqual([...idsA].sort());
    // A, back from the dead, can no longer move or give back what B holds.
    const [stale] = a;
    if (stale === undefined) throw new Error("A claimed nothing");
    expect(await storeA.stillHeld(stale)).toBe(false);
    expect(await storeA.advance(stale, null, "f".repeat(40))).toBe(false);
    await storeA.release(stale, t, { ok: true, nextPollAt: 0 });
    expect(await storeB.get(stale._id)).toMatchObject({ leaseOwner: "B", lastRevision: null, nextPollAt: 1_000 });
    await storeA.removePipeline("fleet");
  });

  it("three replicas racing round after round never hold one cursor at once", async () => {
    const mongoC = await MongoClient.connect(servers.mongoUrl);
    try {
      const stores = [storeA, storeB, new CursorStore(mongoC.db(dbName))];
      const sources = Array.from({ length: 20 }, (_, i) => ({ actionName: `s${String(i).padStart(2, "0")}`, repositoryUrl: "file:///unused", branch: "main", trigger: null }));
      await storeA.syncPipeline("race", sources, 0);
      for (let round = 0; round < 5; round++) {
        const t = 10 + round * 10;
        const held = await Promise.all(stores.map((store, i) => store.claimDue(t, `R${i}`, LEASE_MS, 100)));
        const ids = held.flat().map((c) => c._id).filter((id) => id.startsWith("race/"));
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.sort()).toEqual(sources.map((s) => `race/${s.actionName}`));
        // Everyone gives back what it polled, due again next round.
        await Promise.all(held.map((list, i) => Promise.all(list.map((c) => (stores[i] as CursorStore).release(c, t, { ok: true, nextPollAt: t + 5 })))));
      }
    } finally {
      await storeA.removePipeline("race");
      await mongoC.close();
    }
  });

  it("publishes a revision once though both replicas poll it, and a killed replica's source is polled after its lease", async () => {
    const base = commit("b.txt");
    await storeA.syncPipeline("web", [{ actionName: "Checkout", repositoryUrl: `file://${repo}`, branch: "main", trigger: null }], 0);
    expect(await pollOnce(replica(storeA, "A", 1))).toBe(0);
    expect((await storeA.get("web/Checkout"))?.lastRevision).toBe(base);
    const start = await published();

    // Both replicas see the cursor due at the same moment; one gets it.
    const next = commit("c.txt");
    const due = 1 + INTERVAL_MS;
    const counts = await Promise.all([pollOnce(replica(storeA, "A", due)), pollOnce(replica(storeB, "B", due))]);
    expect(counts.sort()).toEqual([0, 1]);
    expect(await published()).toBe(start + 1);
    expect((await storeA.get("web/Checkout"))?.lastRevision).toBe(next);

    // A crash between publishing and moving the cursor: the next holder publishes again, and the
    // message id (pipeline:action:revision) keeps the stream at one message for the revision.
    await mongoA.db(dbName).collection("cursors").updateOne({ _id: "web/Checkout" as never }, { $set: { lastRevision: base } });
    const later = due + INTERVAL_MS;
    expect(await pollOnce(replica(storeB, "B", later))).toBe(1);
    expect(await published()).toBe(start + 1);

    // A claims and is killed before polling; B cannot poll it until A's lease has run out.
    const last = commit("d.txt");
    const t = later + INTERVAL_MS;
    expect((await storeA.claimDue(t, "A", LEASE_MS, 100)).map((c) => c._id)).toEqual(["web/Checkout"]);
    expect(await pollOnce(replica(storeB, "B", t + 1))).toBe(0);
    expect(await pollOnce(replica(storeB, "B", t + LEASE_MS))).toBe(1);
    expect(await published()).toBe(start + 2);
    const cursor = await storeB.get("web/Checkout");
    expect(cursor).toMatchObject({ lastRevision: last, leaseOwner: "", leaseUntil: 0, nextPollAt: t + LEASE_MS + INTERVAL_MS, consecutiveFailures: 0 });
  });

  it("a failing remote backs off exponentially, and a success resets it", async () => {
    await storeA.syncPipeline("bad", [{ actionName: "Checkout", repositoryUrl: `file://${repo}-missing`, branch: "main", trigger: null }], 0);
    let t = 100;
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      await pollOnce(replica(storeA, "A", t));
      const c = await storeA.get("bad/Checkout");
      expect(c?.consecutiveFailures).toBe(i + 1);
      expect(c?.lastError).toMatch(/git ls-remote exited/);
      waits.push((c?.nextPollAt ?? 0) - t);
      t = c?.nextPollAt ?? 0;
    }
    waits.forEach((w, i) => {
      expect(w).toBeGreaterThanOrEqual((INTERVAL_MS * 2 ** i) / 2);
      expect(w).toBeLessThanOrEqual(INTERVAL_MS * 2 ** i);
    });
    await mongoA.db(dbName).collection("cursors").updateOne({ _id: "bad/Checkout" as never }, { $set: { repositoryUrl: `file://${repo}` } });
    await pollOnce(replica(storeA, "A", t));
    const ok = await storeA.get("bad/Checkout");
    expect(ok?.consecutiveFailures).toBe(0);
    expect(ok?.lastError).toBeUndefined();
    expect(ok?.nextPollAt).toBe(t + INTERVAL_MS);
  });
});
