// Approval expiry end to end: a manual approval with timeoutInMinutes 5 that nobody answers fails its
// action and the execution with an error naming the timeout, the approval service marks it Expired,
// and a late answer is refused. Waiting five real minutes is out of the question and neither service
// reads a clock offset from its environment, so this file runs the services in-process
// (in-process.ts) with an injected clock that the test moves forward; the API calls, the bus, the
// databases and the runner are real.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { startInProcessCluster } from "./in-process.js";
import {
  NON_EMPTY,
  POLL,
  bucketName,
  createPipelineFromJson,
  finishedExecution,
  listKeys,
  makeGitRepo,
  pipelineJson,
  rpcError,
  stateView,
  suffix,
  useCluster,
} from "./helpers.js";

/** How far the services' clock is ahead of the real one. */
let offsetMs = 0;
const env = useCluster("approval-expiry", { start: (setup) => startInProcessCluster(setup, { clock: () => Date.now() + offsetMs }) });

const MINUTE = 60_000;

describe("approval expiry", () => {
  it("fails an approval nobody answered within its timeoutInMinutes, names the timeout, and refuses a late answer", { timeout: 90_000 }, async () => {
    const name = `expiring-${suffix()}`;
    const deployBucket = bucketName("deploy");
    const repo = makeGitRepo(env, { "site/index.html": "<h1>waiting</h1>\n" }, "to approve");
    await createPipelineFromJson(
      env,
      pipelineJson({ name, repoUrl: repo.url, artifactBucket: bucketName("artifacts"), deployBucket, buildCommands: ["mkdir -p dist", "cp -r site/. dist/"], approvalTimeoutInMinutes: 5 }),
    );
    await expect
      .poll(() => stateView(env, name), POLL)
      .toMatchObject({ Approve: { latestStatus: "InProgress", actions: { Approve: { status: "InProgress", token: NON_EMPTY } } } });
    const approve = (await stateView(env, name))["Approve"]!;
    const executionId = approve.latestExecutionId;
    const token = approve.actions["Approve"]!.token;

    // The approval service got it with the action's deadline: five minutes from now.
    await expect.poll(async () => (await env.approvals.listApprovals({ pipelineName: name, status: "Pending" })).approvals.map((x) => x.token), POLL).toEqual([token]);
    const { approval } = await env.approvals.getApproval({ token });
    const expiresIn = (approval?.expiresAt === undefined ? 0 : timestampDate(approval.expiresAt).getTime()) - Date.now();
    expect(expiresIn).toBeGreaterThan(4 * MINUTE);
    expect(expiresIn).toBeLessThanOrEqual(5 * MINUTE);

    // Five minutes pass, and the orchestrator's grace after a job's deadline (30 s).
    offsetMs += 5 * MINUTE + 31_000;
    const failed = await finishedExecution(env, name, executionId);
    expect(failed.status, failed.statusSummary).toBe("Failed");
    expect(failed.statusSummary).toContain('approval "Approve" expired: no answer within 5 minutes');
    expect(await stateView(env, name)).toMatchObject({
      Approve: { latestExecutionId: executionId, latestStatus: "Failed", actions: { Approve: { status: "Failed", errorCode: "JobTimedOut" } } },
      Deploy: { latestExecutionId: "" },
    });
    expect((await stateView(env, name))["Approve"]!.actions["Approve"]!.errorMessage).toContain("(the approval timeout)");
    await expect.poll(async () => (await env.approvals.getApproval({ token })).approval?.status, POLL).toBe("Expired");

    const late = await rpcError(() =>
      env.sluice.pipelines.putApprovalResult({ pipelineName: name, stageName: "Approve", actionName: "Approve", token, result: { status: "Approved", summary: "too late" } }),
    );
    expect(late.errorCode, late.message).toBe("InvalidApprovalTokenException");
    expect(late.message).toMatch(/expired/);
    expect((await env.approvals.getApproval({ token })).approval).toMatchObject({ status: "Expired", decidedBy: "" });
    expect(await listKeys(env.s3, deployBucket)).toEqual([]);
  });
});
