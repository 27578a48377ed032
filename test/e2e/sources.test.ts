// Several source actions in the first stage, through the public gRPC API of a whole cluster: every
// execution runs them all and records each one's revision, a polled change pins only the source
// that changed, PutActionRevision hands a source a revision (and answers newRevision false for one
// it has), and a manual start takes each source's latest revision.
import { describe, expect, it } from "vitest";
import { POLL, bucketName, createPipelineFromJson, executionsView, finishedExecution, makeGitRepo, suffix, useCluster } from "./helpers.js";

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
