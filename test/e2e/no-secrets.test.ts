// Canaries: a SECRET environment variable on a Commands action (printed raw, base64 and URL-encoded by
// the build, and exported as an output variable), a repository URL with a password, and an approval
// token, planted in real runs on a whole cluster (five service processes at debug level, real NATS,
// MongoDB and MinIO). Then every output is scanned: every gRPC view, every message on SLUICE_EVENTS,
// every stored document, every service log. None of them may hold a canary in any form, except where
// the value must be stored to be used (listed at `MUST_HOLD`).
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { inflateRawSync } from "node:zlib";
import { connectBus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { decodeOutbox } from "@sluice/orchestrator";
import type { RuntimeDoc } from "@sluice/orchestrator";
import { CLUSTER_SERVICES } from "@sluice/testkit";
import { Binary, MongoClient } from "mongodb";
import { describe, expect, it } from "vitest";
import { NON_EMPTY, POLL, bucketName, finishedExecution, makeGitRepo, pipelineDocument, stateView, suffix, useCluster } from "./helpers.js";

const env = useCluster("secrets", {
  serviceEnv: Object.fromEntries(CLUSTER_SERVICES.map((s) => [s, { LOG_LEVEL: "debug" }])),
});

// Spaces, a slash and a plus, so the base64 and URL-encoded forms differ from the raw one.
const SECRET = `sl canary/${suffix()}+Zq9`;
const URL_PASSWORD = `pw-canary-${suffix()}`;

/** The forms a leak could take: raw, base64 (padded, unpadded, URL-safe), URL-encoded (%20 and +). */
function formsOf(value: string): string[] {
  const b64 = Buffer.from(value, "utf8").toString("base64");
  return [...new Set([value, b64, b64.replace(/=+$/, ""), Buffer.from(value, "utf8").toString("base64url"), encodeURIComponent(value), encodeURIComponent(value).replace(/%20/g, "+")])];
}

/** Which canary (and which form of it) `text` holds, for a readable failure; [] when none. */
function leaks(text: string, canaries: Record<string, string>): string[] {
  return Object.entries(canaries).flatMap(([what, value]) => formsOf(value).filter((f) => text.includes(f)).map((f) => `${what} as ${JSON.stringify(f)}`));
}

/** JSON of anything the clients return (protobuf messages with bigint timestamps). */
function text(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Binary ? inflated(v) : v));
}

/** A Binary field is the deflated runtime state (`stateZ`); scan what it holds. */
function inflated(b: Binary): unknown {
  try {
    return JSON.parse(inflateRawSync(b.buffer).toString("utf8")) as unknown;
  } catch {
    return Buffer.from(b.buffer).toString("base64");
  }
}

/**
 * Where a canary must be stored for Sluice to use it, and is allowed:
 * - the pipeline declaration (`pipelines`, `pipeline_versions`) holds the SECRET and the repository URL;
 * - the runtime document's pipeline spec (`spec`, `retainedSpecs`) and its job outbox entries: the job
 *   message carries them to the runner (`SLUICE_JOBS`, consumed and gone);
 * - the source poller's cursor holds the repository URL it polls, and declaration events (kind
 *   `declaration`) carry it to the poller (their SECRETs are masked);
 * - approval tokens are scanned in the logs only: the approval service keeps them to check answers, and
 *   AWS shows an open approval's token (GetPipelineState) and a decided one as the action's
 *   externalExecutionId (views, events, the archive), when it can no longer answer anything.
 */
const MUST_HOLD = "declaration, runtime spec and job outbox, poller cursor, declaration events; approval tokens: anywhere but logs";

