import { afterAll, beforeAll, describe, expect, it, inject, vi } from "vitest";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Bus } from "@sluice/bus";
import { recordingLogger } from "@sluice/testkit";
import type { RecordedLine } from "@sluice/testkit";
import { SourceChangedSchema } from "@sluice/proto";
import type { StateChangeEvent } from "@sluice/proto";
import { isJob, isolation, produced, report, startHarness, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap, TappedHarness } from "./helpers.js";

// `.sluice/pipeline.json` carried by SourceChanged: adopted like UpdatePipeline before the
// revision's execution starts, or the revision's execution fails naming the fields.

const servers = inject("servers");
const iso = isolation("defn");

let harness: TappedHarness | undefined;
let clients: Clients;
let bus: Bus;
let tap: JobTap;
const seen: StateChangeEvent[] = [];
const logged: RecordedLine[] = [];

beforeAll(async () => {
  harness = await startHarness(servers, iso, { name: "orchestrator-defn-test", tapJobs: true, events: seen, deps: { logger: recordingLogger(logged) } });
  ({ clients, bus, tap } = harness);
});

afterAll(() => harness?.stop());

const name = "repo-defined";

/** A declaration as plain JSON, as a repository holds it. */
interface PlainDeclaration {
  name: string;
  stages: { name: string; actions: Record<string, unknown>[] }[];
  [key: string]: unknown;
}

function plain(): PlainDeclaration {
  return JSON.parse(JSON.stringify(threeStagePipeline(name))) as PlainDeclaration;
}

/** The pipeline with a Test stage after Build. */
function withTestStage(): PlainDeclaration {
  const decl = plain();
  decl.stages.splice(2, 0, {
    name: "Test",
    actions: [{ name: "Unit", actionTypeId: { category: "Test", owner: "AWS", provider: "Commands", version: "1" }, commands: ["make test"], inputArtifacts: [{ name: "Src" }] }],
  });
  return decl;
}

function announce(revisionId: string, msgId: string, text: string): Promise<unknown> {
  const msg: MessageInitShape<typeof SourceChangedSchema> = {
    eventId: `${name}:Checkout:${revisionId}`,
    pipelineName: name,
    sourceActionName: "Checkout",
    revision: { revisionId, branch: "main" },
    triggerType: "PollForSourceChanges",
    triggerDetail: "file:///tmp/repo.git#main",
    definition: { text },
  };
  return bus.publish(bus.subjects.sourceSubject(name), SourceChangedSchema, msg, { msgId });
}


/** Executions that failed without starting: those of rejected definitions. */
function rejectedExecutions(): string[] {
  const pipelineEvents = seen.filter((e) => e.pipeline === name && e.detailType === "CodePipeline Pipeline Execution State Change");
  return pipelineEvents.filter((e) => e.state === "FAILED" && !pipelineEvents.some((s) => s.executionId === e.executionId && s.state === "STARTED")).map((e) => e.executionId);
}

let firstRejected = "";

