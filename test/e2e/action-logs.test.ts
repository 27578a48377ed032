// Live action logs on a whole cluster: a Build (Commands) action prints its lines slowly — each
// waits for a gate the test opens — and prints a SECRET environment variable raw, base64 and
// URL-encoded. `GetActionLog` with follow must deliver every line while the action still runs
// (the next line cannot be written before the test opens its gate), end when the action ends,
// and serve the finished action's stored log afterwards; no form of the secret may appear in a
// streamed line, in SLUICE_LOGS, in the stored log object or in a finished action's answer.
import { connectBus } from "@sluice/bus";
import { GrpcStatus } from "@sluice/grpc";
import { noopLogger } from "@sluice/domain";
import type { GetActionLogResponse } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { POLL, bucketName, finishedExecution, makeGate, makeGitRepo, pipelineDocument, rpcError, stateView, suffix, useCluster } from "./helpers.js";

const env = useCluster("logs");

// Spaces, a slash and a plus, so the base64 and URL-encoded forms differ from the raw one.
const SECRET = `log canary/${suffix()}+Zq9`;

/** The forms a leak could take: raw, base64 (padded, unpadded, URL-safe), URL-encoded (%20 and +). */
function formsOf(value: string): string[] {
  const b64 = Buffer.from(value, "utf8").toString("base64");
  return [...new Set([value, b64, b64.replace(/=+$/, ""), Buffer.from(value, "utf8").toString("base64url"), encodeURIComponent(value), encodeURIComponent(value).replace(/%20/g, "+")])];
}

/** The forms of the secret `text` holds; [] when none. */
function leaks(text: string): string[] {
  return formsOf(SECRET).filter((f) => text.includes(f));
}

function gateWait(variable: string): string {
  return `until [ -e "$${variable}" ]; do sleep 0.1; done`;
}

