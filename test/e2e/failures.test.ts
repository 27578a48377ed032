// Executions that fail, through the public gRPC API of a whole cluster: a build whose command exits
// non-zero, and a manual approval that is rejected. Each must fail its action, its stage and the
// execution, say why, and never reach the stages after it.
import { describe, expect, it } from "vitest";
import {
  NON_EMPTY,
  POLL,
  bucketName,
  createPipelineFromJson,
  executionStatus,
  finishedExecution,
  executionsView,
  listKeys,
  makeGitRepo,
  pipelineJson,
  stateView,
  suffix,
  useCluster,
} from "./helpers.js";

const env = useCluster("failures");

describe("failing executions", () => {
  it("fails the execution when a build command exits non-zero and names the failed action and its exit code", async () => {
    const name = `failing-build-${suffix()}`;
    const deployBucket = bucketName("deploy");
    const repo = makeGitRepo(env, { "site/index.html": "<h1>broken</h1>\n" }, "a commit that does not build");
    await createPipelineFromJson(
      env,
      pipelineJson({
        name,
        repoUrl: repo.url,
        artifactBucket: bucketName("artifacts"),
        deployBucket,
        buildCommands: ["echo compiling the broken app", "exit 3"],
      }),
    );

    await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ status: "Failed", trigger: "CreatePipeline" }]);
    const [execution] = await executionsView(env, name);
    const id = execution!.id;

    const state = await stateView(env, name);
    expect(state).toMatchObject({
      Source: { latestExecutionId: id, latestStatus: "Succeeded", actions: { Checkout: { status: "Succeeded" } } },
      Build: { latestExecutionId: id, latestStatus: "Failed", actions: { Build: { status: "Failed" } } },
      // Nothing after the failed stage ran.
      Approve: { latestExecutionId: "" },
      Deploy: { latestExecutionId: "" },
    });
    expect(state["Approve"]!.actions["Approve"]?.status ?? "").toBe("");
    expect(state["Deploy"]!.actions["Deploy"]?.status ?? "").toBe("");
    expect(state["Build"]!.actions["Build"]!.errorMessage).toMatch(/exit code 3/);

    const { status, statusSummary } = await executionStatus(env, name, id);
    expect(status).toBe("Failed");
    expect(statusSummary).toMatch(/Build/);
    expect(statusSummary).toMatch(/exit code 3/);
    expect(await listKeys(env.s3, deployBucket)).toEqual([]);
  });

  it("fails the approval action and the execution when the approval is rejected, and never deploys", async () => {
    const name = `rejected-${suffix()}`;
    const deployBucket = bucketName("deploy");
    const repo = makeGitRepo(env, { "site/index.html": "<h1>not this one</h1>\n" }, "a commit to reject");
    await createPipelineFromJson(
      env,
      pipelineJson({ name, repoUrl: repo.url, artifactBucket: bucketName("artifacts"), deployBucket, buildCommands: ["mkdir -p dist", "cp -r site/. dist/"] }),
    );

    await expect
      .poll(() => stateView(env, name), POLL)
      .toMatchObject({ Approve: { latestStatus: "InProgress", actions: { Approve: { status: "InProgress", token: NON_EMPTY } } } });
    const state = await stateView(env, name);
    const id = state["Approve"]!.latestExecutionId;
    const token = state["Approve"]!.actions["Approve"]!.token;

    await env.sluice.pipelines.putApprovalResult({
      pipelineName: name,
      stageName: "Approve",
      actionName: "Approve",
      token,
      result: { status: "Rejected", summary: "not shipping this" },
    });

    const finished = await finishedExecution(env, name, id);
    expect(finished.status).toBe("Failed");
    expect(finished.statusSummary).toMatch(/Approve/);
    const after = await stateView(env, name);
    expect(after).toMatchObject({
      Build: { latestExecutionId: id, latestStatus: "Succeeded" },
      Approve: { latestExecutionId: id, latestStatus: "Failed", actions: { Approve: { status: "Failed" } } },
      Deploy: { latestExecutionId: "" },
    });
    expect(after["Deploy"]!.actions["Deploy"]?.status ?? "").toBe("");
    expect(await executionsView(env, name)).toMatchObject([{ id, status: "Failed" }]);
    expect(await listKeys(env.s3, deployBucket)).toEqual([]);

    // The approval service recorded who rejected it and why.
    const { approvals } = await env.approvals.listApprovals({ pipelineName: name });
    expect(approvals).toMatchObject([{ token, pipelineExecutionId: id, status: "Rejected", summary: "not shipping this", decidedBy: "dev" }]);
  });
});
