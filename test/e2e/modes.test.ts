// The three execution modes through the public gRPC API of a whole cluster (five service processes,
// real NATS, MongoDB and MinIO), each with five commits arriving while the first is still building.
// Builds wait for a gate file that the test opens once every execution is where the test expects it
// (waiting, queued or building), so the overlap is what the test arranged, not what the timing gave;
// after the gate opens each build still takes a second. SUPERSEDED and PARALLEL start the later
// executions with StartPipelineExecution pinned to commits of a side branch (the branch the pipeline
// watches stays put, so the source poller adds nothing); QUEUED takes its commits from the poller.
import { execFileSync } from "node:child_process";
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
  makeGate,
  makeGitRepo,
  pipelineJson,
  readObject,
  stateView,
  suffix,
  useCluster,
} from "./helpers.js";
import type { E2eEnv, GitRepo } from "./helpers.js";

// Five builds wait for their gate at once in PARALLEL, with the source and deploy jobs next to them.
const env = useCluster("modes", { serviceEnv: { "action-runner": { RUNNER_CONCURRENCY: "8" } } });

const BUILD = [GATE_WAIT, "sleep 1", "mkdir -p dist", "cp -r site/. dist/", 'echo "$COMMIT_ID" > dist/COMMIT'];
const TIMEOUT = { timeout: 120_000 };

/** Four commits on a new branch `next` (the pipeline watches `main`), oldest first. */
function sideCommits(repo: GitRepo, count: number): string[] {
  execFileSync("git", ["-C", repo.dir, "checkout", "-q", "-b", "next"]);
  const commits: string[] = [];
  for (let i = 2; i < count + 2; i++) commits.push(repo.commit({ "site/index.html": `<h1>version ${i}</h1>\n` }, `version ${i}`));
  return commits;
}

/** StartPipelineExecution pinned to `commit`; returns the execution id. */
async function startPinned(e: E2eEnv, name: string, commit: string): Promise<string> {
  const res = await e.sluice.pipelines.startPipelineExecution({
    name,
    sourceRevisions: [{ actionName: "Checkout", revisionType: "COMMIT_ID", revisionValue: commit }],
  });
  return res.pipelineExecutionId;
}

/** The id of the execution CreatePipeline started, once it is building. */
async function firstExecutionBuilding(name: string): Promise<string> {
  await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ status: "InProgress", trigger: "CreatePipeline" }]);
  const id = (await executionsView(env, name))[0]!.id;
  await expect.poll(() => stateView(env, name), POLL).toMatchObject({ Build: { latestExecutionId: id, latestStatus: "InProgress" } });
  return id;
}

