// SECRETs and repository credentials through the orchestrator against real servers: GetPipeline and
// CreatePipeline show `****`, the job still carries the values, an UpdatePipeline that sends back what
// GetPipeline showed keeps them, and a `****` with nothing stored behind it is refused naming the field.
// The attack: a viewer reads the pipeline (and a runner's report echoes the secret) to learn it.
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { connectBus } from "@sluice/bus";
import type { Bus } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator } from "../src/service.js";
import { clientsFor, dropDatabase, failure, isJob, isolation, produced, report, tapJobs, testConfig, threeStagePipeline } from "./helpers.js";
import type { Clients, JobTap } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("sec");
const SECRET = "s3cr3t-canary-value";
const URL = "https://bob:pa55-canary@git.example.com/r.git";

let service: Orchestrator;
let clients: Clients;
let bus: Bus;
let tap: JobTap;

beforeAll(async () => {
  service = await startOrchestrator(testConfig(servers, iso));
  clients = clientsFor(service.port);
  bus = await connectBus({ servers: servers.natsUrl, name: "orchestrator-secrets-test", logger: noopLogger, prefix: iso.prefix });
  tap = await tapJobs(bus);
});

afterAll(async () => {
  clients?.close();
  await tap?.stop();
  await bus?.close();
  await service?.stop(5_000);
  await dropDatabase(servers.mongoUrl, iso.dbName);
});

function withSecrets(name: string) {
  const decl = threeStagePipeline(name);
  const source = decl.stages![0]!.actions![0]!;
  source.configuration = { RepositoryUrl: URL, BranchName: "main" };
  const build = decl.stages![1]!.actions![0]!;
  build.environmentVariables = [{ name: "TOKEN", value: SECRET, type: "SECRET" }];
  return decl;
}

describe("SECRET environment variables and repository credentials", () => {
  it("are masked in every answer, carried by the job, and kept by an update that sends the masked values back", async () => {
    const name = "secretive";
    const created = await clients.ops.createPipeline({ pipeline: withSecrets(name) });
    expect(JSON.stringify(created)).not.toContain(SECRET);

    const shown = (await clients.viewer.getPipeline({ name })).pipeline!;
    expect(shown.stages[0]?.actions[0]?.configuration["RepositoryUrl"]).toBe("https://****@git.example.com/r.git");
    expect(shown.stages[1]?.actions[0]?.environmentVariables).toMatchObject([{ name: "TOKEN", value: "****", type: "SECRET" }]);

    // The runner needs the real values.
    const source = await tap.next(isJob(name, "Checkout"));
    expect(source.configuration["RepositoryUrl"]).toBe(URL);
    await report(bus, source, { outputArtifacts: produced(source, "Src"), revision: { revisionId: "c0ffee" } });
    const build = await tap.next(isJob(name, "Compile", source.pipelineExecutionId));
    expect(build.environmentVariables).toMatchObject([{ name: "TOKEN", value: SECRET, type: "SECRET" }]);

    // A runner that echoes the secret (any form) in its report does not get it into the views.
    await report(bus, build, { status: "Failed", summary: `oops ${Buffer.from(SECRET).toString("base64")}`, errorDetails: { code: "JobFailed", message: `leaked ${SECRET}` } });
    await expect.poll(async () => (await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: source.pipelineExecutionId })).pipelineExecution?.status, { timeout: 10_000 }).toBe("Failed");
    const answers = JSON.stringify(
      [
        await clients.viewer.getPipelineState({ name }),
        await clients.viewer.listActionExecutions({ pipelineName: name }),
        await clients.viewer.getPipelineExecution({ pipelineName: name, pipelineExecutionId: source.pipelineExecutionId }),
        await clients.viewer.listPipelineExecutions({ pipelineName: name }),
      ],
      (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v),
    );
    expect(answers).not.toContain(SECRET);
    expect(answers).not.toContain(Buffer.from(SECRET).toString("base64"));
    expect(answers).not.toContain("pa55-canary");
    expect(answers).toContain("leaked ****");

    // GetPipeline → UpdatePipeline keeps what was masked.
    const updated = await clients.ops.updatePipeline({ pipeline: shown });
    expect(updated.pipeline?.version).toBe(2);
    expect(JSON.stringify(updated)).not.toContain(SECRET);
    const { pipelineExecutionId } = await clients.ops.startPipelineExecution({ name });
    const next = await tap.next(isJob(name, "Checkout", pipelineExecutionId));
    expect(next.pipelineVersion).toBe(2);
    expect(next.configuration["RepositoryUrl"]).toBe(URL);
    await report(bus, next, { outputArtifacts: produced(next, "Src"), revision: { revisionId: "c0ffee2" } });
    expect((await tap.next(isJob(name, "Compile", next.pipelineExecutionId))).environmentVariables).toMatchObject([{ name: "TOKEN", value: SECRET }]);

    // A `****` under a new name has nothing to keep.
    const renamed = (await clients.viewer.getPipeline({ name })).pipeline!;
    renamed.stages[1]!.actions[0]!.environmentVariables[0]!.name = "OTHER";
    const refused = await failure(clients.ops.updatePipeline({ pipeline: renamed }));
    expect(refused.errorCode).toBe("ValidationException");
    expect(refused.violations).toEqual([
      { field: "pipeline.stages[1].actions[0].environmentVariables[0].value", message: '**** keeps a stored secret, but this action has no stored SECRET named "OTHER"; give the value' },
    ]);
  });
});
