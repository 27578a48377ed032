/**
 * How long from a commit to its pipeline's first action? And what does polling many sources
 * cost? Real nats-server and MongoDB; the orchestrator and source poller in this process, and a
 * tap on SLUICE_JOBS standing in for the runners ("first action started" = the source job of
 * the commit's execution reaches the tap).
 *
 *   1. via webhook: commit, then POST a signed GitHub push to /hooks/github;
 *   2. via polling: commit at a random moment of the poll interval;
 *   3. CPU of one source-poller process (with its git children) over many polled sources.
 *
 *   npm run bench            (servers and build handled by scripts/bench.mjs)
 */
import { execFileSync, spawn } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { createSluiceClient } from "@sluice/client";
import { noopLogger } from "@sluice/domain";
import { runnerJobsFilter } from "@sluice/orchestrator";
import { startBenchOrchestrator } from "./bench-orchestrator.js";
import { JobSchema } from "@sluice/proto";
import { loadSourcePollerConfig, startSourcePoller } from "@sluice/source-poller";
import { startGitHttpServer, startServers } from "@sluice/testkit";

const WEBHOOK_SAMPLES = Number(process.env["BENCH_WEBHOOK_SAMPLES"] ?? 40);
const POLL_SAMPLES = Number(process.env["BENCH_POLL_SAMPLES"] ?? 20);
const POLL_INTERVAL_MS = Number(process.env["BENCH_POLL_INTERVAL_MS"] ?? 2000);
const CPU_SOURCES = Number(process.env["BENCH_POLL_SOURCES"] ?? 1000);
const CPU_INTERVAL_MS = Number(process.env["BENCH_POLL_SOURCES_INTERVAL_MS"] ?? 30_000);
const CPU_WINDOW_MS = Number(process.env["BENCH_POLL_CPU_WINDOW_MS"] ?? 90_000);
const SECRET = "bench-webhook-secret-0123456789abcdef";
const TOKEN = "bench-token-0123456789abcdef0123456789";

function quantiles(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return `n=${s.length} p50=${q(0.5).toFixed(1)} ms  p90=${q(0.9).toFixed(1)} ms  p99=${q(0.99).toFixed(1)} ms  max=${(s.at(-1) ?? NaN).toFixed(1)} ms`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A `file://` repository on branch main with one commit. */
function makeRepo(root: string, name: string): { url: string; commit: (text: string) => string } {
  const dir = join(root, name);
  const git = (...args: string[]): string => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8" }).trim();
  execFileSync("git", ["init", "-q", "-b", "main", dir]);
  git("config", "user.email", "bench@sluice");
  git("config", "user.name", "bench");
  const commit = (text: string): string => {
    writeFileSync(join(dir, "file.txt"), text);
    git("add", "-A");
    git("commit", "-qm", text);
    return git("rev-parse", "HEAD");
  };
  commit("first");
  return { url: `file://${dir}`, commit };
}

function pipeline(name: string, repoUrl: string, poll: boolean): unknown {
  return {
    name,
    pipelineType: "V2",
    // Each execution on its own: no sample waits behind an earlier one's unanswered source job.
    executionMode: "PARALLEL",
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Checkout",
            actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
            configuration: { RepositoryUrl: repoUrl, BranchName: "main", PollForSourceChanges: poll ? "true" : "false" },
            outputArtifacts: [{ name: "Src" }],
          },
        ],
      },
      { name: "Build", actions: [{ name: "Make", actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" }, commands: ["true"], inputArtifacts: [{ name: "Src" }] }] },
    ],
  };
}

/** Resolves when a source job for `revision` reaches the tap. */
function jobTap(): { waitFor: (revision: string) => Promise<number>; seen: (revision: string, at: number) => void } {
  const waiting = new Map<string, (at: number) => void>();
  const early = new Map<string, number>();
  return {
    waitFor: (revision) => {
      const at = early.get(revision);
      if (at !== undefined) return Promise.resolve(at);
      return new Promise((resolve) => waiting.set(revision, resolve));
    },
    seen: (revision, at) => {
      const resolve = waiting.get(revision);
      if (resolve === undefined) early.set(revision, at);
      else resolve(at);
    },
  };
}