describe("execution modes", () => {
  it("SUPERSEDED: five quick commits supersede each other while they wait, and the newest is deployed", TIMEOUT, async () => {
    const name = `superseded-${suffix()}`;
    const deployBucket = bucketName("deploy");
    const gate = makeGate(env);
    const repo = makeGitRepo(env, { "site/index.html": "<h1>version 1</h1>\n" }, "version 1");
    await createPipelineFromJson(
      env,
      pipelineJson({ name, repoUrl: repo.url, artifactBucket: bucketName("artifacts"), deployBucket, buildCommands: BUILD, approval: false, buildEnv: { GATE: gate.path } }),
    );
    const first = await firstExecutionBuilding(name);

    const commits = sideCommits(repo, 4);
    const later: string[] = [];
    for (const commit of commits) later.push(await startPinned(env, name, commit));
    const newest = later[3]!;

    // While the first builds, the newest waits in front of Build and every other one was superseded.
    await expect
      .poll(async () => ({
        waiting: (await stateView(env, name))["Build"]!.inboundExecutionId,
        statuses: await Promise.all(later.map(async (id) => (await executionStatus(env, name, id)).status)),
      }), POLL)
      .toEqual({ waiting: newest, statuses: ["Superseded", "Superseded", "Superseded", "InProgress"] });

    gate.open();
    const finishedFirst = await finishedExecution(env, name, first);
    expect(finishedFirst, finishedFirst.statusSummary).toMatchObject({ status: "Succeeded" });
    const finishedNewest = await finishedExecution(env, name, newest);
    expect(finishedNewest, finishedNewest.statusSummary).toMatchObject({ status: "Succeeded" });

    // Each superseded execution names a newer one that superseded it.
    for (const [i, id] of later.slice(0, 3).entries()) {
      const { statusSummary } = await executionStatus(env, name, id);
      const by = /^Superseded by pipeline execution (\S+)$/.exec(statusSummary)?.[1];
      expect(later.slice(i + 1), `${id}: ${statusSummary}`).toContain(by);
    }
    // Only the first and the newest built and deployed.
    const attempts = await actionAttempts(env, name);
    expect(
      attempts
        .filter((a) => a.stage !== "Source")
        .map((a) => `${a.executionId} ${a.action} ${a.status}`)
        .sort(),
    ).toEqual([`${first} Build Succeeded`, `${first} Deploy Succeeded`, `${newest} Build Succeeded`, `${newest} Deploy Succeeded`].sort());
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${commits[3]}\n`);
    expect(await readObject(env.s3, deployBucket, "site/dist/index.html")).toBe("<h1>version 5</h1>\n");
    const executions = await executionsView(env, name);
    expect(executions[0]).toMatchObject({ id: newest, status: "Succeeded", revisions: [commits[3]] });
    expect(executions.map((e) => e.status).sort()).toEqual(["Succeeded", "Succeeded", "Superseded", "Superseded", "Superseded"]);
  });

  it("QUEUED: five polled commits queue in arrival order and each one is deployed, in that order", TIMEOUT, async () => {
    const name = `queued-${suffix()}`;
    const deployBucket = bucketName("deploy");
    const gate = makeGate(env);
    const repo = makeGitRepo(env, { "site/index.html": "<h1>version 1</h1>\n" }, "version 1");
    await createPipelineFromJson(
      env,
      pipelineJson({
        name,
        repoUrl: repo.url,
        artifactBucket: bucketName("artifacts"),
        deployBucket,
        buildCommands: BUILD,
        approval: false,
        executionMode: "QUEUED",
        buildEnv: { GATE: gate.path },
      }),
    );
    const ids = [await firstExecutionBuilding(name)];
    const commits = [repo.first];

    // Each push is picked up by the source poller before the next one.
    for (let i = 2; i <= 5; i++) {
      const commit = repo.commit({ "site/index.html": `<h1>version ${i}</h1>\n` }, `version ${i}`);
      commits.push(commit);
      await expect.poll(async () => (await executionsView(env, name))[0]?.revisions, POLL).toEqual([commit]);
      const newest = (await executionsView(env, name))[0]!;
      expect(newest).toMatchObject({ status: "InProgress", trigger: "PollForSourceChanges" });
      ids.push(newest.id);
    }

    // The four later ones queue in front of Build in the order they arrived.
    await expect
      .poll(() => stateView(env, name), POLL)
      .toMatchObject({ Build: { latestExecutionId: ids[0], latestStatus: "InProgress", inboundExecutionIds: ids.slice(1) } });

    gate.open();
    for (const id of ids) {
      const finished = await finishedExecution(env, name, id);
      expect(finished, `${id}: ${finished.statusSummary}`).toMatchObject({ status: "Succeeded" });
    }

    // Build and Deploy ran one execution at a time, in arrival order.
    const attempts = await actionAttempts(env, name);
    for (const stage of ["Build", "Deploy"]) {
      const runs = attempts.filter((a) => a.stage === stage);
      expect(runs.map((a) => a.executionId), stage).toEqual(ids);
      expect(runs.map((a) => a.status), stage).toEqual(Array(5).fill("Succeeded"));
      for (let i = 1; i < runs.length; i++) {
        expect(runs[i]!.start, `${stage} of execution ${i + 1} started before execution ${i} finished it`).toBeGreaterThanOrEqual(runs[i - 1]!.end);
      }
    }
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${commits[4]}\n`);
    expect((await executionsView(env, name)).map((e) => ({ id: e.id, status: e.status, revisions: e.revisions }))).toEqual(
      ids.map((id, i) => ({ id, status: "Succeeded", revisions: [commits[i]] })).reverse(),
    );
  });

  it("PARALLEL: five executions build at the same time and each deploys its own commit", TIMEOUT, async () => {
    const name = `parallel-${suffix()}`;
    const deployBucket = bucketName("deploy");
    const gate = makeGate(env);
    const repo = makeGitRepo(env, { "site/index.html": "<h1>version 1</h1>\n" }, "version 1");
    await createPipelineFromJson(
      env,
      pipelineJson({
        name,
        repoUrl: repo.url,
        artifactBucket: bucketName("artifacts"),
        deployBucket,
        buildCommands: BUILD,
        approval: false,
        executionMode: "PARALLEL",
        buildEnv: { GATE: gate.path },
        // Each execution deploys under its own commit id, so all five deploys can be checked.
        deployPrefix: "site/#{SourceVariables.CommitId}",
      }),
    );
    const ids = [await firstExecutionBuilding(name)];
    const commits = [repo.first, ...sideCommits(repo, 4)];
    for (const commit of commits.slice(1)) ids.push(await startPinned(env, name, commit));

    // All five are inside Build at once (no stage lock in PARALLEL).
    const building = async (): Promise<string[]> =>
      (await actionAttempts(env, name))
        .filter((a) => a.stage === "Build" && a.status === "InProgress")
        .map((a) => a.executionId)
        .sort();
    await expect.poll(building, POLL).toEqual([...ids].sort());

    gate.open();
    for (const id of ids) {
      const finished = await finishedExecution(env, name, id);
      expect(finished, `${id}: ${finished.statusSummary}`).toMatchObject({ status: "Succeeded" });
    }

    // The recorded times agree: every build started before any of them ended.
    const builds = (await actionAttempts(env, name)).filter((a) => a.stage === "Build");
    expect(builds.map((b) => b.executionId).sort()).toEqual([...ids].sort());
    expect(Math.max(...builds.map((b) => b.start))).toBeLessThan(Math.min(...builds.map((b) => b.end)));

    expect(await listKeys(env.s3, deployBucket)).toEqual(commits.flatMap((c) => [`site/${c}/dist/COMMIT`, `site/${c}/dist/index.html`]).sort());
    for (const [i, commit] of commits.entries()) {
      expect(await readObject(env.s3, deployBucket, `site/${commit}/dist/COMMIT`)).toBe(`${commit}\n`);
      expect(await readObject(env.s3, deployBucket, `site/${commit}/dist/index.html`)).toBe(`<h1>version ${i + 1}</h1>\n`);
    }
  });
});
