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
  let root: { dir: string; remove: () => Promise<void> };
  let artifactProcess: ChildProcess;
  let artifactOutput = "";
  let artifacts: Client<typeof ArtifactService>;
  let runner: ActionRunnerService;
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
          S3_ENDPOINT: s3.url,
          S3_ACCESS_KEY: s3.accessKey,
          S3_SECRET_KEY: s3.secretKey,
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

    runner = await startActionRunner(
      loadActionRunnerConfig({
        NATS_URL: natsUrl,
        SLUICE_BUS_PREFIX: prefix,
        ARTIFACT_ADDR: `127.0.0.1:${port}`,
        SLUICE_SERVICE_TOKEN: "runner-token",
        RUNNER_ID: "runner-1",
        WORKSPACE_ROOT: path.join(root.dir, "ws"),
        PATH: process.env["PATH"],
      }),
      { logger: noopLogger },
    );
    bus = await connectBus({ servers: natsUrl, name: "runner-artifacts-test", logger: noopLogger, prefix });
    await bus.ensureStreams();
    resultsConsumer = await bus.consume({
      stream: bus.streams.results,
      durable: "runner-artifacts-test-results",
      filterSubject: bus.subjects.streamFilter("results"),
      schema: JobResultSchema,
      handler: (result) => {
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
});
