// The pipeline definition in the repository (`.sluice/pipeline.json`), through a whole cluster: a
// pushed commit that adds a stage makes that commit's execution run it (on the new version), and a
// broken file fails the commit's execution with the violations in its statusSummary, leaving the
// pipeline as it was.
import { describe, expect, it } from "vitest";
import { POLL, bucketName, createPipelineFromJson, executionsView, finishedExecution, makeGitRepo, suffix, useCluster } from "./helpers.js";

const env = useCluster("definition");

function declaration(name: string, repoUrl: string, withCheck: boolean): Record<string, unknown> {
  const commands = { category: "Build", owner: "AWS", provider: "Commands", version: "1" };
  const check = { name: "Check", actions: [{ name: "Check", actionTypeId: { ...commands, category: "Test" }, commands: ["test -f app.txt"], inputArtifacts: [{ name: "Src" }] }] };
  return {
    name,
    roleArn: "arn:aws:iam::123456789012:role/sluice-e2e",
    artifactStore: { type: "S3", location: bucketName("artifacts") },
    stages: [
      {
        name: "Source",
        actions: [{ name: "Checkout", actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" }, configuration: { RepositoryUrl: repoUrl, BranchName: "main" }, outputArtifacts: [{ name: "Src" }] }],
      },
      { name: "Build", actions: [{ name: "Build", actionTypeId: commands, commands: ["cat app.txt"], inputArtifacts: [{ name: "Src" }] }] },
      ...(withCheck ? [check] : []),
    ],
  };
}

describe("pipeline definition in the repository", () => {
  it("a pushed stage runs in that commit's execution; a broken file fails the execution naming the fields", { timeout: 180_000 }, async () => {
    const name = `defn-${suffix()}`;
    const repo = makeGitRepo(env, { "app.txt": "app 1" }, "app 1");
    await createPipelineFromJson(env, JSON.stringify({ pipeline: declaration(name, repo.url, false) }));
    await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ trigger: "CreatePipeline" }]);
    const [initial] = await executionsView(env, name);
    expect(await finishedExecution(env, name, initial!.id)).toMatchObject({ status: "Succeeded" });

    const added = repo.commit({ ".sluice/pipeline.json": JSON.stringify({ pipeline: declaration(name, repo.url, true) }, null, 2) }, "add a Check stage");
    await expect.poll(async () => (await executionsView(env, name)).find((e) => e.revisions.includes(added))?.id, POLL).toBeDefined();
    const polled = (await executionsView(env, name)).find((e) => e.revisions.includes(added))!;
    expect(await finishedExecution(env, name, polled.id)).toMatchObject({ status: "Succeeded" });
    const exec = (await env.sluice.pipelines.getPipelineExecution({ pipelineName: name, pipelineExecutionId: polled.id })).pipelineExecution;
    expect(exec?.pipelineVersion).toBe(2);
    const actions = await env.sluice.pipelines.listActionExecutions({ pipelineName: name, filter: { pipelineExecutionId: polled.id } });
    expect(actions.actionExecutionDetails.map((a) => a.stageName).sort()).toEqual(["Build", "Check", "Source"]);
    expect((await env.sluice.pipelines.getPipeline({ name })).pipeline?.stages.map((s) => s.name)).toEqual(["Source", "Build", "Check"]);

    const broken = declaration(`${name}-other`, repo.url, true);
    repo.commit({ ".sluice/pipeline.json": JSON.stringify({ pipeline: { ...broken, stages: [...(broken["stages"] as unknown[]), { name: "Empty", actions: [] }] } }) }, "break it");
    const rejected = async () => (await executionsView(env, name)).find((e) => e.trigger === "PollForSourceChanges" && e.status === "Failed");
    await expect.poll(async () => (await rejected())?.id, POLL).toBeDefined();
    const failed = await rejected();
    const detail = (await env.sluice.pipelines.getPipelineExecution({ pipelineName: name, pipelineExecutionId: failed!.id })).pipelineExecution;
    expect(detail?.statusSummary).toContain("pipeline.name: must be");
    expect(detail?.statusSummary).toContain("pipeline.stages[3]");
    expect(detail?.pipelineVersion).toBe(2);
    expect((await env.sluice.pipelines.getPipeline({ name })).pipeline?.version).toBe(2);
  });
});