describe("no secrets in views, events, stored documents or logs", () => {
  it("keeps a SECRET env var, a repository URL's password and an approval token out of every output", { timeout: 180_000 }, async () => {
    const name = `canary-${suffix()}`;
    const repo = makeGitRepo(env, { "site/index.html": "<h1>canary</h1>\n" }, "first");
    const repoUrl = `file://bob:${URL_PASSWORD}@localhost${repo.dir}`;
    const doc = pipelineDocument({
      name,
      repoUrl,
      artifactBucket: bucketName("artifacts"),
      deployBucket: bucketName("deploy"),
      buildCommands: [
        'echo "raw: $TOKEN"',
        'printf %s "$TOKEN" | base64',
        'printf %s "$TOKEN" | base64 -w0 | tr -d "=" ; echo',
        "jq -rn --arg v \"$TOKEN\" '$v|@uri'",
        'echo "error: could not use $TOKEN" >&2',
        "mkdir -p dist && cp -r site/. dist/",
        'export LEAK="$TOKEN"',
      ],
    });
    const build = doc.pipeline.stages[1]!["actions"] as Record<string, unknown>[];
    const buildAction = build[0]!;
    (buildAction["environmentVariables"] as unknown[]).push({ name: "TOKEN", value: SECRET, type: "SECRET" });
    buildAction["outputVariables"] = ["LEAK"];
    buildAction["namespace"] = "BuildVariables";
    const created = await env.sluice.pipelines.createPipeline(doc);
    expect(text(created)).not.toContain(SECRET);

    // The first run (CreatePipeline) stops at the approval: its token is the third canary.
    await expect.poll(() => stateView(env, name), POLL).toMatchObject({ Approve: { latestStatus: "InProgress", actions: { Approve: { status: "InProgress", token: NON_EMPTY } } } });
    const approve = (await stateView(env, name))["Approve"]!;
    const token = approve.actions["Approve"]!.token;
    const first = approve.latestExecutionId;
    await env.sluice.pipelines.putApprovalResult({ pipelineName: name, stageName: "Approve", actionName: "Approve", token, result: { status: "Approved", summary: "ok" } });
    expect(await finishedExecution(env, name, first)).toMatchObject({ status: "Succeeded" });

    // The build's output variable was the secret: stored masked.
    const details = await env.sluice.pipelines.listActionExecutions({ pipelineName: name, filter: { pipelineExecutionId: first } });
    expect(details.actionExecutionDetails.find((d) => d.actionName === "Build")?.output?.outputVariables).toEqual({ LEAK: "****" });

    // A commit the poller sees: its trigger detail names the repository without the password.
    const second = repo.commit({ "site/index.html": "<h1>two</h1>\n" }, "second");
    await expect
      .poll(async () => (await env.sluice.pipelines.listPipelineExecutions({ pipelineName: name })).pipelineExecutionSummaries.map((s) => s.trigger?.triggerType), POLL)
      .toContain("PollForSourceChanges");
    const polled = (await env.sluice.pipelines.listPipelineExecutions({ pipelineName: name })).pipelineExecutionSummaries.find((s) => s.trigger?.triggerType === "PollForSourceChanges")!;
    expect(polled.trigger?.triggerDetail).toBe(`file://localhost${repo.dir}#main`);
    await expect.poll(() => stateView(env, name), POLL).toMatchObject({ Approve: { latestExecutionId: polled.pipelineExecutionId, actions: { Approve: { status: "InProgress" } } } });
    const secondToken = (await stateView(env, name))["Approve"]!.actions["Approve"]!.token;
    await env.sluice.pipelines.putApprovalResult({ pipelineName: name, stageName: "Approve", actionName: "Approve", token: secondToken, result: { status: "Rejected", summary: "no" } });
    expect(await finishedExecution(env, name, polled.pipelineExecutionId)).toMatchObject({ status: "Failed" });
    expect(second).toMatch(/^[0-9a-f]{40}$/);

    const secrets = { SECRET, URL_PASSWORD };
    const everything = { ...secrets, approvalToken: token, secondApprovalToken: secondToken };

    // 1. Every gRPC view.
    const p = env.sluice.pipelines;
    const executions = (await p.listPipelineExecutions({ pipelineName: name })).pipelineExecutionSummaries;
    const views: Record<string, unknown> = {
      GetPipeline: await p.getPipeline({ name }),
      GetPipelineV1: await p.getPipeline({ name, version: 1 }),
      GetPipelineState: await p.getPipelineState({ name }),
      ListPipelineExecutions: executions,
      ListActionExecutions: await p.listActionExecutions({ pipelineName: name }),
      ListPipelines: await p.listPipelines({}),
    };
    for (const e of executions) {
      views[`GetPipelineExecution ${e.pipelineExecutionId}`] = await p.getPipelineExecution({ pipelineName: name, pipelineExecutionId: e.pipelineExecutionId });
      const watched: unknown[] = [];
      for await (const m of p.watchPipelineExecution({ pipelineName: name, pipelineExecutionId: e.pipelineExecutionId })) watched.push(m);
      views[`WatchPipelineExecution ${e.pipelineExecutionId}`] = watched;
    }
    // Approval tokens are not scanned in views, events and documents: AWS shows an open approval's token
    // (GetPipelineState) and a decided one as the action's externalExecutionId, when it can answer nothing.
    for (const [view, answer] of Object.entries(views)) expect(leaks(text(answer), secrets), view).toEqual([]);
    // GetPipeline shows that the values are set, not what they are.
    const shown = (views["GetPipeline"] as { pipeline?: { stages: { actions: { configuration: Record<string, string>; environmentVariables: { name: string; value: string }[] }[] }[] } }).pipeline;
    expect(shown?.stages[0]?.actions[0]?.configuration["RepositoryUrl"]).toBe(`file://****@localhost${repo.dir}`);
    expect(shown?.stages[1]?.actions[0]?.environmentVariables.find((v) => v.name === "TOKEN")?.value).toBe("****");

    // 2. Every message on SLUICE_EVENTS of this cluster.
    // The cluster's own authorized nats-server, as the admin user.
    const bus = await connectBus({
      servers: env.cluster.nats?.url ?? env.servers.natsUrl,
      name: "e2e-canary-scan",
      logger: noopLogger,
      prefix: env.busPrefix,
      credentials: env.cluster.nats?.admin,
    });
    try {
      const info = await bus.jsm.streams.info(bus.streams.events);
      expect(info.state.messages).toBeGreaterThan(10);
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await bus.jsm.streams.getMessage(bus.streams.events, { seq }).catch(() => null);
        if (m === null) continue;
        const body = Buffer.from(m.data).toString("utf8");
        const declaration = m.subject.endsWith(".declaration");
        expect(leaks(body, declaration ? { SECRET } : secrets), `${m.subject} #${seq}`).toEqual([]);
      }
    } finally {
      await bus.close();
    }

    // 3. Every stored document of the cluster's databases.
    const mongo = await MongoClient.connect(env.servers.mongoUrl);
    try {
      const prefix = env.busPrefix.replace(/-/g, "_");
      const dbs = (await mongo.db().admin().listDatabases()).databases.map((d) => d.name).filter((n) => n.startsWith(prefix));
      expect(dbs.length).toBeGreaterThanOrEqual(4);
      for (const dbName of dbs) {
        const db = mongo.db(dbName);
        for (const { name: coll } of await db.listCollections().toArray()) {
          for (const stored of await db.collection(coll).find({}).toArray()) {
            const where = `${dbName}.${coll} ${String(stored["_id"])}`;
            if (coll === "pipelines" || coll === "pipeline_versions") continue; // MUST_HOLD: the declaration
            if (coll === "cursors") {
              // MUST_HOLD: the URL the poller polls; nothing else of the cursor may hold it.
              const { repositoryUrl, ...rest } = stored;
              expect(repositoryUrl).toBe(repoUrl);
              expect(leaks(text(rest), secrets), where).toEqual([]);
              continue;
            }
            if (coll === "source_actions") {
              // MUST_HOLD: the URL webhooks resolve heads and read definitions from; nothing else may hold it.
              const { configuration, git, ...rest } = stored as { configuration?: Record<string, unknown>; git?: { repositoryUrl?: unknown } };
              const { RepositoryUrl, ...otherConfiguration } = configuration ?? {};
              expect([RepositoryUrl, git?.repositoryUrl]).toEqual([repoUrl, repoUrl]);
              expect(leaks(text({ ...rest, configuration: otherConfiguration }), secrets), where).toEqual([]);
              continue;
            }
            if (["approvals", "decisions", "audit"].includes(coll)) {
              expect(leaks(text(stored), secrets), where).toEqual([]); // MUST_HOLD: the token
              continue;
            }
            if (coll === "runtime") {
              const state = stored["stateZ"] instanceof Binary ? (inflated(stored["stateZ"]) as Record<string, unknown>) : {};
              delete state["spec"]; // MUST_HOLD: the spec the jobs are built from
              delete state["retainedSpecs"];
              // Payloads are protobuf binary: a canary in one of its strings shows in the bytes as text.
              const outbox = decodeOutbox(stored as unknown as RuntimeDoc)
                .filter((e) => e.type !== "job" && !e.subject.endsWith(".declaration"))
                .map((e) => ({ ...e, payload: Buffer.from(e.payload).toString("utf8") }));
              expect(leaks(text({ ...stored, stateZ: state, outbox }), secrets), where).toEqual([]);
              continue;
            }
            expect(leaks(text(stored), secrets), where).toEqual([]);
          }
        }
      }
    } finally {
      await mongo.close();
    }

    // 4. Every log line of every service (at debug level: the build's output lines included).
    const files = readdirSync(env.logDir).filter((f) => f.endsWith(".log"));
    expect(files.length).toBeGreaterThanOrEqual(5);
    const runnerLog = readFileSync(join(env.logDir, "action-runner.log"), "utf8");
    expect(runnerLog).toContain("raw: ***");
    for (const file of files) {
      const lines = readFileSync(join(env.logDir, file), "utf8");
      expect(leaks(lines, everything), `${file} (allowed only in: ${MUST_HOLD})`).toEqual([]);
    }
    // The logs still say which approval was decided, by a reference that cannot answer it.
    expect(readFileSync(join(env.logDir, "approval.log"), "utf8")).toMatch(/"approval":"sha256:[0-9a-f]{12}"/);
    expect(execFileSync("git", ["-C", repo.dir, "log", "--format=%s", "-1"], { encoding: "utf8" }).trim()).toBe("second");
  });
});
