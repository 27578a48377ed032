import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type {} from "@sluice/testkit";
import { create } from "@bufbuild/protobuf";
import { GrantSchema } from "@sluice/proto";
import { Client } from "minio";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { makeJob, providerContext, tempDir } from "../../test/helpers.js";
import { contentTypeOf, createObjectStoreDeployProvider } from "./object-store-deploy.js";
import type { DeployGranter } from "./object-store-deploy.js";
import { JobFailure } from "./provider.js";
import type { PreparedInput } from "./provider.js";

describe("ObjectStore deploy provider", () => {
  const { s3 } = inject("servers");
  const client = new Client({ endPoint: s3.endPoint, port: s3.port, useSSL: s3.useSSL, accessKey: s3.accessKey, secretKey: s3.secretKey });
  const bucket = `runner-deploy-${Date.now().toString(36)}`;
  /** What the runner asked grants for; stands in for ArtifactService.IssueDeployGrants (tested with the real service elsewhere). */
  const asked: { bucket: string; keys: readonly string[] }[] = [];
  const target: DeployGranter = async (req) => {
    asked.push({ bucket: req.bucket, keys: req.keys });
    return Promise.all(req.keys.map(async (key) => create(GrantSchema, { url: await client.presignedPutObject(req.bucket, key, 600), method: "PUT", bucket: req.bucket, key })));
  };
  let root: { dir: string; remove: () => Promise<void> };
  let input: PreparedInput;

  beforeAll(async () => {
    await client.makeBucket(bucket);
    root = await tempDir("sluice-deploy-test-");
    const dir = path.join(root.dir, "artifact");
    await mkdir(path.join(dir, "css"), { recursive: true });
    await writeFile(path.join(dir, "index.html"), "<h1>hello</h1>\n");
    await writeFile(path.join(dir, "css", "site.css"), "h1 { color: red }\n");
    const zipPath = path.join(root.dir, "artifact.zip");
    await writeFile(zipPath, Buffer.from("PK\u0003\u0004 not really a zip, uploaded as is"));
    input = { name: "BuildOutput", artifactId: "ae/BuildOutput", zipPath, dir, primary: true };
  });

  afterAll(async () => {
    await root.remove();
  });

  const deployJob = (configuration: Record<string, string>) =>
    makeJob({ actionTypeId: { category: "Deploy", owner: "AWS", provider: "ObjectStore", version: "1" }, configuration });

  async function objects(prefix = ""): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const names: string[] = [];
    for await (const item of client.listObjectsV2(bucket, prefix, true)) {
      const name = (item as { name?: unknown }).name;
      if (typeof name === "string") names.push(name);
    }
    for (const name of names) {
      const stream = await client.getObject(bucket, name);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      out.set(name, Buffer.concat(chunks).toString("utf8"));
    }
    return out;
  }

  it("extracts the artifact's files under the prefix through presigned PUTs, with content types", async () => {
    const deploy = createObjectStoreDeployProvider(target);
    const { ctx, ws } = await providerContext(deployJob({ BucketName: bucket, ObjectKey: "site/v1/", CacheControl: "max-age=60" }), {
      root: root.dir,
      inputs: [input],
    });
    try {
      const outcome = await deploy(ctx);
      expect(outcome.summary).toBe(`Deployed 2 files of BuildOutput to s3://${bucket}/site/v1/`);
      expect(outcome.outputs).toEqual([]);
    } finally {
      await ws.remove();
    }
    expect(Object.fromEntries(await objects("site/"))).toEqual({
      "site/v1/index.html": "<h1>hello</h1>\n",
      "site/v1/css/site.css": "h1 { color: red }\n",
    });
    const stat = await client.statObject(bucket, "site/v1/index.html");
    expect(stat.metaData["content-type"]).toBe("text/html; charset=utf-8");
    expect(stat.metaData["cache-control"]).toBe("max-age=60");
  });

  it("writes the zip itself as ObjectKey when Extract is false", async () => {
    const deploy = createObjectStoreDeployProvider(target);
    const { ctx, ws } = await providerContext(
      deployJob({ BucketName: bucket, Extract: "false", ObjectKey: "releases/app.zip" }),
      { root: root.dir, inputs: [input] },
    );
    try {
      await deploy(ctx);
    } finally {
      await ws.remove();
    }
    expect(Object.fromEntries(await objects("releases/"))).toEqual({
      "releases/app.zip": "PK\u0003\u0004 not really a zip, uploaded as is",
    });
  });

  it("fails with ConfigurationError when BucketName, ObjectKey (Extract=false), the input or the target is missing", async () => {
    const cases: { provider: ReturnType<typeof createObjectStoreDeployProvider>; job: ReturnType<typeof deployJob>; inputs: PreparedInput[]; field: string }[] = [
      { provider: createObjectStoreDeployProvider(target), job: deployJob({}), inputs: [input], field: "BucketName" },
      { provider: createObjectStoreDeployProvider(target), job: deployJob({ BucketName: bucket, Extract: "false" }), inputs: [input], field: "ObjectKey" },
      { provider: createObjectStoreDeployProvider(target), job: deployJob({ BucketName: bucket, Extract: "maybe" }), inputs: [input], field: "Extract" },
      { provider: createObjectStoreDeployProvider(target), job: deployJob({ BucketName: bucket }), inputs: [], field: "inputArtifacts" },
      { provider: createObjectStoreDeployProvider(undefined), job: deployJob({ BucketName: bucket }), inputs: [input], field: "ARTIFACT_ADDR" },
    ];
    for (const c of cases) {
      const { ctx, ws } = await providerContext(c.job, { root: root.dir, inputs: c.inputs });
      try {
        const err = await c.provider(ctx).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(JobFailure);
        expect((err as JobFailure).code).toBe("ConfigurationError");
        expect((err as JobFailure).message).toContain(c.field);
      } finally {
        await ws.remove();
      }
    }
  });

  it("refuses a bad BucketName or ObjectKey after variable resolution, naming the field, before asking for any grant", async () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ BucketName: "My_Bucket" }, "configuration.BucketName", /not an S3 bucket name/],
      [{ BucketName: "10.0.0.1" }, "configuration.BucketName", /IP address/],
      [{ BucketName: bucket, ObjectKey: "../x" }, "configuration.ObjectKey", /".." segment/],
      [{ BucketName: bucket, ObjectKey: "site/../../other" }, "configuration.ObjectKey", /".." segment/],
      [{ BucketName: bucket, ObjectKey: "/site" }, "configuration.ObjectKey", /must not start with "\/"/],
      [{ BucketName: bucket, ObjectKey: "site\u0000x" }, "configuration.ObjectKey", /control characters/],
      [{ BucketName: bucket, ObjectKey: "k".repeat(1025), Extract: "false" }, "configuration.ObjectKey", /at most 1024 bytes/],
    ];
    const before = asked.length;
    for (const [configuration, field, message] of cases) {
      const { ctx, ws } = await providerContext(deployJob(configuration), { root: root.dir, inputs: [input] });
      try {
        const err = await createObjectStoreDeployProvider(target)(ctx).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(JobFailure);
        expect((err as JobFailure).code).toBe("ConfigurationError");
        expect((err as JobFailure).message.startsWith(`${field}: `)).toBe(true);
        expect((err as JobFailure).message).toMatch(message);
      } finally {
        await ws.remove();
      }
    }
    expect(asked.length).toBe(before);
    expect(await objects("x")).toEqual(new Map());
  });

  it("maps file extensions to content types", () => {
    expect(contentTypeOf("a/b/app.JS")).toBe("text/javascript; charset=utf-8");
    expect(contentTypeOf("data.bin")).toBe("application/octet-stream");
  });
});
