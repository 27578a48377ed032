// A pipeline whose declaration event the poller never applied (created before webhooks existed,
// or an event lost) still becomes a webhook target: the resync from the orchestrator fills the
// `source_actions` collection too, and removes pipelines the orchestrator no longer has.
import { create } from "@bufbuild/protobuf";
import { noopLogger } from "@sluice/domain";
import { SluiceRpcError } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { GrpcStatus } from "@sluice/grpc";
import { PipelineDeclarationSchema } from "@sluice/proto";
import type { PipelineService } from "@sluice/proto";
import type {} from "@sluice/testkit";
import { Metadata } from "@grpc/grpc-js";
import { MongoClient } from "mongodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CursorStore } from "../src/cursor-store.js";
import { createPerPipeline, resyncDeclarations } from "../src/resync.js";
import { SourceActionStore } from "../src/webhooks/source-actions.js";

const servers = inject("servers");
let mongo: MongoClient;

beforeAll(async () => {
  mongo = await MongoClient.connect(servers.mongoUrl);
});
afterAll(async () => {
  await mongo.close();
});

function notFound(): SluiceRpcError {
  const metadata = new Metadata();
  metadata.set("sluice-error-code", "PipelineNotFoundException");
  return new SluiceRpcError(GrpcStatus.NOT_FOUND, "gone", metadata);
}

describe("resync and webhook source actions", () => {
  it("fills source_actions from the orchestrator and forgets deleted pipelines", async () => {
    const db = mongo.db(`sluice_sources_resync_${process.pid}`);
    const cursors = new CursorStore(db);
    const sourceActions = new SourceActionStore(db);
    await sourceActions.ensureIndexes();
    const declaration = create(PipelineDeclarationSchema, {
      name: "late",
      stages: [
        {
          name: "Source",
          actions: [
            {
              name: "Checkout",
              actionTypeId: { category: "Source", owner: "AWS", provider: "CodeCommit", version: "1" },
              configuration: { RepositoryUrl: "https://git.example.com/acme/late.git", BranchName: "release", PollForSourceChanges: "false" },
            },
          ],
        },
        { name: "Build", actions: [] },
      ],
    });
    let pipelines = ["late"];
    // The orchestrator's PipelineService as the poller's client sees it.
    const orchestrator = {
      listPipelines: () => Promise.resolve({ pipelines: pipelines.map((name) => ({ name })), nextToken: "" }),
      getPipeline: ({ name }: { name: string }) => (pipelines.includes(name) ? Promise.resolve({ pipeline: declaration }) : Promise.reject(notFound())),
    } as unknown as Client<typeof PipelineService>;

    await resyncDeclarations(orchestrator, cursors, createPerPipeline(), noopLogger, Date.now, { sourceActions });
    expect(await sourceActions.get("late", "Checkout")).toMatchObject({
      actionType: "Source/AWS/CodeCommit/1",
      git: { repositoryUrl: "https://git.example.com/acme/late.git", branch: "release" },
      repositoryKey: "git.example.com/acme/late",
      configuration: { BranchName: "release" },
    });
    // Not polled (PollForSourceChanges=false), yet known to webhooks.
    expect(await cursors.pipelineNames()).toEqual([]);

    pipelines = [];
    await resyncDeclarations(orchestrator, cursors, createPerPipeline(), noopLogger, Date.now, { sourceActions });
    expect(await sourceActions.ofPipeline("late")).toEqual([]);
  });
});
