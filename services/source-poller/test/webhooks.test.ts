import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { request } from "node:http";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import { createClient, SluiceRpcError } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { SourceChangedSchema, SourceService, StateChangeEventSchema } from "@sluice/proto";
import type { PipelineDeclaration, SourceChanged } from "@sluice/proto";
// Types inject("servers"), provided by the testkit global setup.
import type {} from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { startSourcePoller } from "../src/service.js";
import type { SourcePoller } from "../src/service.js";
import { githubSignature } from "../src/webhooks/signatures.js";

const servers = inject("servers");
const prefix = `wh${process.pid}`;
const repo = mkdtempSync(join(tmpdir(), "sluice-webhook-repo-"));
const git = (...args: string[]): string => execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();
const REMOTE = "https://git.example.com/acme/web.git";
const SECRETS = { github: "gh-secret-for-tests", gitlab: "gl-token-for-tests", gitea: "gt-secret-for-tests" };

/** Keeps every log line, so tests can read why a call started nothing. */
const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
function memoryLogger(bound: Record<string, unknown> = {}): Logger {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields: { ...bound, ...fields } });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: (f) => memoryLogger({ ...bound, ...f }) };
}

let bus: Bus;
let poller: SourcePoller;
let admin: Client<typeof SourceService>;
let viewer: Client<typeof SourceService>;
const received: SourceChanged[] = [];
let commitCounter = 0;
const nextCommit = (): string => (++commitCounter).toString(16).padStart(40, "c");

function declaration(name: string, repositoryUrl: string): PipelineDeclaration {
  return {
    name,
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Checkout",
            actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
            configuration: { RepositoryUrl: repositoryUrl, BranchName: "main", PollForSourceChanges: "false" },
            outputArtifacts: [{ name: "Src" }],
          },
        ],
      },
      { name: "Build", actions: [{ name: "Make", actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" }, configuration: {} }] },
    ],
  } as unknown as PipelineDeclaration;
}

async function declare(name: string, decl: PipelineDeclaration | undefined): Promise<void> {
  const event = create(StateChangeEventSchema, {
    eventId: `decl-${name}-${decl === undefined ? "deleted" : "created"}`,
    detailType: "Sluice Pipeline Declaration Change",
    pipeline: name,
    state: decl === undefined ? "DELETED" : "CREATED",
    ...(decl === undefined ? {} : { declaration: decl }),
  });
  await bus.publish(bus.subjects.eventSubject(name, "declaration"), StateChangeEventSchema, event, { msgId: event.eventId });
}

/** POSTs to the receiver and answers status and body text. */
function post(path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${poller.webhookBaseUrl}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** POSTs a body of `chunks` x 16 KiB without Content-Length (chunked), as a sender that never says how much is coming. */
function postChunked(path: string, chunks: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(`${poller.webhookBaseUrl}${path}`, { method: "POST", headers: { "transfer-encoding": "chunked" } }, (res) => {
      answered = true;
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    // Once answered, the receiver closes the connection: later writes may fail, as they should.
    req.on("error", (err) => (answered ? undefined : reject(err)));
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    let written = 0;
    const writeNext = (): void => {
      if (answered || written >= chunks) {
        if (!answered) req.end();
        return;
      }
      written++;
      req.write(chunk, writeNext);
    };
    writeNext();
  });
}

function pushPayload(commit: string, branch = "main", url = REMOTE): string {
  return JSON.stringify({ ref: `refs/heads/${branch}`, after: commit, repository: { clone_url: url }, commits: [{ id: commit, added: ["a.txt"], modified: [], removed: [] }] });
}

async function rpcError(p: Promise<unknown>): Promise<SluiceRpcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof SluiceRpcError)) throw new Error(`expected an RPC error, got ${String(err)}`);
  return err;
}

const awaitRevision = (revision: string): Promise<void> => expect.poll(() => received.map((r) => r.revision?.revisionId), { timeout: 15_000 }).toContain(revision);

