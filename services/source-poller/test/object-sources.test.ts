// ObjectStore (AWS S3) sources polled by HEAD against real MinIO, FerretDB and NATS: baseline
// first, then each new version of the object published once as SourceChanged.
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { PipelineDeclarationSchema, SourceChangedSchema } from "@sluice/proto";
import type { SourceChanged } from "@sluice/proto";
import { Client } from "minio";
import { MongoClient } from "mongodb";
import type {} from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ObjectCursorStore } from "../src/object-cursor-store.js";
import { createHeadObject, pollObjectsOnce } from "../src/object-poller.js";
import type { ObjectPollerOptions } from "../src/object-poller.js";

const servers = inject("servers");
const suffix = randomUUID().slice(0, 8);
const prefix = `objsrc${process.pid}`;
const bucket = `sluice-poll-src-${suffix}`;
const INTERVAL_MS = 10_000;
const minio = new Client({ ...servers.s3, region: "us-east-1" });

let mongo: MongoClient;
let store: ObjectCursorStore;
let bus: Bus;
const received: SourceChanged[] = [];
let waiters: { n: number; resolve: () => void }[] = [];

function options(now: number): ObjectPollerOptions {
  const { endPoint, port, useSSL, accessKey, secretKey } = servers.s3;
  return {
    store,
    head: createHeadObject({ endPoint, port, useSSL, accessKey, secretKey, region: "us-east-1" }),
    bus,
    logger: noopLogger,
    intervalMs: INTERVAL_MS,
    owner: "replica-a",
    leaseMs: 60_000,
    now: () => now,
  };
}

/** Resolves once `n` SourceChanged have arrived. */
function receivedCount(n: number): Promise<void> {
  if (received.length >= n) return Promise.resolve();
  return new Promise((resolve) => waiters.push({ n, resolve }));
}

function declaration(configuration: Record<string, string>) {
  return create(PipelineDeclarationSchema, {
    name: "bundle",
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Fetch",
            actionTypeId: { category: "Source", owner: "AWS", provider: "S3", version: "1" },
            configuration,
            outputArtifacts: [{ name: "Src" }],
          },
        ],
      },
    ],
  });
}

beforeAll(async () => {
  await minio.makeBucket(bucket);
  await minio.setBucketVersioning(bucket, { Status: "Enabled" });
  mongo = await MongoClient.connect(servers.mongoUrl);
  store = new ObjectCursorStore(mongo.db(`sluice_sources_${prefix}`));
  await store.ensureIndexes();
  bus = await connectBus({ servers: servers.natsUrl, name: "object-source-test", logger: noopLogger, prefix });
  await bus.ensureStreams();
  await bus.consume({
    stream: bus.streams.sources,
    durable: "test-object-sources",
    filterSubject: bus.subjects.streamFilter("sources"),
    schema: SourceChangedSchema,
    handler: (msg) => {
      received.push(msg);
      for (const w of waiters) if (received.length >= w.n) w.resolve();
      waiters = waiters.filter((w) => received.length < w.n);
      return Promise.resolve();
    },
  });
});

afterAll(async () => {
  await bus?.close();
  await mongo?.close();
});

describe("ObjectStore source polling", () => {
  it("records a baseline first, then publishes an overwritten object's new VersionId once", async () => {
    const v1 = await minio.putObject(bucket, "app/source.zip", Buffer.from("one"));
    let now = 1_000_000;
    await store.syncPipeline("bundle", declaration({ S3Bucket: bucket, S3ObjectKey: "app/source.zip" }), now);
    expect(await pollObjectsOnce(options(now))).toBe(0);
    expect((await store.get("bundle/Fetch"))?.lastRevision).toBe(v1.versionId);

    const v2 = await minio.putObject(bucket, "app/source.zip", Buffer.from("two"));
    now += INTERVAL_MS;
    expect(await pollObjectsOnce(options(now))).toBe(1);
    now += INTERVAL_MS;
    expect(await pollObjectsOnce(options(now))).toBe(0);
    await receivedCount(1);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      eventId: `bundle:Fetch:${v2.versionId ?? ""}`,
      pipelineName: "bundle",
      sourceActionName: "Fetch",
      triggerType: "PollForSourceChanges",
      triggerDetail: `s3://${bucket}/app/source.zip`,
      revision: { revisionId: v2.versionId, revisionSummary: `s3://${bucket}/app/source.zip` },
    });
    expect((await store.get("bundle/Fetch"))?.lastRevision).toBe(v2.versionId);
  });

  it("waits for a missing object (its first version is the baseline) and leaves PollForSourceChanges=false sources alone", async () => {
    let now = 5_000_000;
    await store.syncPipeline("bundle", declaration({ S3Bucket: bucket, S3ObjectKey: "later.zip" }), now);
    expect(await pollObjectsOnce(options(now))).toBe(0);
    expect((await store.get("bundle/Fetch"))?.lastRevision).toBeNull();
    const first = await minio.putObject(bucket, "later.zip", Buffer.from("x"));
    now += INTERVAL_MS;
    expect(await pollObjectsOnce(options(now))).toBe(0);
    expect((await store.get("bundle/Fetch"))?.lastRevision).toBe(first.versionId);

    await store.syncPipeline("bundle", declaration({ S3Bucket: bucket, S3ObjectKey: "later.zip", PollForSourceChanges: "false" }), now);
    expect(await store.get("bundle/Fetch")).toBeNull();
    await store.syncPipeline("bundle", undefined, now);
  });
});
