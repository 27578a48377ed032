// Several source actions in the first stage, through the public gRPC API of a whole cluster: every
// execution runs them all and records each one's revision, a polled change pins only the source
// that changed, PutActionRevision hands a source a revision (and answers newRevision false for one
// it has), and a manual start takes each source's latest revision. Event rules: a pipeline starts
// when another one's execution succeeds, running the upstream's commit of the repository they share.
import { describe, expect, it } from "vitest";
import { GATE_WAIT, POLL, bucketName, createPipelineFromJson, executionsView, finishedExecution, makeGate, makeGitRepo, suffix, useCluster } from "./helpers.js";

const env = useCluster("sources");

function twoSourcePipeline(name: string, appUrl: string, configUrl: string): string {
  const git = { category: "Source", owner: "AWS", provider: "Git", version: "1" };
  return JSON.stringify({
    pipeline: {
      name,
      roleArn: "arn:aws:iam::123456789012:role/sluice-e2e",
      artifactStore: { type: "S3", location: bucketName("artifacts") },
      stages: [
        {
          name: "Source",
          actions: [
            { name: "App", actionTypeId: git, configuration: { RepositoryUrl: appUrl, BranchName: "main" }, outputArtifacts: [{ name: "AppSrc" }], namespace: "App" },
            // Not polled: it changes only when someone hands it a revision or starts the pipeline.
            {
              name: "Config",
              actionTypeId: git,
              configuration: { RepositoryUrl: configUrl, BranchName: "main", PollForSourceChanges: "false" },
              outputArtifacts: [{ name: "ConfigSrc" }],
              namespace: "Config",
            },
          ],
        },
        {
          name: "Build",
          actions: [
            {
              name: "Combine",
              actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
              // Each file holds its commit's message: the build sees the files of the commits recorded.
              commands: ['test "$(cat app.txt)" = "$APP_MESSAGE"', 'test "$(cat "$CODEBUILD_SRC_DIR_ConfigSrc/config.txt")" = "$CONFIG_MESSAGE"'],
              environmentVariables: [
                { name: "APP_MESSAGE", value: "#{App.CommitMessage}", type: "PLAINTEXT" },
                { name: "CONFIG_MESSAGE", value: "#{Config.CommitMessage}", type: "PLAINTEXT" },
              ],
              inputArtifacts: [{ name: "AppSrc" }, { name: "ConfigSrc" }],
            },
          ],
        },
      ],
    },
  });
}

/** The revisions an execution records, by source action. */
async function revisionsOf(pipelineName: string, pipelineExecutionId: string): Promise<Record<string, string>> {
  const res = await env.sluice.pipelines.getPipelineExecution({ pipelineName, pipelineExecutionId });
  return Object.fromEntries((res.pipelineExecution?.artifactRevisions ?? []).map((r) => [r.name, r.revisionId]));
}

describe("several source actions", () => {
  it("run in every execution, each with its own revision, however the execution started", { timeout: 180_000 }, async () => {
    const name = `sources-${suffix()}`;
    const app = makeGitRepo(env, { "app.txt": "app 1" }, "app 1");
    const config = makeGitRepo(env, { "config.txt": "config 1" }, "config 1");
    const commit = (repo: typeof app, file: string, text: string): string => repo.commit({ [file]: text }, text);
    await createPipelineFromJson(env, twoSourcePipeline(name, app.url, config.url));

    // The initial execution runs both sources at their heads.
    await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ trigger: "CreatePipeline" }]);
    const [initial] = await executionsView(env, name);
    expect(await finishedExecution(env, name, initial!.id)).toMatchObject({ status: "Succeeded" });
    expect(await revisionsOf(name, initial!.id)).toEqual({ AppSrc: app.first, ConfigSrc: config.first });

    // A polled change of App pins App; Config, not polled, runs at its head (a commit nobody announced).
    const config2 = commit(config, "config.txt", "config 2");
    const app2 = commit(app, "app.txt", "app 2");
    await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ trigger: "PollForSourceChanges" }, { id: initial!.id }]);
    const [polled] = await executionsView(env, name);
    expect(await finishedExecution(env, name, polled!.id)).toMatchObject({ status: "Succeeded" });
    expect(await revisionsOf(name, polled!.id)).toEqual({ AppSrc: app2, ConfigSrc: config2 });

    // PutActionRevision: a revision Config already ran is not new; a new one starts an execution.
    const put = (revisionId: string): ReturnType<typeof env.sluice.pipelines.putActionRevision> =>
      env.sluice.pipelines.putActionRevision({ pipelineName: name, stageName: "Source", actionName: "Config", actionRevision: { revisionId, revisionChangeId: "e2e" } });
    expect(await put(config2)).toMatchObject({ newRevision: false, pipelineExecutionId: polled!.id });
    const config3 = commit(config, "config.txt", "config 3");
    commit(config, "config.txt", "config 4, not handed in");
    const handed = await put(config3);
    expect(handed.newRevision).toBe(true);
    expect(await finishedExecution(env, name, handed.pipelineExecutionId)).toMatchObject({ status: "Succeeded" });
    expect(await revisionsOf(name, handed.pipelineExecutionId)).toEqual({ AppSrc: app2, ConfigSrc: config3 });
    expect((await executionsView(env, name))[0]).toMatchObject({ id: handed.pipelineExecutionId, trigger: "PutActionRevision" });

    // A manual start takes each source's latest revision.
    const config5 = commit(config, "config.txt", "config 5");
    const manual = await env.sluice.pipelines.startPipelineExecution({ name });
    expect(await finishedExecution(env, name, manual.pipelineExecutionId)).toMatchObject({ status: "Succeeded" });
    expect(await revisionsOf(name, manual.pipelineExecutionId)).toEqual({ AppSrc: app2, ConfigSrc: config5 });
  });
});