beforeAll(async () => {
  git("init", "-q", "-b", "main");
  writeFileSync(join(repo, "a.txt"), "a");
  git("add", "-A");
  git("commit", "-qm", "a");
  bus = await connectBus({ servers: servers.natsUrl, name: "webhook-test", logger: memoryLogger(), prefix });
  await bus.ensureStreams();
  poller = await startSourcePoller(
    {
      natsUrl: servers.natsUrl,
      mongoUrl: servers.mongoUrl,
      mongoDb: `sluice_sources_${prefix}`,
      grpcHost: "127.0.0.1",
      grpcPort: 0,
      authTokens: "dev=admin:dev-token,v=viewer:viewer-token",
      logLevel: "warn",
      shutdownGraceMs: 2000,
      pollIntervalMs: 3_600_000,
      gitTimeoutMs: 10_000,
      busPrefix: prefix,
      webhooks: { githubSecret: SECRETS.github, gitlabToken: SECRETS.gitlab, giteaSecret: SECRETS.gitea, maxBodyBytes: 64 * 1024 },
    },
    { logger: memoryLogger() },
  );
  admin = createClient(SourceService, `127.0.0.1:${poller.port}`, { token: "dev-token", deadlineMs: 10_000 });
  viewer = createClient(SourceService, `127.0.0.1:${poller.port}`, { token: "viewer-token", deadlineMs: 10_000 });
  await bus.consume({
    stream: bus.streams.sources,
    durable: "test-webhook-sources",
    filterSubject: bus.subjects.streamFilter("sources"),
    schema: SourceChangedSchema,
    handler: (msg) => {
      received.push(msg);
      return Promise.resolve();
    },
  });
  await declare("web", declaration("web", `file://${repo}`));
  await declare("hooks", declaration("hooks", REMOTE));
  // The declarations arrive asynchronously; PutWebhook knows a pipeline once they are applied.
  for (const name of ["web", "hooks"]) {
    await vi.waitFor(
      async () => {
        const err = await rpcError(admin.putWebhook({ webhook: { name: "probe", targetPipeline: name, targetAction: "Nope", authentication: "UNAUTHENTICATED", authenticationConfiguration: {} } }));
        if (err.errorCode !== "ValidationException") throw new Error(`pipeline ${name} not known yet: ${err.message}`);
      },
      { timeout: 15_000, interval: 100 },
    );
  }
});

afterAll(async () => {
  admin.close();
  viewer.close();
  await poller.stop(2000);
  await bus.close();
  rmSync(repo, { recursive: true, force: true });
});

