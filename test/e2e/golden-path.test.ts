// The golden path through the public gRPC API of a whole cluster (five service processes, real NATS,
// MongoDB and MinIO): a pipeline on a git repository runs on creation, stops at its manual approval, a
// new commit is picked up by the source poller and queues in front of the locked approval stage, both
// executions are approved (through the orchestrator and through the approval service) and deploy in
// order, and the deployed files, revisions, artifacts' checksums and state-change events all agree.
import { createHash } from "node:crypto";
import { connectBus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import type { StateChangeEvent } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import {
  NON_EMPTY,
  POLL,
  bucketName,
  createPipelineFromJson,
  finishedExecution,
  executionsView,
  listKeys,
  makeGitRepo,
  matching,
  pipelineJson,
  readObject,
  rpcError,
  stateView,
  suffix,
  useCluster,
} from "./helpers.js";

const env = useCluster("golden");

const BUILD = ["mkdir -p dist", "cp -r site/. dist/", 'echo "$COMMIT_ID" > dist/COMMIT', "ls -l dist"];

describe("golden path", () => {
  it("runs a git pipeline to the approval, queues a polled commit behind it, and deploys both in order after approval", { timeout: 240_000 }, async () => {
    const name = `golden-${suffix()}`;
    const deployBucket = bucketName("deploy");
    const artifactBucket = bucketName("artifacts");
    const startedAt = new Date(Date.now() - 1000);
    const repo = makeGitRepo(env, { "site/index.html": "<h1>version one</h1>\n" }, "first version");
    const commitA = repo.first;

    await createPipelineFromJson(env, pipelineJson({ name, repoUrl: repo.url, artifactBucket, deployBucket, buildCommands: BUILD }));

    // The initial execution (trigger CreatePipeline) builds and stops at the approval.
    await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ status: "InProgress", trigger: "CreatePipeline" }]);
    const [first] = await executionsView(env, name);
    const exec1 = first!.id;
    await expect
      .poll(() => stateView(env, name), POLL)
      .toMatchObject({
        Source: { latestExecutionId: exec1, latestStatus: "Succeeded" },
        Build: { latestExecutionId: exec1, latestStatus: "Succeeded", actions: { Build: { status: "Succeeded" } } },
        Approve: { latestExecutionId: exec1, latestStatus: "InProgress", actions: { Approve: { status: "InProgress", token: NON_EMPTY } } },
      });
    const token1 = (await stateView(env, name))["Approve"]!.actions["Approve"]!.token;
    expect(await listKeys(env.s3, deployBucket)).toEqual([]);

    // A new commit: the poller starts a second execution, which builds and waits in front of Approve.
    const commitB = repo.commit({ "site/index.html": "<h1>version two</h1>\n", "site/about.html": "<p>new page</p>\n" }, "second version");
    await expect
      .poll(() => executionsView(env, name), POLL)
      .toMatchObject([
        { status: "InProgress", trigger: "PollForSourceChanges" },
        { id: exec1, status: "InProgress", trigger: "CreatePipeline" },
      ]);
    const [second] = await executionsView(env, name);
    const exec2 = second!.id;
    expect(exec2).not.toBe(exec1);
    await expect
      .poll(() => stateView(env, name), POLL)
      .toMatchObject({
        Build: { latestExecutionId: exec2, latestStatus: "Succeeded" },
        Approve: { latestExecutionId: exec1, latestStatus: "InProgress", inboundExecutionId: exec2, actions: { Approve: { token: token1 } } },
      });

    // Approve the first through the orchestrator (forwarded to the approval service).
    await env.sluice.pipelines.putApprovalResult({
      pipelineName: name,
      stageName: "Approve",
      actionName: "Approve",
      token: token1,
      result: { status: "Approved", summary: "first looks good" },
    });
    const finished1 = await finishedExecution(env, name, exec1);
    expect(finished1, finished1.statusSummary).toMatchObject({ status: "Succeeded" });
    // The artifact keeps the paths its files had in the build workspace (dist/…), as CodeBuild does.
    expect(await listKeys(env.s3, deployBucket)).toEqual(["site/dist/COMMIT", "site/dist/index.html"]);
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${commitA}\n`);
    expect(await readObject(env.s3, deployBucket, "site/dist/index.html")).toBe("<h1>version one</h1>\n");
    // A second answer to the same approval is refused.
    const again = await rpcError(() =>
      env.approvals.putApprovalResult({ pipelineName: name, stageName: "Approve", actionName: "Approve", token: token1, result: { status: "Approved", summary: "twice" } }),
    );
    expect(again.errorCode, again.message).toMatch(/^(ApprovalAlreadyCompletedException|InvalidApprovalTokenException)$/);

    // The second enters Approve with a fresh token; approve it at the approval service directly.
    await expect
      .poll(() => stateView(env, name), POLL)
      .toMatchObject({
        Approve: { latestExecutionId: exec2, latestStatus: "InProgress", inboundExecutionId: "", actions: { Approve: { status: "InProgress", token: NON_EMPTY } } },
      });
    const token2 = (await stateView(env, name))["Approve"]!.actions["Approve"]!.token;
    expect(token2).not.toBe(token1);
    await env.approvals.putApprovalResult({
      pipelineName: name,
      stageName: "Approve",
      actionName: "Approve",
      token: token2,
      result: { status: "Approved", summary: "second looks good" },
    });
    const finished2 = await finishedExecution(env, name, exec2);
    expect(finished2, finished2.statusSummary).toMatchObject({ status: "Succeeded" });

    // The deploy bucket holds the new commit's build output.
    expect(await listKeys(env.s3, deployBucket)).toEqual(["site/dist/COMMIT", "site/dist/about.html", "site/dist/index.html"]);
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${commitB}\n`);
    expect(await readObject(env.s3, deployBucket, "site/dist/index.html")).toBe("<h1>version two</h1>\n");
    expect(await readObject(env.s3, deployBucket, "site/dist/about.html")).toBe("<p>new page</p>\n");

    // Each execution records the commit it ran.
    for (const [id, commit, trigger] of [
      [exec1, commitA, "CreatePipeline"],
      [exec2, commitB, "PollForSourceChanges"],
    ] as const) {
      const { pipelineExecution } = await env.sluice.pipelines.getPipelineExecution({ pipelineName: name, pipelineExecutionId: id });
      expect(pipelineExecution).toMatchObject({ pipelineName: name, pipelineExecutionId: id, status: "Succeeded", trigger: { triggerType: trigger } });
      expect(pipelineExecution?.artifactRevisions.map((r) => ({ name: r.name, revisionId: r.revisionId }))).toContainEqual({ name: "SourceOutput", revisionId: commit });
    }

    // Both executions, newest first.
    expect(await executionsView(env, name)).toMatchObject([
      { id: exec2, status: "Succeeded", trigger: "PollForSourceChanges", revisions: [commitB] },
      { id: exec1, status: "Succeeded", trigger: "CreatePipeline", revisions: [commitA] },
    ]);

    // Every stored artifact downloads with the checksum recorded at upload.
    for (const exec of [exec1, exec2]) {
      const { artifacts } = await env.artifacts.listArtifacts({ pipelineName: name, pipelineExecutionId: exec });
      const stored = artifacts.filter((a) => a.status === "STORED");
      // The outputs, and the stored log of each job a runner ran (Source, Build, Deploy; not the approval).
      expect(stored.map((a) => a.name).sort()).toEqual(["BuildOutput", "SourceOutput", "log.1", "log.1", "log.1"]);
      for (const artifact of stored) {
        expect(artifact).toMatchObject({ pipelineName: name, pipelineExecutionId: exec, bucket: artifactBucket, sha256: matching(/^[0-9a-f]{64}$/) });
        const { grant, sha256 } = await env.artifacts.createDownloadGrant({ artifactId: artifact.artifactId });
        expect(sha256).toBe(artifact.sha256);
        expect(grant?.method).toBe("GET");
        const res = await fetch(grant!.url);
        expect(res.status, `GET ${artifact.artifactId}`).toBe(200);
        const bytes = Buffer.from(await res.arrayBuffer());
        expect(bytes.length).toBe(Number(artifact.sizeBytes));
        expect(createHash("sha256").update(bytes).digest("hex"), artifact.artifactId).toBe(artifact.sha256);
      }
    }

    // The state changes reached SLUICE_EVENTS: pipeline, stage and action events of both executions.
    // The cluster's own authorized nats-server, as the admin user.
    const bus = await connectBus({
      servers: env.cluster.nats?.url ?? env.servers.natsUrl,
      name: "e2e-golden-watcher",
      logger: noopLogger,
      prefix: env.busPrefix,
      credentials: env.cluster.nats?.admin,
    });
    const events: StateChangeEvent[] = [];
    const sub = await bus.subscribeEvents(bus.subjects.eventFilter(name), (e) => void events.push(e), { since: startedAt });
    try {
      const seen = (): string[] => [...new Set(events.filter((e) => e.detailType.endsWith("State Change")).map(eventKey))].sort();
      await expect
        .poll(seen, POLL)
        .toEqual(
          expect.arrayContaining([
            `${exec1} pipeline STARTED`,
            `${exec1} pipeline SUCCEEDED`,
            `${exec2} pipeline STARTED`,
            `${exec2} pipeline SUCCEEDED`,
            `${exec1} stage Approve SUCCEEDED`,
            `${exec2} stage Deploy SUCCEEDED`,
            `${exec1} action Build/Build SUCCEEDED`,
            `${exec2} action Deploy/Deploy SUCCEEDED`,
          ]),
        );
    } finally {
      await sub.stop();
      await bus.close();
    }
  });
});

function eventKey(e: StateChangeEvent): string {
  if (e.action !== "") return `${e.executionId} action ${e.stage}/${e.action} ${e.state}`;
  if (e.stage !== "") return `${e.executionId} stage ${e.stage} ${e.state}`;
  return `${e.executionId} pipeline ${e.state}`;
}
