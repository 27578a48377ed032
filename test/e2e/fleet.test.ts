// A fleet of runners as real processes, next to a whole cluster (whose own runner serves a pool no
// pipeline here uses). Each Commands action appends to a ledger file: who started it, who finished
// it. Checked: a job for a pool with no runner shows queued until a runner starts it; a runner
// drained with SIGTERM hands its job back and another runner takes it at once, long before the
// lease; with runners killed (SIGKILL) and paused past their lease (SIGSTOP, then SIGCONT), every
// action completes exactly once and the paused runner's late result is refused as stale.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launch, startCluster } from "@sluice/testkit";
import type { ManagedProcess } from "@sluice/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { E2E_DEPLOY_BUCKETS, REPO_ROOT, bucketName, logEntries, makeGitRepo, suffix, useCluster } from "./helpers.js";
import type { E2eEnv } from "./helpers.js";

const env: E2eEnv = useCluster("fleet", {
  start: (setup) =>
    startCluster({
      servers: setup.servers,
      repoRoot: REPO_ROOT,
      busPrefix: setup.busPrefix,
      mongoDbPrefix: setup.mongoDbPrefix,
      logDir: setup.logDir,
      stopGraceMs: 10_000,
      deployBuckets: E2E_DEPLOY_BUCKETS,
      // The cluster's runner stays out of the way: the fleet below runs every job.
      serviceEnv: { "action-runner": { RUNNER_POOLS: "spare" } },
    }),
});

const runners: ManagedProcess[] = [];

afterAll(async () => {
  for (const r of runners) if (r.pid !== undefined && !r.hasExited()) process.kill(r.pid, "SIGCONT");
  await Promise.all(runners.map((r) => r.stop(5_000)));
});

/** Starts an action-runner process; resolves once it consumes its pools. */
async function spawnRunner(id: string, pools: string, extra: Record<string, string> = {}): Promise<ManagedProcess> {
  const logFile = join(env.logDir, `${id}.log`);
  const proc = launch(id, process.execPath, [join(REPO_ROOT, "services", "action-runner", "dist", "main.js")], {
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: process.env["HOME"] ?? "/tmp",
      NATS_URL: env.servers.natsUrl,
      SLUICE_BUS_PREFIX: env.busPrefix,
      ARTIFACT_ADDR: env.cluster.addresses.artifact,
      SLUICE_SERVICE_TOKEN: env.cluster.tokens.runner,
      SLUICE_DEV_MODE: "true",
      GRPC_HOST: "127.0.0.1",
      GRPC_PORT: "0",
      RUNNER_ID: id,
      RUNNER_POOLS: pools,
      RUNNER_CONCURRENCY: "1",
      WORKSPACE_ROOT: env.tempDir(`ws-${id}`),
      LOG_LEVEL: "info",
      ...extra,
    },
    logFile,
  });
  runners.push(proc);
  await expect
    .poll(() => {
      if (proc.hasExited()) throw new Error(`runner ${id} exited: ${proc.outputTail()}`);
      return existsSync(logFile) && readFileSync(logFile, "utf8").includes('"action-runner started"');
    }, { timeout: 30_000, interval: 100 })
    .toBe(true);
  return proc;
}

/** A Commands action that records its start and end in the ledger (one line each, with the runner's id). */
function ledgerAction(name: string, pool: string, ledger: string, body: string): Record<string, unknown> {
  return {
    name,
    actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
    configuration: { RunnerPool: pool },
    commands: [`echo "start $SLUICE_ACTION_NAME $SLUICE_RUNNER_ID" >> ${ledger}`, body, `echo "end $SLUICE_ACTION_NAME $SLUICE_RUNNER_ID" >> ${ledger}`],
    inputArtifacts: [{ name: "SourceOutput" }],
  };
}

