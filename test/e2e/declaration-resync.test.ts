// A declaration whose event never went out (the orchestrator crashed between storing the
// declaration and announcing it) still reaches the source poller: it resyncs from the
// orchestrator's ListPipelines/GetPipeline with its service token. Real orchestrator, poller,
// NATS and MongoDB, in this process.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { noopLogger } from "@sluice/domain";
import { createPipelineStore, loadOrchestratorConfig, startOrchestrator } from "@sluice/orchestrator";
import type { Orchestrator } from "@sluice/orchestrator";
import { PipelineDeclarationSchema } from "@sluice/proto";
import { loadSourcePollerConfig, startSourcePoller } from "@sluice/source-poller";
import type { SourcePoller } from "@sluice/source-poller";
import type {} from "@sluice/testkit";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

const servers = inject("servers");
const tag = `rsy${randomUUID().slice(0, 8)}`;
const orchestratorDb = `${tag}_orchestrator`;
const pollerDb = `${tag}_sources`;
const TOKENS = "ops=operator:op-token,poller=service:svc-token,peeker=runner:runner-token";

let mongo: MongoClient;
let orchestrator: Orchestrator | undefined;
let poller: SourcePoller | undefined;

const cursor = async (id: string): Promise<{ repositoryUrl: string } | null> =>
  mongo.db(pollerDb).collection<{ _id: string; repositoryUrl: string }>("cursors").findOne({ _id: id });

function pollerConfig(token: string): ReturnType<typeof loadSourcePollerConfig> {
  return loadSourcePollerConfig({
    NATS_URL: servers.natsUrl,
    MONGO_URL: servers.mongoUrl,
    MONGO_DB: pollerDb,
    SLUICE_AUTH_TOKENS: TOKENS,
    SLUICE_DEV_MODE: "true",
    SLUICE_BUS_PREFIX: tag,
    POLL_INTERVAL_MS: "3600000",
    ORCHESTRATOR_ADDR: `127.0.0.1:${orchestrator?.port ?? 0}`,
    SLUICE_SERVICE_TOKEN: token,
    RESYNC_INTERVAL_MS: "3600000",
  });
}

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
  orchestrator = await startOrchestrator(
    loadOrchestratorConfig({ NATS_URL: servers.natsUrl, MONGO_URL: servers.mongoUrl, MONGO_DB: orchestratorDb, SLUICE_AUTH_TOKENS: TOKENS, SLUICE_DEV_MODE: "true", SLUICE_BUS_PREFIX: tag }),
  );
  // What a crash right after CreatePipeline stored the declaration leaves: no runtime write, so no
  // declaration event in any outbox, and nothing on the bus.
  await createPipelineStore(mongo.db(orchestratorDb)).create(
    create(PipelineDeclarationSchema, {
      name: "unannounced",
      stages: [
        {
          name: "Source",
          actions: [
            {
              name: "Checkout",
              actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
              configuration: { RepositoryUrl: "file:///tmp/unannounced.git", BranchName: "main" },
              outputArtifacts: [{ name: "Src" }],
            },
          ],
        },
        { name: "Build", actions: [{ name: "Make", actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" }, commands: ["make"], inputArtifacts: [{ name: "Src" }] }] },
      ],
    }),
    [],
    new Date(),
  );
});

afterAll(async () => {
  await poller?.stop(2_000);
  await orchestrator?.stop(2_000);
  await mongo?.db(orchestratorDb).dropDatabase();
  await mongo?.db(pollerDb).dropDatabase();
  await mongo?.close();
});

describe("declaration resync", () => {
  it("a poller started after the lost event learns the pipeline from the orchestrator", async () => {
    poller = await startSourcePoller(pollerConfig("svc-token"), { logger: noopLogger });
    await expect.poll(() => cursor("unannounced/Checkout"), { timeout: 15_000 }).toMatchObject({ repositoryUrl: "file:///tmp/unannounced.git" });
  });

  it("a resync drops the cursors of a pipeline the orchestrator no longer has", async () => {
    await mongo.db(pollerDb).collection("cursors").insertOne({ _id: "gone/Checkout", pipelineName: "gone", actionName: "Checkout", repositoryUrl: "file:///tmp/gone.git", branch: "main", lastRevision: null, nextPollAt: Date.now() + 3_600_000 } as never);
    expect(await poller!.resyncNow()).toBe(2);
    expect(await cursor("gone/Checkout")).toBeNull();
    expect(await cursor("unannounced/Checkout")).not.toBeNull();
  });

  it("a runner's token cannot list pipelines: the resync needs the service role", async () => {
    const intruder = await startSourcePoller({ ...pollerConfig("runner-token"), mongoDb: `${pollerDb}_x` }, { logger: noopLogger });
    try {
      await expect(intruder.resyncNow()).rejects.toThrow(/PERMISSION_DENIED|not allowed|permission/i);
    } finally {
      await intruder.stop(2_000);
      await mongo.db(`${pollerDb}_x`).dropDatabase();
    }
  });
});
