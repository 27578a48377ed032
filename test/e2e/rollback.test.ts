// Rollback through the public gRPC API of a whole cluster (five service processes, real NATS, MongoDB
// and MinIO). The Deploy stage deploys the build, then smoke-tests it (`dist/STATUS` must say ok): a
// commit that deploys and passes (execution A), then one whose smoke test fails after its deploy wrote
// the bucket (execution B). A ROLLBACK execution — started by the stage's onFailure ROLLBACK, or by
// RollbackStage — reruns Deploy with A's artifacts, so the bucket holds A's build again.
import { describe, expect, it } from "vitest";
import {
  POLL,
  actionAttempts,
  bucketName,
  createPipelineFromJson,
  executionsView,
  finishedExecution,
  makeGitRepo,
  pipelineDocument,
  readObject,
  suffix,
  useCluster,
} from "./helpers.js";

const env = useCluster("rollback");

const PACKAGE = ["mkdir -p dist", "cp -r site/. dist/", 'echo "$COMMIT_ID" > dist/COMMIT'];
const SMOKE_TEST = ['test "$(cat dist/STATUS)" = ok || { echo "smoke test failed: $(cat dist/STATUS)"; exit 4; }'];

/**
 * Source → Build → Deploy (ObjectStore, then a smoke test) on a new repository whose first commit
 * passes; `onFailure` of Deploy when given. Returns once execution A (CreatePipeline) succeeded.
 */
async function deployedOnce(kind: string, onFailure?: Record<string, unknown>) {
  const name = `${kind}-${suffix()}`;
  const deployBucket = bucketName("deploy");
  const repo = makeGitRepo(env, { "site/index.html": "<h1>good release</h1>\n", "site/STATUS": "ok\n" }, "good release");
  const doc = pipelineDocument({ name, repoUrl: repo.url, artifactBucket: bucketName("artifacts"), deployBucket, buildCommands: PACKAGE, approval: false });
  doc.pipeline["pipelineType"] = "V2";
  const deploy = doc.pipeline.stages.find((s) => s["name"] === "Deploy")!;
  (deploy["actions"] as Record<string, unknown>[]).push({
    name: "SmokeTest",
    actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
    runOrder: 2,
    commands: SMOKE_TEST,
    inputArtifacts: [{ name: "BuildOutput" }],
  });
  if (onFailure !== undefined) deploy["onFailure"] = onFailure;
  await createPipelineFromJson(env, JSON.stringify(doc));

  await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ trigger: "CreatePipeline" }]);
  const a = (await executionsView(env, name))[0]!.id;
  const done = await finishedExecution(env, name, a);
  expect(done, done.statusSummary).toMatchObject({ status: "Succeeded" });
  expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${repo.first}\n`);
  return { name, deployBucket, repo, a };
}

/** Pushes a commit that builds and deploys but fails the smoke test; returns the failed execution B. */
async function failedRelease(name: string, deployBucket: string, repo: { commit(files: Record<string, string>, message: string): string }) {
  const bad = repo.commit({ "site/index.html": "<h1>bad release</h1>\n", "site/STATUS": "broken\n" }, "bad release");
  await expect.poll(async () => (await executionsView(env, name)).find((e) => e.revisions[0] === bad)?.id, POLL).toBeTruthy();
  const b = (await executionsView(env, name)).find((e) => e.revisions[0] === bad)!.id;
  const failed = await finishedExecution(env, name, b);
  expect(failed.status, failed.statusSummary).toBe("Failed");
  expect(failed.statusSummary).toMatch(/SmokeTest/);
  // B's deploy did write the bucket before its smoke test failed.
  expect((await actionAttempts(env, name, b)).filter((x) => x.stage === "Deploy").map((x) => `${x.action} ${x.status}`)).toEqual([
    "Deploy Succeeded",
    "SmokeTest Failed",
  ]);
  return { b, bad, summary: failed.statusSummary };
}

describe("rollback", () => {
  it("rolls a failed Deploy back automatically (onFailure ROLLBACK): a ROLLBACK execution redeploys the last good release", { timeout: 90_000 }, async () => {
    const { name, deployBucket, repo, a } = await deployedOnce("auto-rollback", { result: "ROLLBACK" });
    const { b, summary } = await failedRelease(name, deployBucket, repo);

    const rollback = /rolled back to pipeline execution (\S+) by pipeline execution (\S+)$/.exec(summary);
    expect(rollback?.[1], summary).toBe(a);
    const r = rollback![2]!;
    const done = await finishedExecution(env, name, r);
    expect(done, done.statusSummary).toMatchObject({ status: "Succeeded" });

    const { pipelineExecution } = await env.sluice.pipelines.getPipelineExecution({ pipelineName: name, pipelineExecutionId: r });
    expect(pipelineExecution).toMatchObject({ executionType: "ROLLBACK", trigger: { triggerType: "AutomatedRollback", triggerDetail: b } });
    expect(pipelineExecution?.artifactRevisions.map((x) => x.revisionId)).toContain(repo.first);
    // Only Deploy ran again, with A's build.
    expect((await actionAttempts(env, name, r)).map((x) => `${x.stage}/${x.action} ${x.status}`)).toEqual(["Deploy/Deploy Succeeded", "Deploy/SmokeTest Succeeded"]);
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${repo.first}\n`);
    expect(await readObject(env.s3, deployBucket, "site/dist/index.html")).toBe("<h1>good release</h1>\n");
    expect((await executionsView(env, name)).map((e) => `${e.id} ${e.type} ${e.status}`)).toEqual([
      `${r} ROLLBACK Succeeded`,
      `${b} STANDARD Failed`,
      `${a} STANDARD Succeeded`,
    ]);
  });

  it("rolls Deploy back on request (RollbackStage) to an execution that succeeded in it", { timeout: 90_000 }, async () => {
    const { name, deployBucket, repo, a } = await deployedOnce("manual-rollback");
    const { b } = await failedRelease(name, deployBucket, repo);
    expect(await readObject(env.s3, deployBucket, "site/dist/index.html")).toBe("<h1>bad release</h1>\n");

    const { pipelineExecutionId: r } = await env.sluice.pipelines.rollbackStage({ pipelineName: name, stageName: "Deploy", targetPipelineExecutionId: a });
    expect(r).not.toBe(b);
    const done = await finishedExecution(env, name, r);
    expect(done, done.statusSummary).toMatchObject({ status: "Succeeded" });
    const { pipelineExecution } = await env.sluice.pipelines.getPipelineExecution({ pipelineName: name, pipelineExecutionId: r });
    expect(pipelineExecution).toMatchObject({ executionType: "ROLLBACK", trigger: { triggerType: "ManualRollback" } });
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${repo.first}\n`);
    expect(await readObject(env.s3, deployBucket, "site/dist/index.html")).toBe("<h1>good release</h1>\n");
  });
});
