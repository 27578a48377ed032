// Webhooks end to end: a signed GitHub push to the source poller's /hooks/github, and a call to an
// AWS-style webhook made with PutWebhook, each start an execution that builds and deploys the
// pushed commit — not the branch head, which has moved on. The pipeline does not poll
// (PollForSourceChanges=false), so only the webhooks can start it.
import { createHmac } from "node:crypto";
import { createSourceClient } from "@sluice/client";
import { freePort } from "@sluice/testkit";
import { describe, expect, it } from "vitest";
import { POLL, bucketName, createPipelineFromJson, executionsView, makeGitRepo, pipelineDocument, readObject, suffix, useCluster } from "./helpers.js";

const webhookPort = await freePort();
const GITHUB_SECRET = `e2e-${suffix()}-${suffix()}-${suffix()}`;
const env = useCluster("webhooks", { serviceEnv: { "source-poller": { WEBHOOK_PORT: String(webhookPort), WEBHOOK_GITHUB_SECRET: GITHUB_SECRET } } });
const TIMEOUT = { timeout: 120_000 };

const sign = (secret: string, body: string): string => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

async function post(url: string, body: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
  await res.arrayBuffer();
  return res.status;
}

/** A pipeline Source → Build (writes the commit to dist/COMMIT) → Deploy that never polls. */
async function createWebhookPipeline(name: string, repoUrl: string, deployBucket: string): Promise<void> {
  const doc = pipelineDocument({ name, repoUrl, artifactBucket: bucketName("artifacts"), deployBucket, approval: false, buildCommands: ["mkdir -p dist", 'echo "$COMMIT_ID" > dist/COMMIT'] });
  const source = (doc.pipeline.stages[0] as { actions: { configuration: Record<string, string> }[] }).actions[0]!;
  source.configuration["PollForSourceChanges"] = "false";
  await createPipelineFromJson(env, JSON.stringify(doc));
  await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ status: "Succeeded", trigger: "CreatePipeline" }]);
}

describe("webhooks", () => {
  it("a signed GitHub push starts an execution of the pushed commit", TIMEOUT, async () => {
    const name = `gh-push-${suffix()}`;
    const deployBucket = bucketName("deploy");
    const repo = makeGitRepo(env, { "site/index.html": "v1\n" }, "v1");
    await createWebhookPipeline(name, repo.url, deployBucket);
    const pushed = repo.commit({ "site/index.html": "v2\n" }, "v2");
    repo.commit({ "site/index.html": "v3\n" }, "v3 (the head, never pushed to the hook)");

    const body = JSON.stringify({ ref: "refs/heads/main", after: pushed, repository: { clone_url: `${repo.url}.git` }, commits: [{ id: pushed, modified: ["site/index.html"] }] });
    // Answered 204 until the poller has the pipeline's declaration; every attempt is a new delivery.
    await expect
      .poll(() => post(`http://127.0.0.1:${webhookPort}/hooks/github`, body, { "x-github-event": "push", "x-github-delivery": `d-${suffix()}`, "x-hub-signature-256": sign(GITHUB_SECRET, body) }), POLL)
      .toBe(200);
    await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ status: "Succeeded", trigger: "WebhookV2", revisions: [pushed] }, { trigger: "CreatePipeline" }]);
    expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${pushed}\n`);
  });

  it("an AWS-style webhook made with PutWebhook starts an execution of the pushed commit", TIMEOUT, async () => {
    const name = `aws-hook-${suffix()}`;
    const deployBucket = bucketName("deploy");
    const repo = makeGitRepo(env, { "site/index.html": "v1\n" }, "v1");
    await createWebhookPipeline(name, repo.url, deployBucket);
    const sources = createSourceClient({ address: env.cluster.addresses["source-poller"], token: env.cluster.tokens.admin, deadlineMs: 15_000 });
    try {
      const res = await sources.putWebhook({
        webhook: {
          name,
          targetPipeline: name,
          targetAction: "Checkout",
          filters: [{ jsonPath: "$.ref", matchEquals: "refs/heads/{BranchName}" }],
          authentication: "GITHUB_HMAC",
          authenticationConfiguration: { secretToken: "webhook-secret" },
        },
      });
      const url = res.webhook?.url ?? "";
      expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${webhookPort}/trigger\\?t=`));
      const pushed = repo.commit({ "site/index.html": "v2\n" }, "v2");
      repo.commit({ "site/index.html": "v3\n" }, "v3");
      const body = JSON.stringify({ ref: "refs/heads/main", after: pushed });
      expect(await post(url, body, { "x-hub-signature-256": sign("webhook-secret", body) })).toBe(200);
      await expect.poll(() => executionsView(env, name), POLL).toMatchObject([{ status: "Succeeded", trigger: "Webhook", revisions: [pushed] }, { trigger: "CreatePipeline" }]);
      expect(await readObject(env.s3, deployBucket, "site/dist/COMMIT")).toBe(`${pushed}\n`);
      const listed = (await sources.listWebhooks({})).webhooks.find((w) => w.definition?.name === name);
      expect(listed?.lastTriggered).toBeDefined();
    } finally {
      sources.close();
    }
  });
});