describe("live action logs", () => {
  it("follows a slowly printing action line by line before it ends, stores its log, and never shows a secret", { timeout: 180_000 }, async () => {
    const name = `logs-${suffix()}`;
    const repo = makeGitRepo(env, { "site/index.html": "<h1>logs</h1>\n" }, "first");
    const gate1 = makeGate(env);
    const gate2 = makeGate(env);
    const doc = pipelineDocument({
      name,
      repoUrl: repo.url,
      artifactBucket: bucketName("artifacts"),
      deployBucket: bucketName("deploy"),
      approval: false,
      buildEnv: { GATE1: gate1.path, GATE2: gate2.path },
      buildCommands: [
        "echo line-1",
        'echo "raw: $TOKEN"',
        'printf %s "$TOKEN" | base64 -w0; echo',
        "jq -rn --arg v \"$TOKEN\" '$v|@uri'",
        'echo "on stderr: $TOKEN" >&2',
        gateWait("GATE1"),
        "echo line-2",
        gateWait("GATE2"),
        "echo line-3",
        "mkdir -p dist && cp -r site/. dist/",
      ],
    });
    const build = doc.pipeline.stages[1]!["actions"] as Record<string, unknown>[];
    (build[0]!["environmentVariables"] as unknown[]).push({ name: "TOKEN", value: SECRET, type: "SECRET" });
    await env.sluice.pipelines.createPipeline(doc);

    await expect.poll(async () => (await stateView(env, name))["Build"]?.actions["Build"]?.status, POLL).toBe("InProgress");
    const aeId = (await stateView(env, name))["Build"]!.actions["Build"]!.executionId;
    const executionId = (await stateView(env, name))["Build"]!.latestExecutionId;

    // Follow the running action; lines are collected as they arrive.
    const received: string[] = [];
    const messages: GetActionLogResponse[] = [];
    const followed = (async () => {
      for await (const m of env.sluice.pipelines.getActionLog({ pipelineName: name, actionExecutionId: aeId, follow: true })) {
        messages.push(m);
        received.push(...m.lines.map((l) => l.text));
      }
    })();

    // line-1 arrives while the action waits at its first gate: before it ended, and alone.
    await expect.poll(() => received, POLL).toContain("line-1");
    await expect.poll(() => received.some((l) => l.startsWith("on stderr:")), POLL).toBe(true);
    expect((await stateView(env, name))["Build"]!.actions["Build"]!.status).toBe("InProgress");
    expect(received).not.toContain("line-2");
    expect(messages.every((m) => m.status === "InProgress" && m.source === "stream")).toBe(true);

    gate1.open();
    await expect.poll(() => received, POLL).toContain("line-2");
    expect((await stateView(env, name))["Build"]!.actions["Build"]!.status).toBe("InProgress");
    expect(received).not.toContain("line-3");

    gate2.open();
    // The follow ends by itself once the action has ended.
    await followed;
    const streamedLines = messages.flatMap((m) => m.lines);
    expect(received).toContain("line-3");
    expect(received).toContain("job succeeded");
    // The runner's own lines: the input it prepared and the output it stored.
    expect(received).toContain("input artifact SourceOutput ready in the working directory");
    expect(received.some((l) => /^output artifact BuildOutput stored \(\d+ bytes\)$/.test(l))).toBe(true);
    expect(streamedLines.filter((l) => l.stream === "system").map((l) => l.text)).toContain("job succeeded");
    expect(messages.at(-1)?.status).toBe("Succeeded");
    expect(received).toContain("raw: ***");
    expect(received).toContain("on stderr: ***");
    expect(received.indexOf("line-1")).toBeLessThan(received.indexOf("line-2"));
    expect(received.indexOf("line-2")).toBeLessThan(received.indexOf("line-3"));
    expect(streamedLines.map((l) => Number(l.sequence))).toEqual(streamedLines.map((_l, i) => i + 1));
    expect(streamedLines.find((l) => l.text.startsWith("on stderr:"))?.stream).toBe("stderr");
    expect(leaks(received.join("\n"))).toEqual([]);
    expect(await finishedExecution(env, name, executionId)).toMatchObject({ status: "Succeeded" });

    // The finished action's log comes from the store, the same lines.
    const finished: GetActionLogResponse[] = [];
    for await (const m of env.sluice.pipelines.getActionLog({ pipelineName: name, actionExecutionId: aeId, follow: true })) finished.push(m);
    expect(finished.every((m) => m.source === "store" && m.status === "Succeeded")).toBe(true);
    const storedLines = finished.flatMap((m) => m.lines.map((l) => l.text));
    expect(storedLines).toEqual(received);
    expect(leaks(JSON.stringify(finished, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)))).toEqual([]);

    // The stored object itself: the artifact <aeId>/log.1.
    const grant = await env.artifacts.createDownloadGrant({ artifactId: `${aeId}/log.1` });
    const object = await (await fetch(grant.grant?.url ?? "")).text();
    expect(object).toContain('"text":"line-3"');
    expect(leaks(object)).toEqual([]);

    // Every message of SLUICE_LOGS of this cluster.
    const bus = await connectBus({ servers: env.cluster.nats?.url ?? env.servers.natsUrl, name: "e2e-log-scan", logger: noopLogger, prefix: env.busPrefix, credentials: env.cluster.nats?.admin });
    try {
      const info = await bus.jsm.streams.info(bus.streams.logs);
      expect(info.state.messages).toBeGreaterThan(3);
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await bus.jsm.streams.getMessage(bus.streams.logs, { seq }).catch(() => null);
        if (m === null) continue;
        expect(leaks(Buffer.from(m.data).toString("utf8")), `${m.subject} #${seq}`).toEqual([]);
      }
    } finally {
      await bus.close();
    }

    // Both views link the log.
    const link = `sluice:logs:${name}:${aeId}`;
    const details = await env.sluice.pipelines.listActionExecutions({ pipelineName: name, filter: { pipelineExecutionId: executionId } });
    expect(details.actionExecutionDetails.find((d) => d.actionName === "Build")?.output?.executionResult?.logStreamArn).toBe(link);
    const state = await env.sluice.pipelines.getPipelineState({ name });
    const buildState = state.stageStates.find((s) => s.stageName === "Build")?.actionStates.find((a) => a.actionName === "Build");
    expect(buildState?.latestExecution?.logStreamArn).toBe(link);
    for await (const m of env.sluice.pipelines.watchPipelineExecution({ pipelineName: name, pipelineExecutionId: executionId })) {
      const watched = m.snapshot?.stageStates.find((s) => s.stageName === "Build")?.actionStates.find((a) => a.actionName === "Build");
      expect(watched?.latestExecution?.logStreamArn).toBe(link);
    }
  });

  it("refuses unknown pipelines and action executions, and missing fields, naming them", { timeout: 60_000 }, async () => {
    const drain = async (req: { pipelineName: string; actionExecutionId: string }): Promise<void> => {
      for await (const m of env.sluice.pipelines.getActionLog({ ...req, follow: false })) void m;
    };
    const noPipeline = await rpcError(() => drain({ pipelineName: `nope-${suffix()}`, actionExecutionId: "ae-1" }));
    expect(noPipeline.code).toBe(GrpcStatus.NOT_FOUND);
    expect(noPipeline.errorCode).toBe("PipelineNotFoundException");
    expect(noPipeline.message).toContain("nope-");

    const name = `logs-err-${suffix()}`;
    const repo = makeGitRepo(env, { "site/index.html": "x\n" }, "first");
    await env.sluice.pipelines.createPipeline(
      pipelineDocument({ name, repoUrl: repo.url, artifactBucket: bucketName("artifacts"), deployBucket: bucketName("deploy"), approval: false, buildCommands: ["mkdir -p dist && cp -r site/. dist/"] }),
    );
    const noAction = await rpcError(() => drain({ pipelineName: name, actionExecutionId: "not-an-action-execution" }));
    expect(noAction.code).toBe(GrpcStatus.NOT_FOUND);
    expect(noAction.errorCode).toBe("ActionExecutionNotFoundException");
    expect(noAction.violations.map((v) => v.field)).toEqual(["actionExecutionId"]);

    const missing = await rpcError(() => drain({ pipelineName: "", actionExecutionId: "" }));
    expect(missing.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(missing.violations.map((v) => v.field).sort()).toEqual(["actionExecutionId", "pipelineName"]);
    await expect.poll(async () => (await stateView(env, name))["Deploy"]?.latestStatus, POLL).toBe("Succeeded");
  });
});