describe("pipeline definitions from the repository", () => {
  it("adopts a changed definition as the next version before the revision's execution, which runs it", async () => {
    await clients.ops.createPipeline({ pipeline: threeStagePipeline(name) });
    // The initial execution leaves the Source stage, so the next one can enter it.
    const initial = await tap.next(isJob(name, "Checkout"));
    await report(bus, initial, { outputArtifacts: produced(initial, "Src"), revision: { revisionId: "aaaa" } });
    const compile = await tap.next(isJob(name, "Compile", initial.pipelineExecutionId));

    await announce("r1", "r1-1", JSON.stringify({ pipeline: withTestStage() }, null, 2));
    const checkout = await tap.next((j) => isJob(name, "Checkout")(j) && j.sourceRevision === "r1");
    const exec = (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: checkout.pipelineExecutionId })).pipelineExecution;
    expect(exec?.pipelineVersion).toBe(2);
    const stored = await clients.viewer.getPipeline({ name });
    expect(stored.pipeline?.version).toBe(2);
    expect(stored.pipeline?.stages.map((s) => s.name)).toEqual(["Source", "Build", "Test", "Deploy"]);
    expect(seen.some((e) => e.pipeline === name && e.state === "UPDATED" && e.version === 2)).toBe(true);

    // The update ends the initial execution once its running action finishes; r1 then builds.
    await report(bus, checkout, { outputArtifacts: produced(checkout, "Src"), revision: { revisionId: "r1" } });
    await report(bus, compile, { outputArtifacts: produced(compile, "Built") });
    await tap.next(isJob(name, "Compile", checkout.pipelineExecutionId));
    expect((await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: initial.pipelineExecutionId })).pipelineExecution?.status).toBe("Cancelled");
  });

  it("changes nothing for a redelivery, nor for a definition equal to the current one (bare declaration form)", async () => {
    await announce("r1", "r1-2", JSON.stringify({ pipeline: withTestStage() }));
    // The same pipeline's changes are applied in order: once r2 runs, the repeat of r1 was handled.
    await announce("r2", "r2-1", JSON.stringify(withTestStage()));
    const checkout = await tap.next((j) => isJob(name, "Checkout")(j) && j.sourceRevision === "r2");
    const exec = (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: checkout.pipelineExecutionId })).pipelineExecution;
    expect(exec?.pipelineVersion).toBe(2);
    expect((await clients.viewer.getPipeline({ name })).pipeline?.version).toBe(2);
    const r1 = tap.jobs.filter((j) => isJob(name, "Checkout")(j) && j.sourceRevision === "r1");
    expect(r1).toHaveLength(1);
    expect(seen.filter((e) => e.pipeline === name && e.state === "UPDATED")).toHaveLength(1);
    await report(bus, checkout, { outputArtifacts: produced(checkout, "Src"), revision: { revisionId: "r2" } });
  });

  it("fails the revision's execution with the file's violations and leaves the pipeline as it was; a redelivery adds nothing", async () => {
    const broken = withTestStage();
    broken.name = "someone-else";
    for (const action of broken.stages[1]?.actions ?? []) action["runOrder"] = 0;
    const text = JSON.stringify({ pipeline: broken });
    await announce("r3", "r3-1", text);
    const failed = await vi.waitFor(
      () => {
        const [id] = rejectedExecutions();
        if (id === undefined) throw new Error("no rejected execution yet");
        return id;
      },
      { timeout: 20_000, interval: 50 },
    );
    firstRejected = failed;
    expect(logged.some((l) => l.msg === "pipeline definition in the repository rejected" && l.fields["revision"] === "r3")).toBe(true);
    const exec = (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: failed })).pipelineExecution;
    expect(exec?.status).toBe("Failed");
    expect(exec?.pipelineVersion).toBe(2);
    expect(exec?.statusSummary).toContain("pipeline.name: must be \"repo-defined\"");
    expect(exec?.statusSummary).toContain("pipeline.stages[1].actions[0].runOrder");
    expect((await clients.viewer.getPipeline({ name })).pipeline?.version).toBe(2);

    // Again, then a valid change: once r4 runs, the repeat of r3 was handled and started nothing.
    await announce("r3", "r3-2", text);
    await announce("r4", "r4-1", JSON.stringify(plain()));
    const checkout = await tap.next((j) => isJob(name, "Checkout")(j) && j.sourceRevision === "r4");
    const r4 = (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: checkout.pipelineExecutionId })).pipelineExecution;
    expect(r4?.pipelineVersion).toBe(3);
    expect(rejectedExecutions()).toEqual([failed]);
  });

  it("names the field of a file that is not the AWS JSON shape", async () => {
    await announce("r5", "r5-1", JSON.stringify({ pipeline: { ...plain(), stagez: [] } }));
    const failed = await vi.waitFor(
      () => {
        const found = rejectedExecutions().find((id) => id !== firstRejected);
        if (found === undefined) throw new Error("no failed execution of r5 yet");
        return found;
      },
      { timeout: 20_000, interval: 50 },
    );
    const exec = (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: failed })).pipelineExecution;
    expect(exec?.statusSummary).toContain("pipeline.stagez: unknown field");
    expect(exec?.artifactRevisions).toEqual([]);
  });

  it("masks credentials the file's violations quote: every viewer reads the statusSummary", async () => {
    const leaky = plain();
    const checkout = leaky.stages[0]?.actions[0];
    if (checkout === undefined) throw new Error("no source action");
    checkout["configuration"] = { RepositoryUrl: "gopher://bob:hunter2@git.example/web.git", BranchName: "main" };
    const before = rejectedExecutions().length;
    await announce("r6", "r6-1", JSON.stringify({ pipeline: leaky }));
    const failed = await vi.waitFor(
      () => {
        const found = rejectedExecutions()[before];
        if (found === undefined) throw new Error("no failed execution of r6 yet");
        return found;
      },
      { timeout: 20_000, interval: 50 },
    );
    const exec = (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: failed })).pipelineExecution;
    expect(exec?.statusSummary).toContain("pipeline.stages[0].actions[0].configuration.RepositoryUrl");
    expect(exec?.statusSummary).not.toContain("hunter2");
    expect(exec?.statusSummary).toContain("****@git.example");
  });
});