describe("webhook API", () => {
  it("names the field of every invalid part", async () => {
    const base = { name: "w", targetPipeline: "web", targetAction: "Checkout", authentication: "UNAUTHENTICATED", authenticationConfiguration: {} };
    let err = await rpcError(admin.putWebhook({ webhook: { ...base, name: "bad name", filters: Array.from({ length: 6 }, () => ({ jsonPath: "$.ref", matchEquals: "x" })) } }));
    expect(err.errorCode).toBe("ValidationException");
    expect(err.violations.map((v) => v.field)).toEqual(["webhook.name", "webhook.filters"]);

    err = await rpcError(admin.putWebhook({ webhook: { ...base, filters: [{ jsonPath: "ref", matchEquals: "x" }] } }));
    expect(err.errorCode).toBe("InvalidWebhookFilterPatternException");
    expect(err.violations[0]?.field).toBe("webhook.filters[0].jsonPath");

    err = await rpcError(admin.putWebhook({ webhook: { ...base, filters: [{ jsonPath: "$.".padEnd(151, "a"), matchEquals: "x" }] } }));
    expect(err.violations[0]).toEqual({ field: "webhook.filters[0].jsonPath", message: "must be 1-150 characters" });

    err = await rpcError(admin.putWebhook({ webhook: { ...base, authentication: "GITHUB_HMAC" } }));
    expect(err.errorCode).toBe("InvalidWebhookAuthenticationParametersException");
    expect(err.violations[0]?.field).toBe("webhook.authenticationConfiguration.SecretToken");

    err = await rpcError(admin.putWebhook({ webhook: { ...base, authentication: "IP", authenticationConfiguration: { allowedIpRange: "10.0.0.0/40" } } }));
    expect(err.errorCode).toBe("InvalidWebhookAuthenticationParametersException");
    expect(err.violations[0]?.field).toBe("webhook.authenticationConfiguration.AllowedIPRange");

    err = await rpcError(admin.putWebhook({ webhook: { ...base, authenticationConfiguration: { secretToken: "s" } } }));
    expect(err.errorCode).toBe("InvalidWebhookAuthenticationParametersException");

    err = await rpcError(admin.putWebhook({ webhook: { ...base, authentication: "BASIC" } }));
    expect(err.violations[0]?.field).toBe("webhook.authentication");

    err = await rpcError(admin.putWebhook({ webhook: { ...base, targetPipeline: "nope" } }));
    expect(err.errorCode).toBe("PipelineNotFoundException");
    expect(err.violations[0]?.field).toBe("webhook.targetPipeline");

    err = await rpcError(admin.putWebhook({ webhook: { ...base, targetAction: "Make" } }));
    expect(err.errorCode).toBe("ValidationException");
    expect(err.violations[0]?.field).toBe("webhook.targetAction");

    err = await rpcError(viewer.putWebhook({ webhook: base }));
    expect(err.errorCode).toBe("AccessDeniedException");
  });

  it("masks the secret, gives a new URL on every put, and registers only known webhooks", async () => {
    const webhook = {
      name: "masked",
      targetPipeline: "web",
      targetAction: "Checkout",
      filters: [{ jsonPath: "$.ref", matchEquals: "refs/heads/{BranchName}" }],
      authentication: "GITHUB_HMAC",
      authenticationConfiguration: { secretToken: "top-secret" },
    };
    const first = (await admin.putWebhook({ webhook, tags: [{ key: "team", value: "web" }] })).webhook;
    expect(first?.definition?.authenticationConfiguration?.secretToken).toBe("****");
    expect(first?.url).toMatch(new RegExp(`^${poller.webhookBaseUrl}/trigger\\?t=[A-Za-z0-9_-]{43}&v=1$`));
    expect(first?.arn).toBe("arn:sluice:codepipeline:local:000000000000:webhook:masked");
    const listed = (await admin.listWebhooks({})).webhooks.find((w) => w.definition?.name === "masked");
    expect(listed?.definition?.authenticationConfiguration?.secretToken).toBe("****");
    expect(JSON.stringify(listed)).not.toContain("top-secret");

    // Putting back what was read keeps the secret; the URL changes and the old one is dead.
    const second = (await admin.putWebhook({ webhook: { ...webhook, authenticationConfiguration: { secretToken: "****" } } })).webhook;
    expect(second?.url).not.toBe(first?.url);
    expect((await post(new URL(first?.url ?? "").pathname + new URL(first?.url ?? "").search, "{}")).status).toBe(404);
    const body = pushPayload(nextCommit());
    const signed = await post(new URL(second?.url ?? "").pathname + new URL(second?.url ?? "").search, body, { "x-hub-signature-256": githubSignature("top-secret", body) });
    expect(signed.status).toBe(200);

    expect((await rpcError(admin.registerWebhookWithThirdParty({ webhookName: "nope" }))).errorCode).toBe("WebhookNotFoundException");
    expect((await rpcError(admin.deregisterWebhookWithThirdParty({ webhookName: "nope" }))).errorCode).toBe("WebhookNotFoundException");
    await admin.registerWebhookWithThirdParty({ webhookName: "masked" });
    expect((await admin.listWebhooks({ maxResults: 100 })).webhooks.find((w) => w.definition?.name === "masked")?.registeredWithThirdParty).toBe(true);
    expect((await rpcError(viewer.listWebhooks({}))).errorCode).toBe("AccessDeniedException");

    await admin.deleteWebhook({ name: "masked" });
    await admin.deleteWebhook({ name: "masked" });
    expect((await admin.listWebhooks({})).webhooks.map((w) => w.definition?.name)).not.toContain("masked");
  });

  it("pages ListWebhooks with NextToken", async () => {
    for (const name of ["page-a", "page-b", "page-c"]) {
      await admin.putWebhook({ webhook: { name, targetPipeline: "web", targetAction: "Checkout", authentication: "UNAUTHENTICATED", authenticationConfiguration: {} } });
    }
    const names: string[] = [];
    let nextToken = "";
    do {
      const page = await admin.listWebhooks({ maxResults: 2, nextToken });
      expect(page.webhooks.length).toBeLessThanOrEqual(2);
      names.push(...page.webhooks.map((w) => w.definition?.name ?? ""));
      nextToken = page.nextToken;
    } while (nextToken !== "");
    expect(names.filter((n) => n.startsWith("page-"))).toEqual(["page-a", "page-b", "page-c"]);
    expect((await rpcError(admin.listWebhooks({ nextToken: "!!" }))).errorCode).toBe("InvalidNextTokenException");
    expect((await rpcError(admin.listWebhooks({ maxResults: 101 }))).violations[0]?.field).toBe("MaxResults");
    for (const name of ["page-a", "page-b", "page-c"]) await admin.deleteWebhook({ name });
  });
});

