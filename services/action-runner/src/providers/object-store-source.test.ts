import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type {} from "@sluice/testkit";
import { create } from "@bufbuild/protobuf";
import { zipDirectory } from "@sluice/artifacts";
import { GrantSchema } from "@sluice/proto";
import { Client } from "minio";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { makeJob, providerContext, tempDir } from "../../test/helpers.js";
import { objectStoreSourceProvider } from "./object-store-source.js";
import { JobFailure } from "./provider.js";

describe("ObjectStore source provider", () => {
  const { s3 } = inject("servers");
  const client = new Client({ endPoint: s3.endPoint, port: s3.port, useSSL: s3.useSSL, accessKey: s3.accessKey, secretKey: s3.secretKey });
  const versioned = `runner-src-v-${Date.now().toString(36)}`;
  const plain = `runner-src-p-${Date.now().toString(36)}`;
  let root: { dir: string; remove: () => Promise<void> };

  /** A zip holding one file, `app.txt`, with `content`. */
  async function zipOf(content: string): Promise<Buffer> {
    const dir = path.join(root.dir, `z-${Math.random().toString(36).slice(2)}`);
    await mkdir(dir);
    await writeFile(path.join(dir, "app.txt"), content);
    const file = `${dir}.zip`;
    await zipDirectory(dir, [], file);
    return readFile(file);
  }

  beforeAll(async () => {
    root = await tempDir("sluice-objsrc-test-");
    await client.makeBucket(versioned);
    await client.setBucketVersioning(versioned, { Status: "Enabled" });
    await client.makeBucket(plain);
  });

  afterAll(async () => {
    await root.remove();
  });

  /** A source job with the GET grant the artifact service would sign (here signed directly; the service's allow-list is tested there). */
  async function sourceJob(bucket: string, key: string, versionId = "", sourceRevision = versionId) {
    const url = await client.presignedUrl("GET", bucket, key, 600, versionId === "" ? {} : { versionId });
    return makeJob({
      actionTypeId: { category: "Source", owner: "AWS", provider: "S3", version: "1" },
      configuration: { S3Bucket: bucket, S3ObjectKey: key },
      outputs: [{ name: "Src", artifactId: "ae/Src" }],
      sourceRevision,
      sourceObject: create(GrantSchema, { url, method: "GET", bucket, key }),
    });
  }

  async function run(job: Awaited<ReturnType<typeof sourceJob>>) {
    const { ctx, ws } = await providerContext(job, { root: root.dir });
    try {
      const outcome = await objectStoreSourceProvider(ctx);
      const text = await readFile(path.join(ws.src, "app.txt"), "utf8");
      return { outcome, text, src: ws.src };
    } finally {
      await ws.remove();
    }
  }

  it("turns the current zip into the output artifact with ETag, VersionId and the version as revision", async () => {
    const first = await client.putObject(versioned, "app/source.zip", await zipOf("v1"));
    const second = await client.putObject(versioned, "app/source.zip", await zipOf("v2"));
    expect(first.versionId).not.toBe(second.versionId);
    const { outcome, text, src } = await run(await sourceJob(versioned, "app/source.zip"));
    expect(text).toBe("v2");
    expect(outcome.outputVariables).toEqual({ ETag: second.etag, VersionId: second.versionId });
    expect(outcome.revision).toMatchObject({ revisionId: second.versionId, revisionSummary: `s3://${versioned}/app/source.zip` });
    expect(outcome.outputs).toEqual([{ name: "Src", dir: src, patterns: [] }]);

    // Pinned to the older version: that version's content, not the current one.
    const pinned = await run(await sourceJob(versioned, "app/source.zip", first.versionId ?? ""));
    expect(pinned.text).toBe("v1");
    expect(pinned.outcome.outputVariables).toEqual({ ETag: first.etag, VersionId: first.versionId });
  });

  it("uses the ETag as revision on an unversioned bucket, and refuses a pin the object no longer matches", async () => {
    const put = await client.putObject(plain, "src.zip", await zipOf("plain"));
    const { outcome, text } = await run(await sourceJob(plain, "src.zip"));
    expect(text).toBe("plain");
    expect(outcome.outputVariables).toEqual({ ETag: put.etag, VersionId: "" });
    expect(outcome.revision).toMatchObject({ revisionId: put.etag });
    const stale = run(await sourceJob(plain, "src.zip", "", "0123456789abcdef0123456789abcdef"));
    await expect(stale).rejects.toThrow(JobFailure);
    await expect(stale).rejects.toMatchObject({ code: "RevisionUnavailable" });
  });

  it("refuses an object that is not a zip, and reports a missing one as RevisionUnavailable", async () => {
    await client.putObject(plain, "notes.txt", Buffer.from("just text"));
    await expect(run(await sourceJob(plain, "notes.txt"))).rejects.toMatchObject({
      code: "ConfigurationError",
      message: `configuration.S3ObjectKey: s3://${plain}/notes.txt is not a zip file; an ObjectStore source reads a zip, as AWS's S3 source does`,
    });
    await expect(run(await sourceJob(plain, "missing.zip"))).rejects.toMatchObject({ code: "RevisionUnavailable" });
  });

  it("fails without a grant: runners hold no object-store credential", async () => {
    const job = makeJob({
      actionTypeId: { category: "Source", owner: "AWS", provider: "ObjectStore", version: "1" },
      configuration: { S3Bucket: plain, S3ObjectKey: "src.zip" },
    });
    const { ctx, ws } = await providerContext(job, { root: root.dir });
    await expect(objectStoreSourceProvider(ctx)).rejects.toMatchObject({ code: "SystemUnavailable" });
    await ws.remove();
  });
});
