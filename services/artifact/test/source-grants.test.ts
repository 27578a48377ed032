// ObjectStore sources read a bucket through a GET the artifact service signs inside SOURCE_BUCKETS:
// runners hold no object-store credential. Against real MinIO and FerretDB.
import { randomUUID } from "node:crypto";
import { Client as MinioClient } from "minio";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { GrpcStatus, createClient, isRpcError } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { ArtifactService } from "@sluice/proto";
import { loadArtifactConfig } from "../src/config.js";
import { startArtifactService } from "../src/service.js";
import type { RunningArtifactService } from "../src/service.js";

const servers = inject("servers");
const suffix = randomUUID().slice(0, 8);
const bucket = `sluice-srcgrant-artifacts-${suffix}`;
const sources = `sluice-srcgrant-src-${suffix}`;
const TOKENS = "orchestrator=service:svc-token";
const minio = new MinioClient({ ...servers.s3, region: "us-east-1" });

const running: RunningArtifactService[] = [];
const clients: Client<typeof ArtifactService>[] = [];

async function start(sourceBuckets: string | undefined): Promise<Client<typeof ArtifactService>> {
  const config = loadArtifactConfig({
    MONGO_URL: servers.mongoUrl,
    MONGO_DB: `test_artifact_srcgrant_${suffix}`,
    SLUICE_AUTH_TOKENS: TOKENS,
    SLUICE_DEV_MODE: "true",
    S3_ENDPOINT: servers.s3.url,
    S3_ACCESS_KEY: servers.s3.accessKey,
    S3_SECRET_KEY: servers.s3.secretKey,
    ...(sourceBuckets === undefined ? {} : { SOURCE_BUCKETS: sourceBuckets }),
  });
  const service = await startArtifactService(config);
  running.push(service);
  const client = createClient(ArtifactService, `127.0.0.1:${service.port}`, { token: "svc-token" });
  clients.push(client);
  return client;
}

let allowed: Client<typeof ArtifactService>;
let unset: Client<typeof ArtifactService>;

beforeAll(async () => {
  await minio.makeBucket(sources);
  await minio.setBucketVersioning(sources, { Status: "Enabled" });
  allowed = await start(`app=${sources}`);
  unset = await start(undefined);
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of running) await s.stop(5_000);
});

function sourceJob(pipelineName: string, source: { bucket: string; objectKey: string; versionId?: string }) {
  return {
    pipelineName,
    pipelineExecutionId: randomUUID(),
    stageName: "Source",
    actionName: "Fetch",
    actionExecutionId: randomUUID(),
    bucket,
    outputNames: ["Src"],
    source: { versionId: "", ...source },
  };
}

async function rpcError(promise: Promise<unknown>) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isRpcError(err)) throw new Error(`expected an rpc error, got ${String(err)}`);
  return err;
}

describe("source grants at IssueJobGrants", () => {
  it("signs a GET of the object, or of the pinned version, for a bucket SOURCE_BUCKETS allows", async () => {
    const v1 = await minio.putObject(sources, "app.zip", Buffer.from("one"));
    await minio.putObject(sources, "app.zip", Buffer.from("two"));
    const current = await allowed.issueJobGrants(sourceJob("app", { bucket: sources, objectKey: "app.zip" }));
    expect(current.source).toMatchObject({ method: "GET", bucket: sources, key: "app.zip" });
    expect(await (await fetch(current.source?.url ?? "")).text()).toBe("two");
    const pinned = await allowed.issueJobGrants(sourceJob("app", { bucket: sources, objectKey: "app.zip", versionId: v1.versionId ?? "" }));
    expect(await (await fetch(pinned.source?.url ?? "")).text()).toBe("one");
    // A job without a source object gets no source grant.
    const plain = await allowed.issueJobGrants({ ...sourceJob("app", { bucket: sources, objectKey: "app.zip" }), source: undefined });
    expect(plain.source).toBeUndefined();
  });

  it("refuses a bucket outside SOURCE_BUCKETS, naming S3Bucket and how to allow it", async () => {
    const err = await rpcError(allowed.issueJobGrants(sourceJob("blog", { bucket: sources, objectKey: "app.zip" })));
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.violations).toEqual([
      {
        field: "configuration.S3Bucket",
        message: `pipeline "blog" may not read bucket "${sources}": allow it in the artifact service's SOURCE_BUCKETS (e.g. blog=${sources})`,
      },
    ]);
  });

  it("allows nothing when SOURCE_BUCKETS is unset, and says so", async () => {
    const err = await rpcError(unset.issueJobGrants(sourceJob("app", { bucket: sources, objectKey: "app.zip" })));
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.violations[0]?.field).toBe("configuration.S3Bucket");
    expect(err.violations[0]?.message).toMatch(/SOURCE_BUCKETS is unset, so no source bucket is allowed/);
  });

  it("never reads the artifact store, and refuses bad keys", async () => {
    const store = await rpcError(allowed.issueJobGrants(sourceJob("app", { bucket, objectKey: "x.zip" })));
    expect(store.violations.map((v) => v.field)).toEqual(["configuration.S3Bucket"]);
    expect(store.violations[0]?.message).toMatch(/artifact store/);
    const key = await rpcError(allowed.issueJobGrants(sourceJob("app", { bucket: sources, objectKey: "../x.zip" })));
    expect(key.violations.map((v) => v.field)).toEqual(["configuration.S3ObjectKey"]);
  });
});