/** Creates a pipeline Source (Git, pool default) → Build (the given actions, in parallel). */
async function createFleetPipeline(name: string, actions: Record<string, unknown>[]): Promise<void> {
  const repo = makeGitRepo(env, { "README.md": "fleet\n" }, "fleet test");
  await env.sluice.pipelines.createPipeline({
    pipeline: {
      name,
      roleArn: "arn:aws:iam::123456789012:role/sluice-e2e",
      artifactStore: { type: "S3", location: bucketName("artifacts") },
      stages: [
        {
          name: "Source",
          actions: [
            {
              name: "Checkout",
              actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
              configuration: { RepositoryUrl: repo.url, BranchName: "main" },
              outputArtifacts: [{ name: "SourceOutput" }],
            },
          ],
        },
        { name: "Build", actions },
      ],
    },
  });
}

/** The ledger's lines as [event, action, runner]. */
function ledgerLines(ledger: string): [string, string, string][] {
  if (!existsSync(ledger)) return [];
  return readFileSync(ledger, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split(" ") as [string, string, string]);
}

async function buildActions(name: string) {
  const state = await env.sluice.pipelines.getPipelineState({ name });
  return state.stageStates.find((s) => s.stageName === "Build")?.actionStates ?? [];
}

describe("runner fleet", () => {
  it("shows a job queued until its pool's runner starts it, and a drained runner's job is taken by another at once", async () => {
    const name = `drain-${suffix()}`;
    const ledger = join(env.tempDir("drain-ledger"), "ledger");
    // Runs forever on the first runner; returns at once on any other.
    const body = `if [ "$SLUICE_RUNNER_ID" = drain-a ]; then sleep 300; fi`;
    // Source checkouts run on the default pool.
    await spawnRunner("fleet-default", "default");
    await createFleetPipeline(name, [ledgerAction("Long", "drain", ledger, body)]);

    // No runner of pool `drain` yet: the job waits, visibly.
    await expect.poll(async () => (await buildActions(name))[0]?.latestExecution?.queued?.pool, { timeout: 30_000 }).toBe("drain");
    const queued = (await buildActions(name))[0]?.latestExecution;
    expect(queued?.status).toBe("InProgress");
    expect(queued?.summary).toMatch(/^Queued since .* in runner pool drain/);

    // A 60 s lease: a job that waited for it would not finish within this test's polls.
    const lease = { RUNNER_ACK_WAIT_MS: "60000", SHUTDOWN_GRACE_MS: "2000" };
    const a = await spawnRunner("drain-a", "drain", lease);
    await expect.poll(() => ledgerLines(ledger), { timeout: 20_000 }).toEqual([["start", "Long", "drain-a"]]);
    await expect.poll(async () => (await buildActions(name))[0]?.latestExecution?.lastUpdatedBy, { timeout: 10_000 }).toBe("drain-a");
    const started = (await buildActions(name))[0]?.latestExecution;
    expect(started?.queued).toBeUndefined();
    expect(started?.startedAt).toBeDefined();

    await spawnRunner("drain-b", "drain", lease);
    // SIGTERM: drain-a stops pulling, its job outlasts the 2 s grace and is handed back (nak).
    await a.stop(15_000);
    expect(await a.exited).toBe(0);
    // drain-b takes the handed-back job at once: done long before the 60 s lease could run out.
    await expect.poll(async () => (await buildActions(name))[0]?.latestExecution?.status, { timeout: 20_000 }).toBe("Succeeded");
    expect((await buildActions(name))[0]?.latestExecution?.lastUpdatedBy).toBe("drain-b");
    expect(ledgerLines(ledger)).toEqual([
      ["start", "Long", "drain-a"],
      ["start", "Long", "drain-b"],
      ["end", "Long", "drain-b"],
    ]);
  }, 120_000);

  it("completes every action exactly once with runners killed and paused past their lease, refusing the paused runner's stale result", async () => {
    const name = `chaos-${suffix()}`;
    const ledger = join(env.tempDir("chaos-ledger"), "ledger");
    // Short leases, so the killed and paused runners' jobs come back soon. The paused runner does
    // not check its own lease: it publishes its late result, which the orchestrator must refuse.
    const lease = { RUNNER_ACK_WAIT_MS: "3000" };
    const killed = await spawnRunner("chaos-kill", "gpu", lease);
    const paused = await spawnRunner("chaos-pause", "gpu", { ...lease, RUNNER_LEASE_SELF_CHECK: "false" });
    await spawnRunner("chaos-steady", "default,gpu", lease);
    const gpu = ["G1", "G2", "G3", "G4"];
    const cpu = ["C1", "C2"];
    await createFleetPipeline(name, [...gpu.map((a) => ledgerAction(a, "gpu", ledger, "sleep 2")), ...cpu.map((a) => ledgerAction(a, "default", ledger, "sleep 1"))]);

    // Six jobs for three single-slot runners: the two gpu-only runners each take a gpu job.
    const startedBy = (runner: string) => ledgerLines(ledger).find(([event, , by]) => event === "start" && by === runner)?.[1];
    await expect.poll(() => [startedBy("chaos-kill"), startedBy("chaos-pause")].every((a) => a !== undefined), { timeout: 30_000 }).toBe(true);
    const killedAction = startedBy("chaos-kill") as string;
    const pausedAction = startedBy("chaos-pause") as string;
    process.kill(killed.pid as number, "SIGKILL");
    process.kill(paused.pid as number, "SIGSTOP");
    try {
      // Past the lease the paused runner's job goes to another runner, which reports it started.
      await expect
        .poll(() => ledgerLines(ledger).some(([event, action, by]) => event === "start" && action === pausedAction && by !== "chaos-pause"), { timeout: 40_000 })
        .toBe(true);
      // The paused runner's own run has long finished (its job's processes were not paused).
      await expect.poll(() => ledgerLines(ledger).some(([event, action, by]) => event === "end" && action === pausedAction && by === "chaos-pause"), { timeout: 10_000 }).toBe(true);
    } finally {
      process.kill(paused.pid as number, "SIGCONT");
    }

    await expect
      .poll(async () => (await buildActions(name)).map((a) => [a.actionName, a.latestExecution?.status]), { timeout: 45_000 })
      .toEqual([...gpu, ...cpu].map((a) => [a, "Succeeded"]));
    const actions = await buildActions(name);
    const ledgerNow = ledgerLines(ledger);
    for (const action of [...gpu, ...cpu]) {
      const run = actions.find((a) => a.actionName === action)?.latestExecution;
      // One accepted result, from a runner whose run of the action finished.
      expect(ledgerNow, `${action} by ${run?.lastUpdatedBy}`).toContainEqual(["end", action, run?.lastUpdatedBy ?? ""]);
      // No retry: the one attempt of the action is the one that succeeded.
      const attempts = await env.sluice.pipelines.listActionExecutions({ pipelineName: name });
      expect(attempts.actionExecutionDetails.filter((d) => d.actionName === action).map((d) => d.status)).toEqual(["Succeeded"]);
    }
    // The killed runner never reported (its job's processes may outlive it, in their own process
    // group); the paused runner's run finished too, but its result was refused.
    expect(actions.find((a) => a.actionName === killedAction)?.latestExecution?.lastUpdatedBy).not.toBe("chaos-kill");
    expect(ledgerNow).toContainEqual(["start", killedAction, "chaos-kill"]);
    expect(ledgerNow).toContainEqual(["end", pausedAction, "chaos-pause"]);
    expect(actions.find((a) => a.actionName === pausedAction)?.latestExecution?.lastUpdatedBy).not.toBe("chaos-pause");
    await expect
      .poll(() => logEntries(env, "orchestrator", "stale result rejected").map((e) => [e["by"], e["delivery"]]), { timeout: 20_000 })
      .toContainEqual(["chaos-pause", 1]);
    await expect.poll(() => logEntries(env, "orchestrator", "refused result stays dead-lettered; the action it names goes on").length, { timeout: 20_000 }).toBeGreaterThan(0);
    // Runs in under 30 s on an idle machine; the cap leaves room for a loaded CI.
  }, 120_000);
});