describe("webhook receiver (AWS-style)", () => {
  let path = "";
  beforeAll(async () => {
    const res = await admin.putWebhook({
      webhook: {
        name: "github",
        targetPipeline: "web",
        targetAction: "Checkout",
        filters: [{ jsonPath: "$.ref", matchEquals: "refs/heads/{BranchName}" }],
        authentication: "GITHUB_HMAC",
        authenticationConfiguration: { secretToken: "hook-secret" },
      },
    });
    const url = new URL(res.webhook?.url ?? "");
    path = url.pathname + url.search;
  });

  it("starts the pipeline with the pushed commit for a signed call whose filters match", async () => {
    const commit = nextCommit();
    const body = pushPayload(commit);
    const res = await post(path, body, { "x-hub-signature-256": githubSignature("hook-secret", body) });
    expect(res.status).toBe(200);
    await awaitRevision(commit);
    const msg = received.find((r) => r.revision?.revisionId === commit);
    expect(msg?.pipelineName).toBe("web");
    expect(msg?.sourceActionName).toBe("Checkout");
    expect(msg?.triggerType).toBe("Webhook");
    expect(msg?.triggerDetail).toBe("arn:sluice:codepipeline:local:000000000000:webhook:github");
    expect(msg?.eventId).toBe(`web:Checkout:${commit}`);
    const item = (await admin.listWebhooks({})).webhooks.find((w) => w.definition?.name === "github");
    expect(item?.lastTriggered).toBeDefined();
  });

  it("sends the repository's .sluice/pipeline.json at the pushed commit, as the poller does", async () => {
    mkdirSync(join(repo, ".sluice"), { recursive: true });
    const text = JSON.stringify({ pipeline: { name: "web", stages: [] } });
    writeFileSync(join(repo, ".sluice", "pipeline.json"), text);
    git("add", "-A");
    git("commit", "-qm", "pipeline definition");
    const commit = git("rev-parse", "HEAD");
    const body = pushPayload(commit);
    expect((await post(path, body, { "x-hub-signature-256": githubSignature("hook-secret", body) })).status).toBe(200);
    await awaitRevision(commit);
    expect(received.find((r) => r.revision?.revisionId === commit)?.definition?.text).toBe(text);
    // A commit git cannot find (a made-up id here) starts on the pipeline as it is, with a warning.
    const unknown = nextCommit();
    const other = pushPayload(unknown);
    expect((await post(path, other, { "x-hub-signature-256": githubSignature("hook-secret", other) })).status).toBe(200);
    await awaitRevision(unknown);
    expect(received.find((r) => r.revision?.revisionId === unknown)?.definition).toBeUndefined();
    expect(lines.some((l) => l.level === "warn" && l.msg.startsWith(".sluice/pipeline.json could not be read") && l.fields["revision"] === unknown)).toBe(true);
    // Later tests start the branch head: leave them one no call has started yet.
    writeFileSync(join(repo, "b.txt"), "b");
    git("add", "-A");
    git("commit", "-qm", "b");
  });

  it("refuses forged, unsigned and oversized calls, and starts nothing for a filter that does not match", async () => {
    const forgedCommit = nextCommit();
    const forged = pushPayload(forgedCommit);
    expect((await post(path, forged, { "x-hub-signature-256": githubSignature("wrong-secret", forged) })).status).toBe(401);
    expect((await post(path, forged)).status).toBe(401);
    // Signed for another body: the signature covers the raw bytes.
    expect((await post(path, forged, { "x-hub-signature-256": githubSignature("hook-secret", `${forged} `) })).status).toBe(401);

    const big = Buffer.alloc(65 * 1024, 0x20);
    expect((await post(path, big, { "x-hub-signature-256": githubSignature("hook-secret", big) })).status).toBe(413);
    expect(await postChunked(path, 64)).toBe(413);

    const otherBranchCommit = nextCommit();
    const otherBranch = pushPayload(otherBranchCommit, "dev");
    expect((await post(path, otherBranch, { "x-hub-signature-256": githubSignature("hook-secret", otherBranch) })).status).toBe(204);
    expect(lines.some((l) => l.msg === "webhook call started nothing: a filter did not match" && l.fields["reason"] === 'filters[0] $.ref is "refs/heads/dev", not "refs/heads/main"')).toBe(true);

    // SourceChanged messages arrive in order: once this one is in, none of the above was published.
    const commit = nextCommit();
    const body = pushPayload(commit);
    expect((await post(path, body, { "x-hub-signature-256": githubSignature("hook-secret", body) })).status).toBe(200);
    await awaitRevision(commit);
    const seen = received.map((r) => r.revision?.revisionId);
    expect(seen).not.toContain(forgedCommit);
    expect(seen).not.toContain(otherBranchCommit);
  });

  it("checks IP ranges on the sender's address, and reads the branch head when the payload names no commit", async () => {
    const put = async (name: string, range: string): Promise<string> => {
      const res = await admin.putWebhook({ webhook: { name, targetPipeline: "web", targetAction: "Checkout", authentication: "IP", authenticationConfiguration: { allowedIpRange: range } } });
      const url = new URL(res.webhook?.url ?? "");
      return url.pathname + url.search;
    };
    const outside = await put("ip-outside", "192.0.2.0/24");
    expect((await post(outside, "{}")).status).toBe(403);
    const inside = await put("ip-inside", "127.0.0.0/8");
    const head = git("rev-parse", "HEAD");
    expect((await post(inside, JSON.stringify({ hello: "world" }))).status).toBe(200);
    await awaitRevision(head);
    expect(received.find((r) => r.revision?.revisionId === head)?.triggerDetail).toBe("arn:sluice:codepipeline:local:000000000000:webhook:ip-inside");
  });
});

