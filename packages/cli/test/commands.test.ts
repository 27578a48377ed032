// The execution-control commands and `sluice watch` against a real gRPC
// server whose PipelineService records what it was asked.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { DomainError, noopLogger } from "@sluice/domain";
import { createServer, createTokenAuthenticator } from "@sluice/grpc";
import type { ServiceImpl, SluiceServer } from "@sluice/grpc";
import { PipelineService, StateChangeEventSchema } from "@sluice/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchPipelineExecutionResponseSchema } from "@sluice/proto";
import { parseArgs, runCommand, runLogs, runWatch, UsageError } from "../src/index.js";
import type { Connection } from "../src/index.js";

const EXEC = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f";
const calls: { method: string; request: unknown }[] = [];
let server: SluiceServer;
let conn: Connection;

type WatchInit = MessageInitShape<typeof WatchPipelineExecutionResponseSchema>;

/** The messages the fake server streams for a watch: snapshot, one change, the end. */
function watchMessages(): WatchInit[] {
  const stage = (status: string | undefined, action: string) => ({
    stageName: "Build",
    actionStates: [{ actionName: action, ...(status === undefined ? {} : { latestExecution: { actionExecutionId: "a1", status } }) }],
    ...(status === undefined ? {} : { latestExecution: { pipelineExecutionId: EXEC, status } }),
  });
  const execution = (status: string) => ({ pipelineName: "web", pipelineVersion: 3, pipelineExecutionId: EXEC, status });
  return [
    { snapshot: { pipelineExecution: execution("InProgress"), stageStates: [stage(undefined, "Compile")] } },
    {
      snapshot: { pipelineExecution: execution("InProgress"), stageStates: [stage("InProgress", "Compile")] },
      event: create(StateChangeEventSchema, { executionId: EXEC, stage: "Build", action: "Compile", state: "STARTED", time: timestampFromMs(Date.UTC(2026, 0, 1, 12, 0, 5)) }),
    },
    {
      snapshot: { pipelineExecution: execution("Succeeded"), stageStates: [stage("Succeeded", "Compile")] },
      event: create(StateChangeEventSchema, { executionId: EXEC, state: "SUCCEEDED", detailType: "CodePipeline Pipeline Execution State Change" }),
    },
  ];
}

