// Schedules declared with a pipeline, with a real orchestrator and two source-poller replicas in
// this process (real NATS and MongoDB): the next tick is computed in the schedule's time zone, a
// tick missed while no poller ran starts one execution (trigger CloudWatchEvent), never one per
// missed tick, and two replicas firing the same tick start it once.
import { randomUUID } from "node:crypto";
import { noopLogger } from "@sluice/domain";
import { loadOrchestratorConfig, startOrchestrator } from "@sluice/orchestrator";
import type { Orchestrator } from "@sluice/orchestrator";
import { createClient } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { PipelineService } from "@sluice/proto";
import { loadSourcePollerConfig, startSourcePoller } from "@sluice/source-poller";
import type { SourcePoller } from "@sluice/source-poller";
import type {} from "@sluice/testkit";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

const servers = inject("servers");
const tag = `sch${randomUUID().slice(0, 8)}`;
const orchestratorDb = `${tag}_orchestrator`;
const pollerDb = `${tag}_sources`;
const TOKENS = "ops=operator:op-token,poller=service:svc-token";

let mongo: MongoClient;
let orchestrator: Orchestrator | undefined;
const pollers: SourcePoller[] = [];
let ops: Client<typeof PipelineService>;

interface ScheduleRow {
  _id: string;
  nextRunAt: number;
  lastRunAt?: number;
  lastExecutionId?: string;
}
const schedules = () => mongo.db(pollerDb).collection<ScheduleRow>("schedules");

async function startPoller(): Promise<SourcePoller> {
  const poller = await startSourcePoller(
    loadSourcePollerConfig({
      NATS_URL: servers.natsUrl,
      MONGO_URL: servers.mongoUrl,
      MONGO_DB: pollerDb,
      SLUICE_AUTH_TOKENS: TOKENS,
      SLUICE_DEV_MODE: "true",
      SLUICE_BUS_PREFIX: tag,
      POLL_INTERVAL_MS: "3600000",
      ORCHESTRATOR_ADDR: `127.0.0.1:${orchestrator?.port ?? 0}`,
      SLUICE_SERVICE_TOKEN: "svc-token",
      RESYNC_INTERVAL_MS: "3600000",
    }),
    { logger: noopLogger },
  );
  pollers.push(poller);
  return poller;
}

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
  orchestrator = await startOrchestrator(
    loadOrchestratorConfig({ NATS_URL: servers.natsUrl, MONGO_URL: servers.mongoUrl, MONGO_DB: orchestratorDb, SLUICE_AUTH_TOKENS: TOKENS, SLUICE_DEV_MODE: "true", SLUICE_BUS_PREFIX: tag }),
  );
  ops = createClient(PipelineService, `127.0.0.1:${orchestrator.port}`, { token: "op-token", deadlineMs: 15_000 });
});

afterAll(async () => {
  ops?.close();
  for (const p of pollers) await p.stop(2_000);
  await orchestrator?.stop(2_000);
  await mongo?.db(orchestratorDb).dropDatabase();
  await mongo?.db(pollerDb).dropDatabase();
  await mongo?.close();
});

async function executions(name: string): Promise<{ id: string; trigger: string; detail: string }[]> {
  const res = await ops.listPipelineExecutions({ pipelineName: name });
  return res.pipelineExecutionSummaries.map((s) => ({ id: s.pipelineExecutionId, trigger: s.trigger?.triggerType ?? "", detail: s.trigger?.triggerDetail ?? "" }));
}

describe("schedules", () => {
  const name = "nightly-build";

  it("learns a pipeline's schedule and computes its next tick in the schedule's time zone", async () => {
    await startPoller();
    await ops.createPipeline({
      pipeline: {
        name,
        // PARALLEL: each scheduled execution runs on its own, so none waits behind another.
        pipelineType: "V2",
        executionMode: "PARALLEL",
        schedules: [{ name: "nightly", expression: "30 2 * * *", timeZone: "Europe/Berlin" }],
        stages: [
          {
            name: "Source",
            actions: [
              {
                name: "Checkout",
                actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
                configuration: { RepositoryUrl: "file:///tmp/sluice-schedules-nowhere.git", BranchName: "main" },
                outputArtifacts: [{ name: "Src" }],
              },
            ],
          },
          { name: "Build", actions: [{ name: "Make", actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" }, commands: ["make"], inputArtifacts: [{ name: "Src" }] }] },
        ],
      },
    });
    await expect.poll(() => schedules().findOne({ _id: `${name}/nightly` }), { timeout: 15_000 }).not.toBeNull();
    const row = await schedules().findOne({ _id: `${name}/nightly` });
    const next = new Date(row!.nextRunAt);
    // 02:30 in Berlin is 01:30 UTC in winter and 00:30 UTC in summer.
    expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual(expect.arrayContaining([30]));
    expect([0, 1]).toContain(next.getUTCHours());
    expect(row!.nextRunAt).toBeGreaterThan(Date.now());
    expect(row!.nextRunAt - Date.now()).toBeLessThanOrEqual(25 * 3_600_000);
    expect(await executions(name)).toMatchObject([{ trigger: "CreatePipeline" }]);
  });

  it("starts a tick missed while no poller ran once, then waits for the next tick", async () => {
    // Three nights without a poller: the stored next tick is days in the past.
    const missed = Date.now() - 3 * 86_400_000;
    await schedules().updateOne({ _id: `${name}/nightly` }, { $set: { nextRunAt: missed } });
    // The poller's own loop fires every second too; whoever comes first, the tick runs once.
    await pollers[0]!.fireSchedulesNow();
    await pollers[0]!.fireSchedulesNow();
    const runs = await executions(name);
    expect(runs).toHaveLength(2);
    expect(runs[0]).toMatchObject({ trigger: "CloudWatchEvent", detail: `schedule nightly (30 2 * * * Europe/Berlin) tick ${new Date(missed).toISOString()}` });
    const row = await schedules().findOne({ _id: `${name}/nightly` });
    expect(row).toMatchObject({ lastRunAt: missed, lastExecutionId: runs[0]!.id });
    expect(row!.nextRunAt).toBeGreaterThan(Date.now());
  });

  it("two replicas firing the same tick start one execution", async () => {
    const second = await startPoller();
    const tick = Date.now() - 60_000;
    await schedules().updateOne({ _id: `${name}/nightly` }, { $set: { nextRunAt: tick } });
    // Both replicas (and their loops) start the tick; all but one get the same execution back.
    await Promise.all([pollers[0]!.fireSchedulesNow(), second.fireSchedulesNow(), pollers[0]!.fireSchedulesNow(), second.fireSchedulesNow()]);
    await expect.poll(async () => (await schedules().findOne({ _id: `${name}/nightly` }))?.lastRunAt, { timeout: 10_000 }).toBe(tick);
    const runs = await executions(name);
    expect(runs.filter((r) => r.trigger === "CloudWatchEvent")).toHaveLength(2);
  });

  it("an update that drops the schedule stops it", async () => {
    const { pipeline } = await ops.getPipeline({ name });
    expect(pipeline?.schedules.map((s) => s.name)).toEqual(["nightly"]);
    pipeline!.schedules = [];
    await ops.updatePipeline({ pipeline: pipeline! });
    await expect.poll(() => schedules().countDocuments({ _id: `${name}/nightly` }), { timeout: 15_000 }).toBe(0);
  });
});
