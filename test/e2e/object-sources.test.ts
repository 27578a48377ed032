// An ObjectStore source (AWS's Source/S3) through a whole cluster: the runner reads the zip with a
// GET the artifact service signs inside SOURCE_BUCKETS, the poller HEADs the object, and a new
// version uploaded to the versioned bucket starts an execution whose build sees the new content.
// StartPipelineExecution pins an older version with S3_OBJECT_VERSION_ID, another key with S3_OBJECT_KEY.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { zipDirectory } from "@sluice/artifacts";
import { describe, expect, it } from "vitest";
import { POLL, bucketName, createPipelineFromJson, executionsView, finishedExecution, suffix, useCluster } from "./helpers.js";

const env = useCluster("object-sources");

/** A zip holding app.txt with `text`. */
async function zipWith(text: string): Promise<Buffer> {
  const dir = join(env.tempDir("objsrc"), "content");
  mkdirSync(dir);
  writeFileSync(join(dir, "app.txt"), text);
  await zipDirectory(dir, [], `${dir}.zip`);
  return readFileSync(`${dir}.zip`);
}

function pipeline(name: string, bucket: string): string {
  return JSON.stringify({
    pipeline: {
      name,
      roleArn: "arn:aws:iam::123456789012:role/sluice-e2e",
      artifactStore: { type: "S3", location: bucketName("artifacts") },
      stages: [
        {
          name: "Source",
          actions: [
            {
              name: "Bundle",
              actionTypeId: { category: "Source", owner: "AWS", provider: "S3", version: "1" },
              configuration: { S3Bucket: bucket, S3ObjectKey: "app/source.zip" },
              outputArtifacts: [{ name: "Src" }],
              namespace: "Bundle",
            },
          ],
        },
        {
          name: "Build",
          actions: [
            {
              name: "Check",
              actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
              // Only the second version passes: the build sees the content of the version that started it.
              commands: ['test "$(cat app.txt)" = two', 'test -n "$VERSION"'],
              environmentVariables: [{ name: "VERSION", value: "#{Bundle.VersionId}", type: "PLAINTEXT" }],
              inputArtifacts: [{ name: "Src" }],
            },
          ],
        },
      ],
    },
  });
}

describe("ObjectStore source", () => {
  it("a new version of the object starts an execution that builds it; an older one can be pinned", { timeout: 180_000 }, async () => {
    const name = `objsrc-${suffix()}`;
    const bucket = bucketName("source");
    await env.s3.makeBucket(bucket, "us-east-1");
    await env.s3.setBucketVersioning(bucket, { Status: "Enabled" });
    const v1 = await env.s3.putObject(bucket, "app/source.zip", await zipWith("one"));
    await createPipelineFromJson(env, pipeline(name, bucket));

    // The first execution reads version one, whose content the build refuses.
    await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ trigger: "CreatePipeline" }]);
    const [initial] = await executionsView(env, name);
    expect(await finishedExecution(env, name, initial!.id)).toMatchObject({ status: "Failed" });
    expect((await executionsView(env, name))[0]?.revisions).toEqual([v1.versionId]);

    const v2 = await env.s3.putObject(bucket, "app/source.zip", await zipWith("two"));
    await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ trigger: "PollForSourceChanges" }, { id: initial!.id }]);
    const [polled] = await executionsView(env, name);
    expect(await finishedExecution(env, name, polled!.id)).toMatchObject({ status: "Succeeded" });
    expect((await executionsView(env, name))[0]?.revisions).toEqual([v2.versionId]);

    // Pinned to version one: that content again, so the build fails.
    const { pipelineExecutionId } = await env.sluice.pipelines.startPipelineExecution({
      name,
      sourceRevisions: [{ actionName: "Bundle", revisionType: "S3_OBJECT_VERSION_ID", revisionValue: v1.versionId ?? "" }],
    });
    expect(await finishedExecution(env, name, pipelineExecutionId)).toMatchObject({ status: "Failed" });
    const pinned = (await executionsView(env, name)).find((e) => e.id === pipelineExecutionId);
    expect(pinned?.revisions).toEqual([v1.versionId]);

    // Pinned to another key (S3_OBJECT_KEY): that object's current version.
    const other = await env.s3.putObject(bucket, "app/other.zip", await zipWith("two"));
    const byKey = await env.sluice.pipelines.startPipelineExecution({
      name,
      sourceRevisions: [{ actionName: "Bundle", revisionType: "S3_OBJECT_KEY", revisionValue: "app/other.zip" }],
    });
    expect(await finishedExecution(env, name, byKey.pipelineExecutionId)).toMatchObject({ status: "Succeeded" });
    expect((await executionsView(env, name)).find((e) => e.id === byKey.pipelineExecutionId)?.revisions).toEqual([other.versionId]);
  });
});