beforeAll(async () => {
  const record = (method: string, request: unknown): void => {
    calls.push({ method, request });
  };
  const impl = Object.fromEntries(
    PipelineService.methods.map((m) => [m.localName, () => Promise.reject(new DomainError("ValidationException", `${m.name} is not part of this test`))]),
  ) as unknown as ServiceImpl<typeof PipelineService>;
  impl.startPipelineExecution = (req) => {
    record("StartPipelineExecution", req);
    return Promise.resolve({ pipelineExecutionId: EXEC });
  };
  impl.stopPipelineExecution = (req) => {
    record("StopPipelineExecution", req);
    if (req.reason === "twice") return Promise.reject(new DomainError("DuplicatedStopRequestException", "already stopping"));
    return Promise.resolve({ pipelineExecutionId: req.pipelineExecutionId });
  };
  impl.retryStageExecution = (req) => {
    record("RetryStageExecution", req);
    return Promise.resolve({ pipelineExecutionId: req.pipelineExecutionId });
  };
  impl.retryActionExecution = (req) => {
    record("RetryActionExecution", req);
    return Promise.resolve({ pipelineExecutionId: req.pipelineExecutionId });
  };
  impl.disableStageTransition = (req) => {
    record("DisableStageTransition", req);
    return Promise.resolve({});
  };
  impl.enableStageTransition = (req) => {
    record("EnableStageTransition", req);
    return Promise.resolve({});
  };
  impl.overrideStageCondition = (req) => {
    record("OverrideStageCondition", req);
    if (req.conditionType === "ON_FAILURE") return Promise.reject(new DomainError("ValidationException", "conditionType: must be BEFORE_ENTRY or ON_SUCCESS"));
    return Promise.resolve({});
  };
  impl.putActionRevision = (req) => {
    record("PutActionRevision", req);
    const seen = req.actionRevision?.revisionId === "c0ffee";
    return Promise.resolve({ newRevision: !seen, pipelineExecutionId: EXEC });
  };
  impl.rollbackStage = (req) => {
    record("RollbackStage", req);
    return Promise.resolve({ pipelineExecutionId: "9e8d7c6b-5a4b-4c3d-8e2f-1a0b9c8d7e6f" });
  };
  impl.getPipelineState = (req) => {
    record("GetPipelineState", req);
    return Promise.resolve({
      pipelineName: req.name,
      pipelineVersion: 2,
      stageStates: [
        {
          stageName: "Deploy",
          latestExecution: { pipelineExecutionId: EXEC, status: "InProgress", type: "STANDARD" },
          beforeEntryConditionState: {
            latestExecution: { status: "Overridden", summary: "Overridden by ops" },
            conditionStates: [{ latestExecution: { status: "Overridden" }, ruleStates: [{ ruleName: "Window", latestExecution: { status: "Abandoned" } }] }],
          },
        },
      ],
    });
  };
  impl.listActionExecutions = (req) => {
    record("ListActionExecutions", req);
    return Promise.resolve({
      actionExecutionDetails: [
        {
          pipelineExecutionId: EXEC,
          actionName: "Compile",
          status: "Failed",
          input: { inputArtifacts: [{ name: "Src", s3location: { bucket: "b", key: "k" } }] },
          output: { executionResult: { errorDetails: { code: "JobFailed", message: "exit status 2" } } },
        },
      ],
      nextToken: "more",
    });
  };
  impl.listPipelineExecutions = (req) => {
    record("ListPipelineExecutions", req);
    return Promise.resolve({ pipelineExecutionSummaries: [{ pipelineExecutionId: EXEC, status: "InProgress" }] });
  };
  impl.getActionLog = async function* (req) {
    record("GetActionLog", req);
    const line = (sequence: bigint, stream: string, text: string) => ({ sequence, stream, text, time: timestampFromMs(Date.UTC(2026, 0, 1, 12, 0, Number(sequence))) });
    yield { lines: [line(1n, "system", "job started")], status: "InProgress", source: "stream" };
    await Promise.resolve();
    yield { lines: [line(2n, "stdout", "line-1"), line(3n, "stderr", "warn")], status: "InProgress", source: "stream" };
    yield { lines: [], status: req.follow ? "Failed" : "InProgress", source: "stream" };
  };
  impl.watchPipelineExecution = async function* (req) {
    record("WatchPipelineExecution", req);
    for (const m of watchMessages()) {
      await Promise.resolve();
      yield m;
    }
  };
  server = createServer({
    logger: noopLogger,
    auth: createTokenAuthenticator([{ principal: "ops", roles: ["operator"], token: "ops-token" }]),
    permissions: Object.fromEntries(PipelineService.methods.map((m) => [m.name, ["operator"]])),
  });
  server.add(PipelineService, impl);
  const port = await server.listen("127.0.0.1", 0);
  conn = { address: `127.0.0.1:${port}`, token: "ops-token" };
});

afterAll(async () => {
  await server?.stop(1000);
});

/** Runs a command line and returns what it prints. */
function run(...argv: string[]): Promise<string> {
  return runCommand(parseArgs(argv), conn);
}

function lastRequest(method: string): unknown {
  return calls.filter((c) => c.method === method).at(-1)?.request;
}