describe("event rules", () => {
  it("start a pipeline when another one's execution succeeds, with the upstream's commit", { timeout: 180_000 }, async () => {
    const upstream = `upstream-${suffix()}`;
    const downstream = `downstream-${suffix()}`;
    const repo = makeGitRepo(env, { "lib.txt": "lib 1" }, "lib 1");
    const gate = makeGate(env);
    const git = { category: "Source", owner: "AWS", provider: "Git", version: "1" };
    const commands = { category: "Build", owner: "AWS", provider: "Commands", version: "1" };
    const pipeline = (name: string, extra: Record<string, unknown>, build: Record<string, unknown>, poll: boolean): string =>
      JSON.stringify({
        pipeline: {
          name,
          roleArn: "arn:aws:iam::123456789012:role/sluice-e2e",
          artifactStore: { type: "S3", location: bucketName("artifacts") },
          ...extra,
          stages: [
            {
              name: "Source",
              actions: [{ name: "Lib", actionTypeId: git, configuration: { RepositoryUrl: repo.url, BranchName: "main", ...(poll ? {} : { PollForSourceChanges: "false" }) }, outputArtifacts: [{ name: "LibSrc" }] }],
            },
            { name: "Build", actions: [{ name: "Build", actionTypeId: commands, inputArtifacts: [{ name: "LibSrc" }], ...build }] },
          ],
        },
      });
    // Downstream first: it waits for the upstream, which does not exist yet.
    await createPipelineFromJson(
      env,
      pipeline(downstream, { pipelineType: "V2", executionMode: "PARALLEL", eventRules: [{ name: "after-upstream", pipelineName: upstream, states: ["SUCCEEDED"] }] }, { commands: ["cat lib.txt"] }, false),
    );
    await expect.poll(() => executionsView(env, downstream), POLL).toMatchObject([{ trigger: "CreatePipeline" }]);
    // The upstream's build waits at the gate, so the branch can move on before it succeeds.
    await createPipelineFromJson(env, pipeline(upstream, {}, { commands: [GATE_WAIT], environmentVariables: [{ name: "GATE", value: gate.path, type: "PLAINTEXT" }] }, true));
    // Once its source has fetched (the revision is recorded), the branch moves on.
    await expect.poll(() => executionsView(env, upstream), POLL).toMatchObject([{ trigger: "CreatePipeline", revisions: [repo.first] }]);
    const [firstUp] = await executionsView(env, upstream);
    const lib2 = repo.commit({ "lib.txt": "lib 2" }, "lib 2");
    gate.open();
    expect(await finishedExecution(env, upstream, firstUp!.id)).toMatchObject({ status: "Succeeded" });

    // The downstream runs the commit the upstream ran, not the branch head.
    await expect.poll(() => executionsView(env, downstream), POLL).toContainEqual(expect.objectContaining({ trigger: "CloudWatchEvent" }));
    const ruled = (await executionsView(env, downstream)).filter((e) => e.trigger === "CloudWatchEvent");
    expect(ruled).toHaveLength(1);
    const detail = await env.sluice.pipelines.getPipelineExecution({ pipelineName: downstream, pipelineExecutionId: ruled[0]!.id });
    expect(detail.pipelineExecution?.trigger?.triggerDetail).toBe(`rule after-upstream: pipeline ${upstream} execution ${firstUp!.id} SUCCEEDED`);
    expect(await finishedExecution(env, downstream, ruled[0]!.id)).toMatchObject({ status: "Succeeded" });
    expect(await revisionsOf(downstream, ruled[0]!.id)).toEqual({ LibSrc: repo.first });

    // The upstream picks up the new commit by polling; its success starts the downstream on it.
    await expect.poll(async () => (await executionsView(env, upstream)).filter((e) => e.status === "Succeeded").length, POLL).toBe(2);
    await expect.poll(async () => (await executionsView(env, downstream)).filter((e) => e.trigger === "CloudWatchEvent").length, POLL).toBe(2);
    const [latest] = await executionsView(env, downstream);
    expect(await finishedExecution(env, downstream, latest!.id)).toMatchObject({ status: "Succeeded" });
    expect(await revisionsOf(downstream, latest!.id)).toEqual({ LibSrc: lib2 });
  });
});
