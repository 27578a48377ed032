// Manual approvals through the public gRPC API of a whole cluster (five service processes, real NATS,
// MongoDB and MinIO): the approval service lists the open approvals of a pipeline, records who answered
// and when, and refuses a second answer. (Expiry needs a clock the test can move: approval-expiry.test.ts.)
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  NON_EMPTY,
  POLL,
  actionAttempts,
  bucketName,
  createPipelineFromJson,
  finishedExecution,
  makeGitRepo,
  pipelineJson,
  readObject,
  rpcError,
  stateView,
  suffix,
  useCluster,
} from "./helpers.js";

const env = useCluster("approvals");

const PACKAGE = ["mkdir -p dist", "cp -r site/. dist/", 'echo "$COMMIT_ID" > dist/COMMIT'];

/** Creates a pipeline with a manual approval and waits until the approval is open. */
async function atApproval(kind: string) {
  const name = `${kind}-${suffix()}`;
  const deployBucket = bucketName("deploy");
  const repo = makeGitRepo(env, { "site/index.html": `<h1>${kind}</h1>\n` }, "to approve");
  await createPipelineFromJson(env, pipelineJson({ name, repoUrl: repo.url, artifactBucket: bucketName("artifacts"), deployBucket, buildCommands: PACKAGE }));
  await expect
    .poll(() => stateView(env, name), POLL)
    .toMatchObject({ Approve: { latestStatus: "InProgress", actions: { Approve: { status: "InProgress", token: NON_EMPTY } } } });
  const approve = (await stateView(env, name))["Approve"]!;
  return { name, deployBucket, repo, executionId: approve.latestExecutionId, token: approve.actions["Approve"]!.token };
}

describe("manual approvals", () => {
  it("lists a pipeline's pending approvals, records who approved and when, and refuses a second answer", { timeout: 90_000 }, async () => {
    const [a, b] = await Promise.all([atApproval("approve-a"), atApproval("approve-b")]);

    // Each pipeline's open approval, and only its own.
    for (const p of [a, b]) {
      await expect
        .poll(async () => (await env.approvals.listApprovals({ pipelineName: p.name, status: "Pending" })).approvals, POLL)
        .toMatchObject([{ token: p.token, pipelineName: p.name, pipelineExecutionId: p.executionId, stageName: "Approve", actionName: "Approve", status: "Pending", decidedBy: "", customData: "Approve the e2e deploy." }]);
    }

    const before = Date.now();
    await env.sluice.pipelines.putApprovalResult({ pipelineName: a.name, stageName: "Approve", actionName: "Approve", token: a.token, result: { status: "Approved", summary: "ship it" } });
    const after = Date.now();

    const { approvals } = await env.approvals.listApprovals({ pipelineName: a.name });
    expect(approvals).toMatchObject([{ token: a.token, status: "Approved", summary: "ship it", decidedBy: "dev" }]);
    const decidedAt = approvals[0]!.decidedAt === undefined ? 0 : timestampDate(approvals[0]!.decidedAt).getTime();
    expect(decidedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(decidedAt).toBeLessThanOrEqual(after + 1000);
    expect((await env.approvals.listApprovals({ pipelineName: a.name, status: "Pending" })).approvals).toEqual([]);
    expect((await env.approvals.listApprovals({ pipelineName: b.name, status: "Pending" })).approvals.map((x) => x.token)).toEqual([b.token]);

    // A second answer, at the approval service and through the orchestrator, is refused and changes nothing.
    const answer = { pipelineName: a.name, stageName: "Approve", actionName: "Approve", token: a.token, result: { status: "Rejected", summary: "changed my mind" } };
    for (const call of [() => env.approvals.putApprovalResult(answer), () => env.sluice.pipelines.putApprovalResult(answer)]) {
      const again = await rpcError(call);
      expect(again.errorCode, again.message).toBe("ApprovalAlreadyCompletedException");
      expect(again.message).toContain("already approved by dev");
    }

    const done = await finishedExecution(env, a.name, a.executionId);
    expect(done, done.statusSummary).toMatchObject({ status: "Succeeded" });
    expect(await readObject(env.s3, a.deployBucket, "site/dist/COMMIT")).toBe(`${a.repo.first}\n`);
    expect((await env.approvals.listApprovals({ pipelineName: a.name })).approvals).toMatchObject([{ token: a.token, status: "Approved", decidedBy: "dev" }]);
    // The action's history names the approver too.
    const approveAttempts = (await actionAttempts(env, a.name, a.executionId)).filter((x) => x.stage === "Approve");
    expect(approveAttempts).toMatchObject([{ status: "Succeeded", updatedBy: "dev" }]);
  });
});