function githubPush(repoUrl: string, commit: string): string {
  return JSON.stringify({
    ref: "refs/heads/main",
    before: "0".repeat(39) + "1",
    after: commit,
    repository: { clone_url: repoUrl, html_url: repoUrl },
    head_commit: { id: commit, message: "bench" },
    commits: [{ id: commit, added: [], modified: ["file.txt"], removed: [] }],
  });
}

async function latencies(bus: Bus, root: string, natsUrl: string, mongoUrl: string, prefix: string): Promise<void> {
  const orchestrator = await startBenchOrchestrator({ natsUrl, mongoUrl, prefix, token: TOKEN });
  const poller = await startSourcePoller(
    loadSourcePollerConfig({
      NATS_URL: natsUrl,
      MONGO_URL: mongoUrl,
      MONGO_DB: `${prefix}_sources`,
      SLUICE_AUTH_TOKENS: `bench=admin:${TOKEN}`,
      SLUICE_BUS_PREFIX: prefix,
      SLUICE_DEV_MODE: "true",
      POLL_INTERVAL_MS: String(POLL_INTERVAL_MS),
      WEBHOOK_GITHUB_SECRET: SECRET,
      PATH: process.env["PATH"],
    }),
    { logger: noopLogger },
  );
  const tap = jobTap();
  const consumer = await bus.consume({
    stream: bus.streams.jobs,
    durable: "bench-tap",
    filterSubject: runnerJobsFilter(bus),
    schema: JobSchema,
    concurrency: 8,
    handler: (job) => {
      if (job.sourceRevision !== "") tap.seen(job.sourceRevision, performance.now());
      return Promise.resolve();
    },
  });
  const client = createSluiceClient({ address: `127.0.0.1:${orchestrator.port}`, token: TOKEN });
  try {
    // 1. Webhooks: one pipeline per sample, so every sample's execution starts at once.
    const hooked = Array.from({ length: WEBHOOK_SAMPLES }, (_, i) => ({ name: `hook-${i}`, repo: makeRepo(root, `hook-${i}`) }));
    for (const p of hooked) await client.pipelines.createPipeline({ pipeline: pipeline(p.name, p.repo.url, false) as never });
    await sleep(2000); // the poller learns the source actions from the declaration events
    const viaWebhook: number[] = [];
    for (const [i, p] of hooked.entries()) {
      const commit = p.repo.commit(`webhook ${i}`);
      const body = githubPush(p.repo.url, commit);
      const t0 = performance.now();
      const res = await fetch(`${poller.webhookBaseUrl}/hooks/github`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-github-event": "push",
          "x-github-delivery": randomUUID(),
          "x-hub-signature-256": `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`,
        },
        body,
      });
      if (!res.ok && res.status !== 202) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
      viaWebhook.push((await tap.waitFor(commit)) - t0);
    }
    console.log(`commit → first action, via webhook      ${quantiles(viaWebhook)}  (goal p50 ≤ 100 ms)`);

    // 2. Polling: commits at random moments of the interval.
    const polled = Array.from({ length: POLL_SAMPLES }, (_, i) => ({ name: `poll-${i}`, repo: makeRepo(root, `poll-${i}`) }));
    for (const p of polled) await client.pipelines.createPipeline({ pipeline: pipeline(p.name, p.repo.url, true) as never });
    await sleep(POLL_INTERVAL_MS * 2); // baselines recorded
    const viaPolling: number[] = [];
    for (const [i, p] of polled.entries()) {
      await sleep(Math.random() * POLL_INTERVAL_MS);
      const t0 = performance.now();
      const commit = p.repo.commit(`poll ${i}`);
      viaPolling.push((await tap.waitFor(commit)) - t0);
    }
    console.log(`commit → first action, via polling      ${quantiles(viaPolling)}  (interval ${POLL_INTERVAL_MS} ms; goal max ≤ interval + 50 ms)`);
  } finally {
    client.close();
    await consumer.stop();
    await poller.stop(5000);
    await orchestrator.stop(5000);
  }
}

/** CPU seconds (user + system) of a process itself and of its waited-for children (git), from /proc/<pid>/stat. */
function cpuSeconds(pid: number): { own: number; children: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime, stime, cutime, cstime are fields 14-17 of stat(5); here indexes 11-14 after "(comm) ".
  const at = (i: number): number => Number(fields[i]) / 100;
  return { own: at(11) + at(12), children: at(13) + at(14) };
}

