// Execution control through the public gRPC API of a whole cluster (five service processes, real
// NATS, MongoDB and MinIO): a disabled transition holds an execution in front of its stage until it is
// enabled; a failed build is retried in the same execution; and a running build is stopped both ways —
// stop-and-wait lets it finish, abandon kills its process on the runner at once.
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  GATE_WAIT,
  POLL,
  actionAttempts,
  bucketName,
  createPipelineFromJson,
  executionStatus,
  executionsView,
  finishedExecution,
  listKeys,
  logEntries,
  makeGate,
  makeGitRepo,
  pipelineJson,
  processesWith,
  readObject,
  rpcError,
  stateView,
  suffix,
  useCluster,
} from "./helpers.js";

const env = useCluster("control");

const PACKAGE = ["mkdir -p dist", "cp -r site/. dist/", 'echo "$COMMIT_ID" > dist/COMMIT'];
const TIMEOUT = { timeout: 90_000 };

/** Creates a Source → Build → Deploy pipeline on a fresh repository; returns what the test needs. */
async function pipeline(kind: string, buildCommands: string[], buildEnv: Record<string, string> = {}) {
  const name = `${kind}-${suffix()}`;
  const deployBucket = bucketName("deploy");
  const repo = makeGitRepo(env, { "site/index.html": `<h1>${kind} one</h1>\n` }, "first version");
  await createPipelineFromJson(
    env,
    pipelineJson({ name, repoUrl: repo.url, artifactBucket: bucketName("artifacts"), deployBucket, buildCommands, approval: false, buildEnv }),
  );
  await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ trigger: "CreatePipeline" }]);
  const first = (await executionsView(env, name))[0]!.id;
  return { name, deployBucket, repo, first };
}

