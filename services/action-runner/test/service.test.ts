// The runner as a service: jobs in on SLUICE_JOBS through a real nats-server, results out on
// SLUICE_RESULTS, artifacts through presigned MinIO grants, health over gRPC.
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Client as GrpcClient, credentials } from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { CancelJobSchema, GrantSchema, JobResultSchema, JobSchema } from "@sluice/proto";
import type { JobResult } from "@sluice/proto";
import type {} from "@sluice/testkit";
import { Client } from "minio";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadActionRunnerConfig } from "../src/config.js";
import type { ArtifactCommitter } from "../src/job-runner.js";
import { isProcessAlive } from "../src/process.js";
import { startActionRunner } from "../src/service.js";
import type { ActionRunnerService } from "../src/service.js";
import { commitAll, git, makeJob, tempDir } from "./helpers.js";

describe("action-runner service", () => {
  const { natsUrl, s3 } = inject("servers");
  const prefix = `ar${Date.now().toString(36)}`;
  const minio = new Client({ endPoint: s3.endPoint, port: s3.port, useSSL: s3.useSSL, accessKey: s3.accessKey, secretKey: s3.secretKey });
  const bucket = `runner-svc-${Date.now().toString(36)}`;
  const deployBucket = `runner-site-${Date.now().toString(36)}`;
  let root: { dir: string; remove: () => Promise<void> };
  let runner: ActionRunnerService;
  let bus: Bus;
  let resultsConsumer: Consumer;
  const results: JobResult[] = [];
  const subjects = new Map<string, string>();
  const commits: Parameters<ArtifactCommitter>[0][] = [];

  beforeAll(async () => {
    root = await tempDir("sluice-runner-svc-");
    await minio.makeBucket(bucket);
    await minio.makeBucket(deployBucket);
    const config = loadActionRunnerConfig({
      NATS_URL: natsUrl,
      SLUICE_DEV_MODE: "true",
      SLUICE_BUS_PREFIX: prefix,
      ARTIFACT_ADDR: "127.0.0.1:1",
      SLUICE_SERVICE_TOKEN: "runner-token",
      RUNNER_ID: "svc-runner-1",
      // The cancel test reads the job's pids with `$$` and `$!`, which are host pids only outside
      // a PID namespace; isolation.test.ts covers the namespace.
      RUNNER_JOB_ISOLATION: "process-group",
      RUNNER_ACK_WAIT_MS: "3000",
      WORKSPACE_ROOT: path.join(root.dir, "ws"),
      PATH: process.env["PATH"],
      HOME: process.env["HOME"],
    });
    runner = await startActionRunner(config, {
      logger: noopLogger,
      commitArtifact: (commit) => {
        commits.push(commit);
        return Promise.resolve();
      },
      // Stands in for ArtifactService.IssueDeployGrants: the runner itself holds no S3 credential.
      issueDeployGrants: async ({ bucket: target, keys }) =>
        Promise.all(keys.map(async (key) => create(GrantSchema, { url: await minio.presignedPutObject(target, key, 600), method: "PUT", bucket: target, key }))),
    });
    bus = await connectBus({ servers: natsUrl, name: "runner-svc-test", logger: noopLogger, prefix });
    await bus.ensureStreams();
    resultsConsumer = await bus.consume({
      stream: bus.streams.results,
      durable: "runner-svc-test-results",
      filterSubject: bus.subjects.streamFilter("results"),
      schema: JobResultSchema,
      handler: (result, ctx) => {
        // Started reports (status InProgress) say a runner took a delivery; these tests count outcomes.
        if (result.status === "InProgress") return Promise.resolve();
        results.push(result);
        subjects.set(result.jobId, ctx.subject);
        return Promise.resolve();
      },
    });
  });

  afterAll(async () => {
    await runner?.stop(5_000);
    await resultsConsumer?.stop();
    await bus?.close();
    await root?.remove();
  });

  const resultFor = (jobId: string) => results.find((r) => r.jobId === jobId);

  it("consumes one durable for its pool, filtering every served action type, never approvals", async () => {
    expect(runner.consumers).toEqual(["runner-default"]);
    const info = await bus.jsm.consumers.info(bus.streams.jobs, "runner-default");
    expect([...(info.config.filter_subjects ?? [])].sort()).toEqual(
      [
        ["Source", "Git"],
        ["Source", "ObjectStore"],
        ["Build", "Commands"],
        ["Test", "Commands"],
        ["Deploy", "Commands"],
        ["Compute", "Commands"],
        ["Deploy", "ObjectStore"],
        ["Rule", "Commands"],
        ["Invoke", "Http"],
      ]
        .map(([category = "", provider = ""]) => bus.subjects.jobSubject("default", category, provider))
        .sort(),
    );
  });

  it("serves gRPC health as SERVING", async () => {
    const client = new GrpcClient(`127.0.0.1:${runner.port}`, credentials.createInsecure());
    try {
      const response = await new Promise<Buffer>((resolve, reject) => {
        client.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          (req: Buffer) => req,
          (res: Buffer) => res,
          Buffer.alloc(0),
          (err, value) => (err || value === undefined ? reject(err ?? new Error("no response")) : resolve(value)),
        );
      });
      // HealthCheckResponse { status = 1 (SERVING) }
      expect([...response]).toEqual([0x08, 0x01]);
    } finally {
      client.close();
    }
  });

  it("runs a Git source job from the queue and publishes its result on the pipeline's result subject", async () => {
    const repo = path.join(root.dir, "repo");
    await mkdir(repo, { recursive: true });
    git(repo, ["init", "-q", "-b", "main"]);
    await writeFile(path.join(repo, "index.html"), "<p>v1</p>\n");
    const commit = commitAll(repo, "Add page", "2024-06-01T08:00:00Z", "2024-06-01T08:00:00Z");
    const key = "executions/src-1/SourceArtifact.zip";
    const job = makeJob({
      pipelineName: "svc-pipeline",
      actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
      configuration: { RepositoryUrl: pathToFileURL(repo).href },
      outputs: [
        {
          name: "SourceArtifact",
          artifactId: "src-1/SourceArtifact",
          grant: { url: await minio.presignedPutObject(bucket, key, 600), method: "PUT", bucket, key },
        },
      ],
    });

    await bus.publish(bus.subjects.jobSubject("default", "Source", "Git"), JobSchema, job, { msgId: job.jobId });

    await expect.poll(() => resultFor(job.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    const result = resultFor(job.jobId);
    expect(result?.pipelineName).toBe("svc-pipeline");
    expect(subjects.get(job.jobId)).toBe(bus.subjects.resultSubject("svc-pipeline", { runner: "default" }));
    expect(result?.updatedBy).toBe("svc-runner-1");
    expect(result?.outputVariables["CommitId"]).toBe(commit);
    expect(result?.outputArtifacts[0]?.key).toBe(key);
    expect(commits.map((c) => c.artifactId)).toContain("src-1/SourceArtifact");
    const stat = await minio.statObject(bucket, key);
    expect(BigInt(stat.size)).toBe(result?.outputArtifacts[0]?.sizeBytes);

    // Then a deploy job takes that artifact and writes it to a bucket.
    const deploy = makeJob({
      pipelineName: "svc-pipeline",
      actionTypeId: { category: "Deploy", owner: "AWS", provider: "ObjectStore", version: "1" },
      configuration: { BucketName: deployBucket, ObjectKey: "site" },
      inputs: [
        {
          name: "SourceArtifact",
          artifactId: "src-1/SourceArtifact",
          sha256: result?.outputArtifacts[0]?.sha256 ?? "",
          sizeBytes: result?.outputArtifacts[0]?.sizeBytes ?? 0n,
          grant: { url: await minio.presignedGetObject(bucket, key, 600), method: "GET", bucket, key },
        },
      ],
    });
    await bus.publish(bus.subjects.jobSubject("default", "Deploy", "ObjectStore"), JobSchema, deploy, { msgId: deploy.jobId });
    await expect.poll(() => resultFor(deploy.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    const page = await minio.getObject(deployBucket, "site/index.html");
    const chunks: Buffer[] = [];
    for await (const chunk of page) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString("utf8")).toBe("<p>v1</p>\n");
  });

  it("publishes a Failed result for a failing Commands job and keeps consuming", async () => {
    const failing = makeJob({ pipelineName: "svc-pipeline", commands: ["echo nope >&2", "exit 9"] });
    const passing = makeJob({
      pipelineName: "svc-other",
      actionTypeId: { category: "Test", owner: "AWS", provider: "Commands", version: "1" },
      commands: ["true"],
    });
    await bus.publish(bus.subjects.jobSubject("default", "Build", "Commands"), JobSchema, failing, { msgId: failing.jobId });
    await bus.publish(bus.subjects.jobSubject("default", "Test", "Commands"), JobSchema, passing, { msgId: passing.jobId });
    await expect.poll(() => resultFor(failing.jobId)?.status, { timeout: 30_000 }).toBe("Failed");
    expect(resultFor(failing.jobId)?.errorDetails?.message).toBe("Commands failed with exit code 9: nope");
    await expect.poll(() => resultFor(passing.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
  });

  it("runs a Commands rule job from sluice.jobs.<pool>.Rule.Commands and publishes its result", async () => {
    const rule = makeJob({
      pipelineName: "svc-pipeline",
      stageName: "Deploy",
      actionName: "SmokeTest",
      actionTypeId: { category: "Rule", owner: "AWS", provider: "Commands", version: "1" },
      commands: ['test "$SLUICE_ACTION_NAME" = SmokeTest'],
    });
    const failing = makeJob({
      pipelineName: "svc-pipeline",
      actionName: "Alarm",
      actionTypeId: { category: "Rule", owner: "AWS", provider: "Commands", version: "1" },
      commands: ["echo alarm >&2", "exit 1"],
    });
    await bus.publish(bus.subjects.jobSubject("default", "Rule", "Commands"), JobSchema, rule, { msgId: rule.jobId });
    await bus.publish(bus.subjects.jobSubject("default", "Rule", "Commands"), JobSchema, failing, { msgId: failing.jobId });
    await expect.poll(() => resultFor(rule.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    expect(resultFor(rule.jobId)).toMatchObject({ actionExecutionId: rule.actionExecutionId, actionName: "SmokeTest", stageName: "Deploy" });
    await expect.poll(() => resultFor(failing.jobId)?.status, { timeout: 30_000 }).toBe("Failed");
    expect(resultFor(failing.jobId)?.errorDetails?.message).toBe("Commands failed with exit code 1: alarm");
  });

  it("heartbeats a job that runs longer than its lease, so it is not redelivered", async () => {
    // ack wait is 3 s: without working() the job would be redelivered and run twice.
    const marker = path.join(root.dir, "runs.log");
    const job = makeJob({ pipelineName: "svc-pipeline", commands: [`echo run >> ${marker}`, "sleep 5"] });
    await bus.publish(bus.subjects.jobSubject("default", "Build", "Commands"), JobSchema, job, { msgId: job.jobId });
    await expect.poll(() => resultFor(job.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    expect(await readFile(marker, "utf8")).toBe("run\n");
    expect(results.filter((r) => r.jobId === job.jobId)).toHaveLength(1);
  });

  /** Publishes a CancelJob on the core NATS control subject, as the orchestrator does. */
  function publishCancel(jobId: string, reason: string): void {
    const actionExecutionId = jobId.split(":")[0] ?? "";
    bus.nc.publish(bus.subjects.controlSubject("cancel"), toBinary(CancelJobSchema, create(CancelJobSchema, { jobId, actionExecutionId, pipelineName: "svc-pipeline", reason })));
  }

  it("cancels a running Commands job: the shell and its background children die, Failed JobCancelled, acked", async () => {
    const pids = path.join(root.dir, "cancel-pids");
    await mkdir(pids, { recursive: true });
    const job = makeJob({
      pipelineName: "svc-pipeline",
      commands: [`echo $$ > ${pids}/shell`, `sleep 300 & echo $! > ${pids}/child`, "sleep 300"],
    });
    await bus.publish(bus.subjects.jobSubject("default", "Build", "Commands"), JobSchema, job, { msgId: job.jobId });
    await expect.poll(() => readdir(pids), { timeout: 30_000 }).toEqual(["child", "shell"]);
    const shell = Number(await readFile(path.join(pids, "shell"), "utf8"));
    const child = Number(await readFile(path.join(pids, "child"), "utf8"));
    expect([await isProcessAlive(shell), await isProcessAlive(child)]).toEqual([true, true]);

    // Noise first: a CancelJob for another job and an undecodable message change nothing.
    publishCancel("someone-else:1", "not ours");
    bus.nc.publish(bus.subjects.controlSubject("cancel"), new Uint8Array([0xff, 0xff, 0xff]));
    publishCancel(job.jobId, "execution abandoned: stop requested by alice");

    await expect.poll(() => resultFor(job.jobId)?.status, { timeout: 30_000 }).toBe("Failed");
    expect(resultFor(job.jobId)?.errorDetails).toMatchObject({ code: "JobCancelled", message: "execution abandoned: stop requested by alice" });
    await expect.poll(async () => [await isProcessAlive(shell), await isProcessAlive(child)], { timeout: 10_000 }).toEqual([false, false]);
    // Acked: gone from the work queue, nothing pending or waiting for redelivery.
    await expect
      .poll(async () => {
        const info = await bus.jsm.consumers.info(bus.streams.jobs, "runner-default");
        return { ackPending: info.num_ack_pending, pending: info.num_pending, redelivered: info.num_redelivered };
      })
      .toEqual({ ackPending: 0, pending: 0, redelivered: 0 });
    expect(results.filter((r) => r.jobId === job.jobId)).toHaveLength(1);
  });

  it("fails a job cancelled before it arrived at once, without running it", async () => {
    const marker = path.join(root.dir, "cancelled-early-ran");
    const job = makeJob({ pipelineName: "svc-pipeline", commands: [`touch ${marker}`] });
    publishCancel(job.jobId, "action timed out while queued");
    // Core NATS: the flush returns once the server has routed the cancel to the runner's
    // connection, ahead of the job the stream will deliver on that same connection.
    await bus.nc.flush();
    await bus.publish(bus.subjects.jobSubject("default", "Build", "Commands"), JobSchema, job, { msgId: job.jobId });
    await expect.poll(() => resultFor(job.jobId)?.status, { timeout: 30_000 }).toBe("Failed");
    expect(resultFor(job.jobId)?.errorDetails).toMatchObject({ code: "JobCancelled", message: "action timed out while queued" });
    expect(existsSync(marker)).toBe(false);
  });

  it("runs at most RUNNER_CONCURRENCY jobs at once across all provider queues", async () => {
    const running = path.join(root.dir, "concurrency-running");
    const counts = path.join(root.dir, "concurrency-counts");
    await mkdir(running, { recursive: true });
    const jobs = (["Build", "Test", "Deploy", "Compute"] as const).map((category) =>
      makeJob({
        pipelineName: "svc-pipeline",
        actionTypeId: { category, owner: "AWS", provider: "Commands", version: "1" },
        commands: [`touch ${running}/$SLUICE_JOB_ID`, `ls ${running} | wc -l >> ${counts}`, "sleep 1", `rm ${running}/$SLUICE_JOB_ID`],
      }),
    );
    await Promise.all(
      jobs.map((job) =>
        bus.publish(bus.subjects.jobSubject("default", job.actionTypeId?.category ?? "", "Commands"), JobSchema, job, { msgId: job.jobId }),
      ),
    );
    for (const job of jobs) await expect.poll(() => resultFor(job.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
    const observed = (await readFile(counts, "utf8")).trim().split("\n").map(Number);
    expect(observed).toHaveLength(4);
    // RUNNER_CONCURRENCY defaults to 2; per-provider consumers would have run all four at once.
    expect(Math.max(...observed)).toBe(2);
  });

  it("replaces the per-provider durables of older releases with the pool's one consumer", async () => {
    const legacy = "runner-legacy-Build-Commands";
    await bus.jsm.consumers.add(bus.streams.jobs, {
      durable_name: legacy,
      ack_policy: "explicit",
      filter_subject: bus.subjects.jobSubject("legacy", "Build", "Commands"),
    });
    const job = makeJob({ pipelineName: "svc-pipeline", commands: ["true"] });
    // Stored before the upgrade, while only the legacy durable existed.
    await bus.publish(bus.subjects.jobSubject("legacy", "Build", "Commands"), JobSchema, job, { msgId: job.jobId });
    const upgraded = await startActionRunner(
      loadActionRunnerConfig({
        NATS_URL: natsUrl,
        SLUICE_DEV_MODE: "true",
        SLUICE_BUS_PREFIX: prefix,
        ARTIFACT_ADDR: "127.0.0.1:1",
        SLUICE_SERVICE_TOKEN: "runner-token",
        RUNNER_ID: "svc-runner-legacy",
        RUNNER_POOLS: "legacy",
        WORKSPACE_ROOT: path.join(root.dir, "ws-legacy"),
        PATH: process.env["PATH"],
        HOME: process.env["HOME"],
      }),
      { logger: noopLogger, commitArtifact: () => Promise.resolve() },
    );
    try {
      expect(upgraded.consumers).toEqual(["runner-legacy"]);
      const names: string[] = [];
      for await (const info of bus.jsm.consumers.list(bus.streams.jobs)) names.push(info.name);
      expect(names).not.toContain(legacy);
      await expect.poll(() => resultFor(job.jobId)?.status, { timeout: 30_000 }).toBe("Succeeded");
      expect(resultFor(job.jobId)?.updatedBy).toBe("svc-runner-legacy");
    } finally {
      await upgraded.stop(5_000);
    }
  });
});