async function pollingCpu(bus: Bus, root: string, natsUrl: string, mongoUrl: string, prefix: string): Promise<void> {
  const manyRoot = join(root, "many");
  const repos = Array.from({ length: CPU_SOURCES }, (_, i) => makeRepo(manyRoot, `many-${i}`));
  // Served over smart HTTP (git http-backend, in this process), as a Git host serves them.
  const http = await startGitHttpServer(manyRoot);
  const main = join(import.meta.dirname, "..", "..", "services", "source-poller", "dist", "main.js");
  const child = spawn(process.execPath, [main], {
    env: {
      PATH: process.env["PATH"],
      NATS_URL: natsUrl,
      MONGO_URL: mongoUrl,
      MONGO_DB: `${prefix}_many`,
      SLUICE_AUTH_TOKENS: `bench=admin:${TOKEN}`,
      SLUICE_BUS_PREFIX: `${prefix}m`,
      SLUICE_DEV_MODE: "true",
      POLL_INTERVAL_MS: String(CPU_INTERVAL_MS),
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    const manyBus = await connectBus({ servers: natsUrl, name: "bench-many", logger: noopLogger, prefix: `${prefix}m` });
    await manyBus.ensureStreams();
    await sleep(3000);
    // Declaration events are how the poller learns its sources (the orchestrator's part is not measured here).
    const { create } = await import("@bufbuild/protobuf");
    const { PipelineDeclarationSchema, StateChangeEventSchema } = await import("@sluice/proto");
    const { fromJson } = await import("@bufbuild/protobuf");
    for (const [i, repo] of repos.entries()) {
      void repo;
      const declaration = fromJson(PipelineDeclarationSchema, pipeline(`many-${i}`, `${http.url}/many-${i}/.git`, true) as never);
      await manyBus.publish(manyBus.subjects.eventSubject(`many-${i}`, "declaration"), StateChangeEventSchema, create(StateChangeEventSchema, { eventId: randomUUID(), detailType: "Sluice Pipeline Declaration Change", pipeline: `many-${i}`, state: "CREATED", declaration }), { msgId: randomUUID() });
    }
    // Let every baseline be recorded, then measure whole intervals.
    await sleep(CPU_INTERVAL_MS + 5000);
    const r0 = http.requests();
    const c0 = cpuSeconds(child.pid!);
    const t0 = performance.now();
    await sleep(CPU_WINDOW_MS);
    const c1 = cpuSeconds(child.pid!);
    const polls = http.requests() - r0;
    const wall = (performance.now() - t0) / 1000;
    const pct = (seconds: number): string => `${((100 * seconds) / wall).toFixed(1)}%`;
    const own = c1.own - c0.own;
    const children = c1.children - c0.children;
    console.log(
      `source poller CPU, ${CPU_SOURCES} sources every ${CPU_INTERVAL_MS / 1000} s   ${pct(own + children)} of one core over ${wall.toFixed(0)} s (the poller ${pct(own)}, its git processes ${pct(children)}; ${(polls / wall).toFixed(1)} polls/s; goal < 10%)`,
    );
    const wanted = (CPU_SOURCES * 1000) / CPU_INTERVAL_MS;
    if (polls / wall < 0.9 * wanted) {
      // Then the figure is of fewer polls than asked: the git server here (git http-backend, one
      // process per request) or the poller could not keep the pace.
      console.log(`  (only ${(polls / wall).toFixed(1)} of the ${wanted.toFixed(1)} polls/s the sources ask for were made; per poll/s the poller used ${((100 * (own + children)) / wall / (polls / wall)).toFixed(2)}% of a core)`);
    }
    await manyBus.close();
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    await http.stop();
  }
  void bus;
}

async function main(): Promise<void> {
  const servers = await startServers();
  const prefix = `tbench${process.pid}`;
  const root = mkdtempSync(join(tmpdir(), "sluice-bench-triggers-"));
  const bus = await connectBus({ servers: servers.natsUrl, name: "bench", logger: noopLogger, prefix });
  await bus.ensureStreams();
  try {
    await latencies(bus, root, servers.natsUrl, servers.mongoUrl, prefix);
    await pollingCpu(bus, root, servers.natsUrl, servers.mongoUrl, prefix);
  } finally {
    await bus.close();
    await servers.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