describe("native Git host events", () => {
  const giteaSignature = (body: string): string => createHmac("sha256", SECRETS.gitea).update(body).digest("hex");

  it("starts the pipeline with the commit a GitHub, GitLab or Gitea push names", async () => {
    const gh = nextCommit();
    const ghBody = pushPayload(gh, "main", "https://git.example.com/acme/web");
    const ghRes = await post("/hooks/github", ghBody, { "x-github-event": "push", "x-github-delivery": "gh-1", "x-hub-signature-256": githubSignature(SECRETS.github, ghBody) });
    expect(ghRes.status).toBe(200);
    expect(JSON.parse(ghRes.text)).toEqual({ started: ["hooks/Checkout"], revision: gh });

    const gl = nextCommit();
    const glBody = JSON.stringify({ ref: "refs/heads/main", checkout_sha: gl, after: gl, project: { git_http_url: "https://GIT.example.com/acme/web.git" }, commits: [] });
    expect((await post("/hooks/gitlab", glBody, { "x-gitlab-event": "Push Hook", "x-gitlab-event-uuid": "gl-1", "x-gitlab-token": SECRETS.gitlab })).status).toBe(200);

    const gt = nextCommit();
    const gtBody = pushPayload(gt, "main", "https://user:pw@git.example.com/acme/web.git/");
    expect((await post("/hooks/gitea", gtBody, { "x-gitea-event": "push", "x-gitea-delivery": "gt-1", "x-gitea-signature": giteaSignature(gtBody) })).status).toBe(200);

    for (const commit of [gh, gl, gt]) await awaitRevision(commit);
    const msgs = received.filter((r) => [gh, gl, gt].includes(r.revision?.revisionId ?? ""));
    expect(msgs.map((m) => [m.pipelineName, m.sourceActionName, m.triggerType, m.revision?.branch])).toEqual([
      ["hooks", "Checkout", "WebhookV2", "main"],
      ["hooks", "Checkout", "WebhookV2", "main"],
      ["hooks", "Checkout", "WebhookV2", "main"],
    ]);
    expect(msgs[2]?.triggerDetail).not.toContain("pw");
  });

  it("refuses bad credentials and replayed deliveries, and starts nothing for other branches", async () => {
    const replayed = nextCommit();
    const body = pushPayload(replayed, "main", REMOTE);
    const headers = { "x-github-event": "push", "x-github-delivery": "gh-replay", "x-hub-signature-256": githubSignature(SECRETS.github, body) };
    expect((await post("/hooks/github", body, headers)).status).toBe(200);
    await awaitRevision(replayed);
    const before = received.length;
    expect((await post("/hooks/github", body, headers)).status).toBe(409);
    expect(lines.some((l) => l.msg.includes("delivery id seen before") && l.fields["delivery"] === "gh-replay")).toBe(true);

    const refused = nextCommit();
    const refusedBody = pushPayload(refused, "main", REMOTE);
    expect((await post("/hooks/gitlab", refusedBody, { "x-gitlab-event": "Push Hook", "x-gitlab-event-uuid": "gl-bad", "x-gitlab-token": "wrong" })).status).toBe(401);
    expect((await post("/hooks/gitea", refusedBody, { "x-gitea-event": "push", "x-gitea-delivery": "gt-bad", "x-gitea-signature": "00".repeat(32) })).status).toBe(401);
    expect((await post("/hooks/github", refusedBody, { "x-github-event": "push", "x-hub-signature-256": githubSignature(SECRETS.github, refusedBody) })).status).toBe(400);
    const dev = pushPayload(nextCommit(), "dev", REMOTE);
    expect((await post("/hooks/github", dev, { "x-github-event": "push", "x-github-delivery": "gh-dev", "x-hub-signature-256": githubSignature(SECRETS.github, dev) })).status).toBe(204);
    expect(lines.some((l) => l.fields["reason"] === "hooks/Checkout follows branch main, not dev")).toBe(true);

    const last = nextCommit();
    const lastBody = pushPayload(last, "main", REMOTE);
    expect((await post("/hooks/github", lastBody, { "x-github-event": "push", "x-github-delivery": "gh-last", "x-hub-signature-256": githubSignature(SECRETS.github, lastBody) })).status).toBe(200);
    await awaitRevision(last);
    // Only `last` came after the replay: neither the replay nor the refused calls published anything.
    expect(received.slice(before).map((r) => r.revision?.revisionId)).toEqual([last]);
  });
});

