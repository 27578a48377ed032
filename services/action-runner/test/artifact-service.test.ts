// The runner with the real artifact service (started from source as its own process): grants
// come from ArtifactService.IssueJobGrants, the runner commits its outputs over gRPC with its
// runner token, and the artifact flows from a Source job into a Build job.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { createClient } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { ArtifactService, JobResultSchema, JobSchema } from "@sluice/proto";
import type { JobResult } from "@sluice/proto";
import { freePort } from "@sluice/testkit";
import { GrpcStatus, isRpcError } from "@sluice/grpc";
import { Client as MinioClient } from "minio";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { loadActionRunnerConfig } from "../src/config.js";
import { startActionRunner } from "../src/service.js";
import type { ActionRunnerService } from "../src/service.js";
import { commitAll, git, makeJob, tempDir } from "./helpers.js";

const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");

describe("action-runner with the artifact service", () => {
  const { natsUrl, mongoUrl, s3 } = inject("servers");
  const suffix = Date.now().toString(36);
  const prefix = `ara${suffix}`;
  const bucket = `sluice-artifacts-${suffix}`;
  const site = `sluice-site-${suffix}`;
  const forbidden = `sluice-forbidden-${suffix}`;
  const minio = new MinioClient({ ...s3, region: "us-east-1" });
  let root: { dir: string; remove: () => Promise<void> };
  let artifactProcess: ChildProcess;
  let artifactOutput = "";
  let artifacts: Client<typeof ArtifactService>;
  let runner: ActionRunnerService;
  let runnerEnv: Record<string, string>;
  let bus: Bus;
  let resultsConsumer: Consumer;
  const results: JobResult[] = [];

  beforeAll(async () => {
    root = await tempDir("sluice-runner-artifacts-");
    const port = await freePort();
    artifactProcess = spawn(
      process.execPath,
      ["--conditions=@sluice/source", "--import", "tsx", "services/artifact/src/main.ts"],
      {
        cwd: REPO_ROOT,
        env: {
          PATH: process.env["PATH"] ?? "/usr/bin:/bin",
          MONGO_URL: mongoUrl,
          MONGO_DB: `runner_artifacts_${suffix}`,
          GRPC_PORT: String(port),
          SLUICE_AUTH_TOKENS: "orchestrator=service:svc-token,runner-1=runner:runner-token",
          SLUICE_DEV_MODE: "true",
          S3_ENDPOINT: s3.url,
          S3_ACCESS_KEY: s3.accessKey,
          S3_SECRET_KEY: s3.secretKey,
          // Pipeline "flow" may deploy to `site` only.
          DEPLOY_BUCKETS: `flow=${site}`,
          LOG_LEVEL: "warn",
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    artifactProcess.stdout?.on("data", (chunk: Buffer) => (artifactOutput += chunk.toString()));
    artifactProcess.stderr?.on("data", (chunk: Buffer) => (artifactOutput += chunk.toString()));
    artifacts = createClient(ArtifactService, `127.0.0.1:${port}`, { token: "svc-token", deadlineMs: 5_000 });
    await vi.waitFor(
      async () => {
        if (artifactProcess.exitCode !== null) throw new Error(`artifact service exited:\n${artifactOutput}`);
        await artifacts.listArtifacts({ pipelineName: "probe", pipelineExecutionId: randomUUID() });
      },
      { timeout: 60_000, interval: 250 },
    );

    runnerEnv = {
      NATS_URL: natsUrl,
      SLUICE_DEV_MODE: "true",
      SLUICE_BUS_PREFIX: prefix,
      ARTIFACT_ADDR: `127.0.0.1:${port}`,
      SLUICE_SERVICE_TOKEN: "runner-token",
      RUNNER_ID: "runner-1",
      WORKSPACE_ROOT: path.join(root.dir, "ws"),
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    };
    runner = await startActionRunner(loadActionRunnerConfig(runnerEnv), { logger: noopLogger });
    bus = await connectBus({ servers: natsUrl, name: "runner-artifacts-test", logger: noopLogger, prefix });
    await bus.ensureStreams();
    resultsConsumer = await bus.consume({
      stream: bus.streams.results,
      durable: "runner-artifacts-test-results",
      filterSubject: bus.subjects.streamFilter("results"),
      schema: JobResultSchema,
      handler: (result) => {
        // Started reports (status InProgress) say a runner took a delivery; these tests count outcomes.
        if (result.status === "InProgress") return Promise.resolve();
        results.push(result);
        return Promise.resolve();
      },
    });
  });

  afterAll(async () => {
    await runner?.stop(5_000);
    await resultsConsumer?.stop();
    await bus?.close();
    artifacts?.close();
    if (artifactProcess !== undefined && artifactProcess.exitCode === null) {
      const exited = new Promise((resolve) => artifactProcess.once("exit", resolve));
      artifactProcess.kill("SIGTERM");
      await exited;
    }
    await root?.remove();
  });

  const resultFor = (jobId: string) => results.find((r) => r.jobId === jobId);

  it("commits outputs through ArtifactService and feeds them to the next job as verified inputs", async () => {
    const repo = path.join(root.dir, "repo");
    await mkdir(repo, { recursive: true });
    git(repo, ["init", "-q", "-b", "main"]);
    await writeFile(path.join(repo, "hello.txt"), "hello from git\n");
    commitAll(repo, "Hello", "2024-07-01T00:00:00Z", "2024-07-01T00:00:00Z");

    const execution = { pipelineName: "flow", pipelineExecutionId: randomUUID() };
    const sourceAe = `src-${suffix}`;
    const sourceGrants = await artifacts.issueJobGrants({
      ...execution,
      stageName: "Source",
      actionName: "Checkout",
      actionExecutionId: sourceAe,
      bucket,
      outputNames: ["SourceArtifact"],
    });
    const sourceJob = makeJob({
      ...execution,
      actionExecutionId: sourceAe,
      jobId: `${sourceAe}:1`,
      stageName: "Source",
      actionName: "Checkout",
      actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
      configuration: { RepositoryUrl: pathToFileURL(repo).href },
      outputs: sourceGrants.outputs,
      artifactBucket: bucket,
    });
    await bus.publish(bus.subjects.jobSubject("default", "Source", "Git"), JobSchema, sourceJob, { msgId: sourceJob.jobId });
    await expect.poll(() => resultFor(sourceJob.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");

    const produced = resultFor(sourceJob.jobId)?.outputArtifacts[0];
    const stored = await artifacts.getArtifact({ artifactId: produced?.artifactId ?? "" });
    expect(stored.artifact?.status).toBe("STORED");
    expect(stored.artifact?.sha256).toBe(produced?.sha256);
    expect(stored.artifact?.sizeBytes).toBe(produced?.sizeBytes);

    const buildAe = `build-${suffix}`;
    const buildGrants = await artifacts.issueJobGrants({
      ...execution,
      stageName: "Build",
      actionName: "Compile",
      actionExecutionId: buildAe,
      bucket,
      inputArtifactIds: [produced?.artifactId ?? ""],
      outputNames: ["BuildOutput"],
    });
    const buildJob = makeJob({
      ...execution,
      actionExecutionId: buildAe,
      jobId: `${buildAe}:1`,
      stageName: "Build",
      actionName: "Compile",
      inputs: buildGrants.inputs,
      outputs: buildGrants.outputs,
      outputArtifacts: [{ name: "BuildOutput", files: ["out/**"] }],
      commands: ["mkdir out", "tr a-z A-Z < hello.txt > out/HELLO.txt"],
      artifactBucket: bucket,
    });
    await bus.publish(bus.subjects.jobSubject("default", "Build", "Commands"), JobSchema, buildJob, { msgId: buildJob.jobId });
    await expect.poll(() => resultFor(buildJob.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    const built = resultFor(buildJob.jobId)?.outputArtifacts[0];
    const builtMeta = await artifacts.getArtifact({ artifactId: built?.artifactId ?? "" });
    expect(builtMeta.artifact?.status).toBe("STORED");
    expect(builtMeta.artifact?.sha256).toBe(built?.sha256);
  });

  it("renews an expired upload grant through ArtifactService.RenewOutputGrants with the runner's token", async () => {
    const execution = { pipelineName: "flow", pipelineExecutionId: randomUUID() };
    const ae = `late-${suffix}`;
    const grants = await artifacts.issueJobGrants({ ...execution, stageName: "Build", actionName: "Slow", actionExecutionId: ae, bucket, outputNames: ["Late"] });
    const issued = grants.outputs[0];
    if (issued?.grant === undefined) throw new Error("no output grant");
    // As if the job had outlived its grant: expired, and its signature no longer accepted.
    const stale = new URL(issued.grant.url);
    stale.searchParams.set("X-Amz-Signature", "0".repeat(64));
    issued.grant.url = stale.href;
    issued.grant.expiresAt = timestampFromDate(new Date(Date.now() - 1_000));
    const job = makeJob({
      ...execution,
      actionExecutionId: ae,
      jobId: `${ae}:1`,
      stageName: "Build",
      actionName: "Slow",
      outputs: grants.outputs,
      outputArtifacts: [{ name: "Late", files: ["out/**"] }],
      commands: ["mkdir out", "echo late > out/late.txt"],
      artifactBucket: bucket,
    });
    await bus.publish(bus.subjects.jobSubject("default", "Build", "Commands"), JobSchema, job, { msgId: job.jobId });
    await expect.poll(() => resultFor(job.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    const meta = await artifacts.getArtifact({ artifactId: `${ae}/Late` });
    expect(meta.artifact?.status).toBe("STORED");
    expect(meta.artifact?.sha256).toBe(resultFor(job.jobId)?.outputArtifacts[0]?.sha256);
  });

  /** A stored source artifact with `index.html`, made by a Git source job of pipeline "flow". */
  async function storedSite(execution: { pipelineName: string; pipelineExecutionId: string }, tag: string): Promise<string> {
    const repo = path.join(root.dir, `site-${tag}`);
    await mkdir(repo, { recursive: true });
    git(repo, ["init", "-q", "-b", "main"]);
    await writeFile(path.join(repo, "index.html"), `<h1>${tag}</h1>\n`);
    commitAll(repo, "Site", "2024-07-01T00:00:00Z", "2024-07-01T00:00:00Z");
    const ae = `src-${tag}-${suffix}`;
    const grants = await artifacts.issueJobGrants({ ...execution, stageName: "Source", actionName: "Checkout", actionExecutionId: ae, bucket, outputNames: ["Site"] });
    const job = makeJob({
      ...execution,
      actionExecutionId: ae,
      jobId: `${ae}:1`,
      stageName: "Source",
      actionName: "Checkout",
      actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
      configuration: { RepositoryUrl: pathToFileURL(repo).href },
      outputs: grants.outputs,
      artifactBucket: bucket,
    });
    await bus.publish(bus.subjects.jobSubject("default", "Source", "Git"), JobSchema, job, { msgId: job.jobId });
    await expect.poll(() => resultFor(job.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    return `${ae}/Site`;
  }

  /** Grants as the orchestrator asks for them when it publishes a Deploy/ObjectStore job, then the job. */
  async function publishDeploy(
    execution: { pipelineName: string; pipelineExecutionId: string },
    tag: string,
    input: string,
    configuration: Record<string, string>,
    deploy: { bucket: string; objectKey: string } | undefined,
  ) {
    const ae = `deploy-${tag}-${suffix}`;
    const grants = await artifacts.issueJobGrants({
      ...execution,
      stageName: "Deploy",
      actionName: "Ship",
      actionExecutionId: ae,
      bucket,
      inputArtifactIds: [input],
      ...(deploy === undefined ? {} : { deploy: { ...deploy, extract: true, expiresAt: timestampFromDate(new Date(Date.now() + 600_000)) } }),
    });
    const job = makeJob({
      ...execution,
      actionExecutionId: ae,
      jobId: `${ae}:1`,
      stageName: "Deploy",
      actionName: "Ship",
      actionTypeId: { category: "Deploy", owner: "AWS", provider: "ObjectStore", version: "1" },
      configuration,
      inputs: grants.inputs,
      artifactBucket: bucket,
    });
    await bus.publish(bus.subjects.jobSubject("default", "Deploy", "ObjectStore"), JobSchema, job, { msgId: job.jobId });
    await expect.poll(() => resultFor(job.jobId)?.status, { timeout: 30_000 }).not.toBeUndefined();
    return resultFor(job.jobId);
  }

  it("deploys with presigned PUTs from IssueDeployGrants: the runner's environment holds no S3 credential", async () => {
    // The runner was configured without any S3_* variable and still deploys.
    expect(Object.keys(runnerEnv).filter((k) => k.startsWith("S3_"))).toEqual([]);
    expect(Object.values(runnerEnv)).not.toContain(s3.secretKey);
    expect(Object.values(runnerEnv)).not.toContain(s3.accessKey);

    const execution = { pipelineName: "flow", pipelineExecutionId: randomUUID() };
    const input = await storedSite(execution, "ok");
    const result = await publishDeploy(execution, "ok", input, { BucketName: site, ObjectKey: "www" }, { bucket: site, objectKey: "www" });
    expect(result?.status).toBe("Succeeded");
    const page = await minio.getObject(site, "www/index.html");
    const chunks: Buffer[] = [];
    for await (const chunk of page) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString("utf8")).toBe("<h1>ok</h1>\n");
  });

  it("fails a deploy to a bucket the pipeline is not allowed, naming BucketName, and writes nothing", async () => {
    const execution = { pipelineName: "flow", pipelineExecutionId: randomUUID() };
    const input = await storedSite(execution, "denied");
    // The orchestrator's grant request is refused: it fails the action with this error.
    const refused = await artifacts
      .issueJobGrants({
        ...execution,
        stageName: "Deploy",
        actionName: "Ship",
        actionExecutionId: `refused-${suffix}`,
        bucket,
        inputArtifactIds: [input],
        deploy: { bucket: forbidden, objectKey: "www", extract: true, expiresAt: timestampFromDate(new Date(Date.now() + 600_000)) },
      })
      .catch((e: unknown) => e);
    expect(isRpcError(refused) && refused.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(String((refused as Error).message)).toMatch(/configuration\.BucketName: pipeline "flow" may not deploy to bucket "sluice-forbidden-.*DEPLOY_BUCKETS/);

    // A job that reaches the runner anyway (say a forged job on the bus, with input grants but
    // no deploy allowance) gets no grant: the runner has no credential of its own to fall back on.
    const forged = await publishDeploy(execution, "forged", input, { BucketName: forbidden, ObjectKey: "www" }, undefined);
    expect(forged?.status).toBe("Failed");
    expect(forged?.errorDetails?.code).toBe("PermissionError");
    expect(forged?.errorDetails?.message).toMatch(/deploy grants for bucket sluice-forbidden-\S+ refused: .*not an ObjectStore deploy job/);

    // An allowance for `site` is no credential for another bucket.
    const other = await publishDeploy(execution, "other", input, { BucketName: forbidden, ObjectKey: "www" }, { bucket: site, objectKey: "www" });
    expect(other?.status).toBe("Failed");
    expect(other?.errorDetails?.message).toMatch(/may deploy to bucket "sluice-site-\S+" only, not "sluice-forbidden-/);
    expect(await minio.bucketExists(forbidden)).toBe(false);
  });

  it("refuses ObjectKey ../x on the runner, naming the field", async () => {
    const execution = { pipelineName: "flow", pipelineExecutionId: randomUUID() };
    const input = await storedSite(execution, "dots");
    const result = await publishDeploy(execution, "dots", input, { BucketName: site, ObjectKey: "../x" }, { bucket: site, objectKey: "www" });
    expect(result?.status).toBe("Failed");
    expect(result?.errorDetails?.code).toBe("ConfigurationError");
    expect(result?.errorDetails?.message).toMatch(/^configuration\.ObjectKey: "\.\.\/x" must not contain a "\.\." segment/);
  });
});