describe("sluice execution commands", () => {
  it("start-pipeline-execution passes variables, pinned revisions and the idempotency token", async () => {
    const out = await run(
      "start-pipeline-execution",
      "--name",
      "web",
      "--variables",
      "Env=prod,Region=eu-west-1",
      "--source-revisions",
      "Checkout=COMMIT_ID:4f2a9c1",
      "--client-request-token",
      "release-42",
    );
    expect(out).toBe(EXEC);
    expect(lastRequest("StartPipelineExecution")).toMatchObject({
      name: "web",
      clientRequestToken: "release-42",
      variables: [
        { name: "Env", value: "prod" },
        { name: "Region", value: "eu-west-1" },
      ],
      sourceRevisions: [{ actionName: "Checkout", revisionType: "COMMIT_ID", revisionValue: "4f2a9c1" }],
    });
    await run("start-pipeline-execution", "--name", "web", "--variables", '[{"name":"Tags","value":"a,b"}]');
    expect(lastRequest("StartPipelineExecution")).toMatchObject({ variables: [{ name: "Tags", value: "a,b" }], clientRequestToken: "" });
  });

  it("names the flag a malformed list came in", async () => {
    await expect(run("start-pipeline-execution", "--name", "web", "--source-revisions", "Checkout")).rejects.toThrow(
      new UsageError('--source-revisions: "Checkout" is not actionName=TYPE:value (e.g. Checkout=COMMIT_ID:4f2a9c1)'),
    );
    await expect(run("start-pipeline-execution", "--name", "web", "--variables", "novalue")).rejects.toThrow(UsageError);
    await expect(run("list-action-executions", "--pipeline-name", "web", "--max-results", "0")).rejects.toThrow(new UsageError('--max-results must be a positive integer, got "0"'));
  });

  it("stop-pipeline-execution stops or abandons, with a reason; AWS errors come through", async () => {
    expect(await run("stop-pipeline-execution", "--pipeline-name", "web", "--pipeline-execution-id", EXEC, "--reason", "bad commit")).toBe(
      `stopping ${EXEC} (running actions finish first)`,
    );
    expect(lastRequest("StopPipelineExecution")).toMatchObject({ pipelineName: "web", pipelineExecutionId: EXEC, abandon: false, reason: "bad commit" });
    expect(await run("stop-pipeline-execution", "--pipeline-name", "web", "--pipeline-execution-id", EXEC, "--abandon")).toBe(`abandoned ${EXEC}`);
    expect(lastRequest("StopPipelineExecution")).toMatchObject({ abandon: true, reason: "" });
    await expect(run("stop-pipeline-execution", "--pipeline-name", "web", "--pipeline-execution-id", EXEC, "--reason", "twice")).rejects.toMatchObject({
      errorCode: "DuplicatedStopRequestException",
    });
  });

  it("retry-stage-execution, retry-action-execution and the transition commands send what AWS names", async () => {
    await run("retry-stage-execution", "--pipeline-name", "web", "--stage-name", "Build", "--pipeline-execution-id", EXEC, "--retry-mode", "FAILED_ACTIONS");
    expect(lastRequest("RetryStageExecution")).toMatchObject({ pipelineName: "web", stageName: "Build", pipelineExecutionId: EXEC, retryMode: "FAILED_ACTIONS" });
    await run("retry-action-execution", "--pipeline-name", "web", "--stage-name", "Build", "--action-name", "Compile", "--pipeline-execution-id", EXEC);
    expect(lastRequest("RetryActionExecution")).toMatchObject({ stageName: "Build", actionName: "Compile", pipelineExecutionId: EXEC });
    expect(await run("disable-stage-transition", "--pipeline-name", "web", "--stage-name", "Deploy", "--reason", "Release freeze")).toBe("transition into Deploy disabled");
    expect(lastRequest("DisableStageTransition")).toMatchObject({ pipelineName: "web", stageName: "Deploy", transitionType: "Inbound", reason: "Release freeze" });
    expect(await run("enable-stage-transition", "--pipeline-name", "web", "--stage-name", "Deploy")).toBe("transition into Deploy enabled");
    expect(lastRequest("EnableStageTransition")).toMatchObject({ stageName: "Deploy", transitionType: "Inbound" });
    await expect(run("disable-stage-transition", "--pipeline-name", "web", "--stage-name", "Deploy")).rejects.toThrow(new UsageError("--reason is required"));
  });

  it("override-stage-condition and rollback-stage send what AWS names; rollback-stage prints the new execution", async () => {
    const out = await run("override-stage-condition", "--pipeline-name", "web", "--stage-name", "Deploy", "--pipeline-execution-id", EXEC, "--condition-type", "BEFORE_ENTRY");
    expect(out).toBe("BEFORE_ENTRY condition of stage Deploy overridden");
    expect(lastRequest("OverrideStageCondition")).toMatchObject({ pipelineName: "web", stageName: "Deploy", pipelineExecutionId: EXEC, conditionType: "BEFORE_ENTRY" });
    await expect(run("override-stage-condition", "--pipeline-name", "web", "--stage-name", "Deploy", "--pipeline-execution-id", EXEC)).rejects.toThrow(
      new UsageError("--condition-type is required"),
    );
    await expect(
      run("override-stage-condition", "--pipeline-name", "web", "--stage-name", "Deploy", "--pipeline-execution-id", EXEC, "--condition-type", "ON_FAILURE"),
    ).rejects.toMatchObject({ errorCode: "ValidationException" });
    expect(await run("rollback-stage", "--pipeline-name", "web", "--stage-name", "Deploy", "--target-pipeline-execution-id", EXEC)).toBe("9e8d7c6b-5a4b-4c3d-8e2f-1a0b9c8d7e6f");
    expect(lastRequest("RollbackStage")).toMatchObject({ pipelineName: "web", stageName: "Deploy", targetPipelineExecutionId: EXEC });
  });

  it("put-action-revision sends the revision with a creation time and says whether it was new", async () => {
    const args = ["put-action-revision", "--pipeline-name", "web", "--stage-name", "Source", "--action-name", "Checkout", "--revision-change-id", "PR 7"];
    expect(await run(...args, "--revision-id", "abc1234")).toBe(`new ${EXEC}`);
    expect(lastRequest("PutActionRevision")).toMatchObject({ pipelineName: "web", stageName: "Source", actionName: "Checkout", actionRevision: { revisionId: "abc1234", revisionChangeId: "PR 7" } });
    expect((lastRequest("PutActionRevision") as { actionRevision: { created?: unknown } }).actionRevision.created).toBeDefined();
    expect(await run(...args, "--revision-id", "c0ffee")).toBe(`seen ${EXEC}`);
    await expect(run("put-action-revision", "--pipeline-name", "web")).rejects.toThrow(UsageError);
  });

  it("get-pipeline-state shows each stage's condition checks and their rules", async () => {
    const out = await run("get-pipeline-state", "--name", "web");
    expect(out).toContain("(condition before entry: ⤼ Overridden — Window ⊘)");
  });

  it("list-action-executions prints AWS JSON (s3location) and passes the filter and paging", async () => {
    const out = await run("list-action-executions", "--pipeline-name", "web", "--pipeline-execution-id", EXEC, "--max-results", "5", "--next-token", "abc");
    expect(lastRequest("ListActionExecutions")).toMatchObject({ pipelineName: "web", filter: { pipelineExecutionId: EXEC }, maxResults: 5, nextToken: "abc" });
    const json = JSON.parse(out) as { actionExecutionDetails: { input: { inputArtifacts: { s3location: { bucket: string } }[] } }[]; nextToken: string };
    expect(json.actionExecutionDetails[0]?.input.inputArtifacts[0]?.s3location.bucket).toBe("b");
    expect(json.nextToken).toBe("more");
  });
});