describe("native Git host events that start nothing", () => {
  it("answers 204 for pull requests and pings 200, and says why in the log", async () => {
    const pr = JSON.stringify({ action: "opened", pull_request: { head: { ref: "feature", sha: nextCommit() }, base: { ref: "main" } }, repository: { clone_url: REMOTE } });
    const res = await post("/hooks/github", pr, { "x-github-event": "pull_request", "x-github-delivery": "gh-pr-1", "x-hub-signature-256": githubSignature(SECRETS.github, pr) });
    expect(res.status).toBe(204);
    expect(lines.some((l) => l.fields["delivery"] === "gh-pr-1" && String(l.fields["reason"]).includes("pull request events (OPEN feature -> main) start nothing"))).toBe(true);
    const ping = JSON.stringify({ zen: "Keep it logically awesome." });
    expect((await post("/hooks/github", ping, { "x-github-event": "ping", "x-github-delivery": "gh-ping", "x-hub-signature-256": githubSignature(SECRETS.github, ping) })).status).toBe(200);
    expect((await post("/hooks/bitbucket", "{}")).status).toBe(404);
    const get = await new Promise<number>((resolve, reject) => request(`${poller.webhookBaseUrl}/hooks/github`, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      }).on("error", reject).end());
    expect(get).toBe(405);
  });
});

