import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type { Bus } from "@sluice/bus";
import { isJob, isolation, produced, report, startHarness, threeStagePipeline, failure } from "./helpers.js";
import type { Clients, JobTap, TappedHarness } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("rev");

let harness: TappedHarness | undefined;
let clients: Clients;
let bus: Bus;
let tap: JobTap;

beforeAll(async () => {
  harness = await startHarness(servers, iso, { name: "orchestrator-revision-test", tapJobs: true });
  ({ clients, bus, tap } = harness);
});

afterAll(() => harness?.stop());

const put = (pipelineName: string, revisionId: string, over: { stageName?: string; actionName?: string } = {}): ReturnType<Clients["ops"]["putActionRevision"]> =>
  clients.ops.putActionRevision({
    pipelineName,
    stageName: over.stageName ?? "Source",
    actionName: over.actionName ?? "Checkout",
    actionRevision: { revisionId, revisionChangeId: `change ${revisionId}` },
  });

describe("PutActionRevision", () => {
  const name = "put-revision";

  it("starts an execution carrying the revision, trigger PutActionRevision", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline(name) });
    const first = await tap.next(isJob(name, "Checkout"));

    const answer = await put(name, "abc1234");
    expect(answer.newRevision).toBe(true);
    expect(answer.pipelineExecutionId).not.toBe(first.pipelineExecutionId);
    const exec = await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: answer.pipelineExecutionId });
    expect(exec.pipelineExecution?.trigger?.triggerType).toBe("PutActionRevision");
    expect(exec.pipelineExecution?.trigger?.triggerDetail).toBe("ops");

    // The first execution holds the Source stage; once it moves on, the second fetches its revision.
    await report(bus, first, { outputArtifacts: produced(first, "Src"), revision: { revisionId: "f00d", branch: "main" } });
    const pinned = await tap.next(isJob(name, "Checkout", answer.pipelineExecutionId));
    expect(pinned.sourceRevision).toBe("abc1234");
  });

  it("answers newRevision false, naming the execution, for a revision already in hand", async () => {
    const running = await put(name, "abc1234");
    expect(running.newRevision).toBe(false);
    const state = await clients.viewer.getPipelineState({ name });
    expect(running.pipelineExecutionId).toBe(state.stageStates[0]?.latestExecution?.pipelineExecutionId);
    // One that already ran (the first execution's revision) is not new either.
    const ran = await put(name, "f00d");
    expect(ran.newRevision).toBe(false);
    const executions = await clients.viewer.listPipelineExecutions({ pipelineName: name });
    expect(executions.pipelineExecutionSummaries).toHaveLength(2);
  });

  it("names the field of every bad request", async () => {
    const missing = await failure(put("no-such-pipeline", "abc1234"));
    expect(missing.errorCode).toBe("PipelineNotFoundException");
    const stage = await failure(put(name, "abc1234", { stageName: "Nope" }));
    expect(stage.errorCode).toBe("StageNotFoundException");
    expect(stage.violations.map((v) => v.field)).toEqual(["stageName"]);
    const action = await failure(put(name, "abc1234", { actionName: "Nope" }));
    expect(action.errorCode).toBe("ActionNotFoundException");
    const notSource = await failure(put(name, "abc1234", { stageName: "Build", actionName: "Compile" }));
    expect(notSource.errorCode).toBe("ValidationException");
    expect(notSource.violations.map((v) => v.field)).toEqual(["actionName"]);
    const notCommit = await failure(put(name, "main"));
    expect(notCommit.violations.map((v) => v.field)).toEqual(["actionRevision.revisionId"]);
    const empty = await failure(clients.ops.putActionRevision({ pipelineName: name, stageName: "Source", actionName: "Checkout" }));
    expect(empty.violations.map((v) => v.field)).toEqual(["actionRevision"]);
    const blank = await failure(
      clients.ops.putActionRevision({ pipelineName: name, stageName: "Source", actionName: "Checkout", actionRevision: { revisionId: "", revisionChangeId: "x".repeat(101) } }),
    );
    expect(blank.violations.map((v) => v.field)).toEqual(["actionRevision.revisionId", "actionRevision.revisionChangeId"]);
    const denied = await failure(clients.viewer.putActionRevision({ pipelineName: name, stageName: "Source", actionName: "Checkout", actionRevision: { revisionId: "abc1234", revisionChangeId: "c" } }));
    expect(denied.errorCode).toBe("AccessDeniedException");
  });
});