describe("execution control", () => {
  it("holds an execution in front of a disabled transition, shows who disabled it and why, and deploys it once enabled", TIMEOUT, async () => {
    const { name, deployBucket, repo, first } = await pipeline("transition", PACKAGE);
    const done1 = await finishedExecution(env, name, first);
    expect(done1, done1.statusSummary).toMatchObject({ status: "Succeeded" });

    const before = Date.now();
    await env.sluice.pipelines.disableStageTransition({ pipelineName: name, stageName: "Deploy", transitionType: "Inbound", reason: "Freeze (release-42) in progress" });
    const after = Date.now();
    const disabled = (await stateView(env, name))["Deploy"]!.transition;
    expect(disabled).toMatchObject({ enabled: false, disabledReason: "Freeze (release-42) in progress", lastChangedBy: "dev" });
    expect(disabled.lastChangedAt?.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(disabled.lastChangedAt?.getTime()).toBeLessThanOrEqual(after + 1000);

    // A push: the polled execution builds, then waits in front of Deploy.
    const second = repo.commit({ "site/index.html": "<h1>transition two</h1>\n" }, "second version");
    await expect.poll(async () => (await executionsView(env, name))[0]?.revisions, POLL).toEqual([second]);
    const exec2 = (await executionsView(env, name))[0]!.id;
    await expect
      .poll(() => stateView(env, name), POLL)
      .toMatchObject({
        Build: { latestExecutionId: exec2, latestStatus: "Succeeded" },
        Deploy: { latestExecutionId: first, latestStatus: "Succeeded", inboundExecutionId: exec2, transition: { enabled: false } },
      });
    expect(await executionStatus(env, name, exec2)).toMatchObject({ status: "InProgress" });
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${repo.first}\n`);

    await env.sluice.pipelines.enableStageTransition({ pipelineName: name, stageName: "Deploy", transitionType: "Inbound" });
    const done2 = await finishedExecution(env, name, exec2);
    expect(done2, done2.statusSummary).toMatchObject({ status: "Succeeded" });
    expect(await stateView(env, name)).toMatchObject({
      Deploy: { latestExecutionId: exec2, latestStatus: "Succeeded", inboundExecutionId: "", transition: { enabled: true, disabledReason: "", lastChangedBy: "dev" } },
    });
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${second}\n`);
  });

  it("retries the failed build of an execution (FAILED_ACTIONS): the same execution succeeds and keeps both attempts", TIMEOUT, async () => {
    // The build fails until the test creates the marker file (outside the workspace).
    const marker = join(env.tempDir("marker"), "fixed");
    const { name, deployBucket, repo, first } = await pipeline("retry", ['test -e "$MARKER" || { echo "the dependency is not there yet"; exit 7; }', ...PACKAGE], {
      MARKER: marker,
    });
    const failed = await finishedExecution(env, name, first);
    expect(failed.status).toBe("Failed");
    expect(failed.statusSummary).toMatch(/exit code 7/);
    expect(await stateView(env, name)).toMatchObject({ Build: { latestExecutionId: first, latestStatus: "Failed" }, Deploy: { latestExecutionId: "" } });

    writeFileSync(marker, "fixed\n");
    const retried = await env.sluice.pipelines.retryStageExecution({ pipelineName: name, stageName: "Build", pipelineExecutionId: first, retryMode: "FAILED_ACTIONS" });
    expect(retried.pipelineExecutionId).toBe(first);
    const done = await finishedExecution(env, name, first);
    expect(done, done.statusSummary).toMatchObject({ status: "Succeeded" });
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${repo.first}\n`);

    // One execution, with both build attempts in its history.
    expect((await executionsView(env, name)).map((e) => `${e.id} ${e.status}`)).toEqual([`${first} Succeeded`]);
    const attempts = await actionAttempts(env, name, first);
    expect(attempts.map((a) => ({ stage: a.stage, status: a.status }))).toEqual([
      { stage: "Source", status: "Succeeded" },
      { stage: "Build", status: "Failed" },
      { stage: "Build", status: "Succeeded" },
      { stage: "Deploy", status: "Succeeded" },
    ]);
    const [failedBuild, goodBuild] = attempts.filter((a) => a.stage === "Build");
    expect(failedBuild!.errorMessage).toMatch(/exit code 7/);
    expect(goodBuild!.actionExecutionId).not.toBe(failedBuild!.actionExecutionId);

    // A stage of a succeeded execution cannot be retried.
    const again = await rpcError(() =>
      env.sluice.pipelines.retryStageExecution({ pipelineName: name, stageName: "Build", pipelineExecutionId: first, retryMode: "FAILED_ACTIONS" }),
    );
    expect(again.errorCode, again.message).toBe("StageNotRetryableException");
  });

  it("stop-and-wait: the execution is Stopping while its build runs, then Stopped without deploying", TIMEOUT, async () => {
    const gate = makeGate(env);
    const { name, deployBucket, first } = await pipeline("stop-wait", [GATE_WAIT, ...PACKAGE], { GATE: gate.path });
    await expect.poll(() => stateView(env, name), POLL).toMatchObject({ Build: { latestExecutionId: first, actions: { Build: { status: "InProgress" } } } });

    await env.sluice.pipelines.stopPipelineExecution({ pipelineName: name, pipelineExecutionId: first, abandon: false, reason: "wait for this build, then stop" });
    expect(await executionStatus(env, name, first)).toMatchObject({ status: "Stopping" });
    expect(await stateView(env, name)).toMatchObject({ Build: { latestStatus: "Stopping", actions: { Build: { status: "InProgress" } } } });
    const duplicate = await rpcError(() =>
      env.sluice.pipelines.stopPipelineExecution({ pipelineName: name, pipelineExecutionId: first, abandon: false, reason: "again" }),
    );
    expect(duplicate.errorCode, duplicate.message).toBe("DuplicatedStopRequestException");

    // The build finishes; nothing after it starts.
    gate.open();
    const stopped = await finishedExecution(env, name, first);
    expect(stopped.status, stopped.statusSummary).toBe("Stopped");
    expect(stopped.statusSummary).toContain("wait for this build, then stop");
    expect(await stateView(env, name)).toMatchObject({ Build: { latestStatus: "Stopped", actions: { Build: { status: "Succeeded" } } }, Deploy: { latestExecutionId: "" } });
    expect(await executionsView(env, name)).toMatchObject([{ id: first, status: "Stopped", stopReason: "wait for this build, then stop" }]);
    expect(await listKeys(env.s3, deployBucket)).toEqual([]);

    const late = await rpcError(() => env.sluice.pipelines.stopPipelineExecution({ pipelineName: name, pipelineExecutionId: first, abandon: true, reason: "" }));
    expect(late.errorCode, late.message).toBe("PipelineExecutionNotStoppableException");
  });

  it("abandon: the execution is Stopped at once, the build Abandoned, and its process killed on the runner", TIMEOUT, async () => {
    // `exec -a` names the sleeping process after the marker, so it can be found in /proc.
    const marker = `sluice-marker-${randomUUID()}`;
    const { name, deployBucket, first } = await pipeline("abandon", [`bash -c 'exec -a ${marker} sleep 60'`, ...PACKAGE]);
    await expect.poll(() => processesWith(marker).length, POLL).toBeGreaterThan(0);
    const running = await stateView(env, name);
    expect(running).toMatchObject({ Build: { latestExecutionId: first, actions: { Build: { status: "InProgress" } } } });
    const jobId = `${running["Build"]!.actions["Build"]!.executionId}:1`;

    await env.sluice.pipelines.stopPipelineExecution({ pipelineName: name, pipelineExecutionId: first, abandon: true, reason: "abandon the long build" });
    expect(await executionStatus(env, name, first)).toMatchObject({ status: "Stopped" });
    expect(await stateView(env, name)).toMatchObject({ Build: { latestStatus: "Stopped", actions: { Build: { status: "Abandoned" } } }, Deploy: { latestExecutionId: "" } });
    expect(await executionsView(env, name)).toMatchObject([{ id: first, status: "Stopped", stopReason: "abandon the long build" }]);
    // The action's history shows the cancellation too.
    const { actionExecutionDetails } = await env.sluice.pipelines.listActionExecutions({ pipelineName: name, filter: { pipelineExecutionId: first } });
    expect(actionExecutionDetails.find((d) => d.actionName === "Build")).toMatchObject({ status: "Abandoned", actionExecutionId: jobId.split(":")[0] });

    // The runner got the cancel and killed the job's process group.
    await expect.poll(() => processesWith(marker), POLL).toEqual([]);
    await expect.poll(() => logEntries(env, "action-runner", "job cancelled").filter((e) => e["jobId"] === jobId).length, POLL).toBe(1);
    expect(await listKeys(env.s3, deployBucket)).toEqual([]);
  });
});