describe("native Git host events under a V2 trigger", () => {
  const LIB = "https://git.example.com/acme/lib.git";

  it("start the pipeline only for pushes and pull requests the trigger's filters match, and log why not", async () => {
    const decl = declaration("triggered", LIB) as unknown as Record<string, unknown>;
    decl["pipelineType"] = "V2";
    decl["triggers"] = [
      {
        providerType: "CodeStarSourceConnection",
        gitConfiguration: {
          sourceActionName: "Checkout",
          push: [{ branches: { includes: ["main"], excludes: [] }, filePaths: { includes: ["src/**"], excludes: [] } }],
          pullRequest: [{ events: ["OPEN"], branches: { includes: ["main"], excludes: [] } }],
        },
      },
    ];
    await declare("triggered", decl as unknown as PipelineDeclaration);
    const push = (commit: string, file: string): string =>
      JSON.stringify({ ref: "refs/heads/main", after: commit, repository: { clone_url: LIB }, commits: [{ id: commit, added: [], modified: [file], removed: [] }] });
    const send = (delivery: string, event: string, body: string): ReturnType<typeof post> =>
      post("/hooks/github", body, { "x-github-event": event, "x-github-delivery": delivery, "x-hub-signature-256": githubSignature(SECRETS.github, body) });

    // A push that touches only docs: the filePaths filter stops it, and the log says so.
    const docs = nextCommit();
    await vi.waitFor(async () => {
      const res = await send(`gh-docs-${docs}-${Date.now()}`, "push", push(docs, "docs/guide.md"));
      if (!lines.some((l) => String(l.fields["reason"]).includes("no changed file passes filePaths"))) throw new Error(`not judged by the trigger yet (${res.status})`);
      expect(res.status).toBe(204);
    }, { timeout: 15_000, interval: 200 });

    const src = nextCommit();
    expect((await send("gh-src", "push", push(src, "src/main.ts"))).status).toBe(200);
    await awaitRevision(src);

    const head = nextCommit();
    const opened = JSON.stringify({ action: "opened", pull_request: { head: { ref: "feature", sha: head }, base: { ref: "main" } }, repository: { clone_url: LIB } });
    expect((await send("gh-pr-open", "pull_request", opened)).status).toBe(200);
    await awaitRevision(head);
    const closed = JSON.stringify({ action: "closed", pull_request: { head: { ref: "feature", sha: nextCommit() }, base: { ref: "main" } }, repository: { clone_url: LIB } });
    expect((await send("gh-pr-closed", "pull_request", closed)).status).toBe(204);

    const started = received.filter((r) => r.pipelineName === "triggered");
    expect(started.map((r) => [r.revision?.revisionId, r.triggerType])).toEqual([
      [src, "WebhookV2"],
      [head, "WebhookV2"],
    ]);
    expect(received.some((r) => r.revision?.revisionId === docs)).toBe(false);
  });
});

describe("a deleted pipeline", () => {
  it("keeps its webhooks, which then start nothing and say why", async () => {
    const res = await admin.putWebhook({ webhook: { name: "orphan", targetPipeline: "hooks", targetAction: "Checkout", authentication: "UNAUTHENTICATED", authenticationConfiguration: {} } });
    const url = new URL(res.webhook?.url ?? "");
    await declare("hooks", undefined);
    await expect.poll(async () => (await post(url.pathname + url.search, pushPayload(nextCommit()))).status, { timeout: 15_000 }).toBe(204);
    const item = (await admin.listWebhooks({})).webhooks.find((w) => w.definition?.name === "orphan");
    expect(item?.errorCode).toBe("PipelineNotFoundException");
    expect(item?.errorMessage).toContain("the pipeline was deleted");
  });
});