describe("sluice watch", () => {
  it("follows the latest execution, re-rendering the view on each change, to its end", async () => {
    const printed: string[] = [];
    const outcome = await runWatch(parseArgs(["watch", "--pipeline-name", "web"]), conn, { print: (t) => printed.push(t) });
    expect(outcome).toEqual({ executionId: EXEC, status: "Succeeded" });
    expect(lastRequest("ListPipelineExecutions")).toMatchObject({ pipelineName: "web", maxResults: 1 });
    expect(lastRequest("WatchPipelineExecution")).toMatchObject({ pipelineName: "web", pipelineExecutionId: EXEC });
    expect(printed).toHaveLength(3);
    expect(printed[0]).toContain(`Execution ${EXEC} of web (version 3): … InProgress`);
    expect(printed[1]).toMatch(/Compile\s+… InProgress/);
    expect(printed[1]).toContain("[12:00:05] action Build/Compile STARTED");
    expect(printed[2]).toContain("✔ Succeeded");
    expect(printed[2]).toContain("pipeline SUCCEEDED");
  });

  it("redraws in place on a terminal", async () => {
    const printed: string[] = [];
    await runWatch(parseArgs(["watch", "--pipeline-name", "web", "--pipeline-execution-id", EXEC]), conn, { print: (t) => printed.push(t), redraw: true });
    expect(printed.every((p) => p.startsWith("\u001b[H\u001b[2J"))).toBe(true);
  });
});

describe("sluice logs", () => {
  it("prints each line as it arrives, marks the runner's own lines, and reports the action's last status", async () => {
    const printed: string[] = [];
    const outcome = await runLogs(parseArgs(["logs", "--pipeline-name", "web", "--action-execution-id", "a1", "-f"]), conn, { print: (t) => printed.push(t) });
    expect(lastRequest("GetActionLog")).toMatchObject({ pipelineName: "web", actionExecutionId: "a1", follow: true });
    expect(printed).toEqual(["[sluice] job started\n", "line-1\n", "warn\n"]);
    expect(outcome).toEqual({ lines: 3, status: "Failed" });
  });

  it("asks without follow unless -f is given, and prefixes times with --timestamps", async () => {
    const printed: string[] = [];
    await runLogs(parseArgs(["logs", "--pipeline-name", "web", "--action-execution-id", "a1", "--timestamps"]), conn, { print: (t) => printed.push(t) });
    expect(lastRequest("GetActionLog")).toMatchObject({ follow: false });
    expect(printed[1]).toBe("2026-01-01T12:00:02.000Z line-1\n");
  });

  it("names a missing flag", async () => {
    await expect(runLogs(parseArgs(["logs", "--pipeline-name", "web"]), conn, { print: () => undefined })).rejects.toThrow(new UsageError("--action-execution-id is required"));
  });
});
