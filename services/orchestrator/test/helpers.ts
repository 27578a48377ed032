import { randomUUID } from "node:crypto";
import { vi } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer, EventSubscription } from "@sluice/bus";
import { noopLogger, runnerPoolOf } from "@sluice/domain";
import { createClient, isRpcError } from "@sluice/grpc";
import type { Client, SluiceRpcError } from "@sluice/grpc";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { CancelJobSchema, JobResultSchema, JobSchema, PipelineService } from "@sluice/proto";
import type { CancelJob, Job, JobResult, PipelineDeclarationSchema, StateChangeEvent } from "@sluice/proto";
import type { ProvidedServers } from "@sluice/testkit";
import { MongoClient } from "mongodb";
import { loadOrchestratorConfig } from "../src/config.js";
import { runnerJobsFilter } from "../src/jobs/job-intake.js";
import type { OrchestratorConfig } from "../src/config.js";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator, OrchestratorDeps } from "../src/service.js";

/** Principals of the test token table, one per role that matters here. */
export const TOKENS = "ops=operator:op-token,vic=viewer:viewer-token,alice=approver:alice-token,root=admin:admin-token";

/** A prefix and database name no other test file uses. */
export function isolation(tag: string): { prefix: string; dbName: string } {
  const suffix = randomUUID().slice(0, 8);
  return { prefix: `${tag}${suffix}`, dbName: `test_orch_${tag}_${suffix}` };
}

/** The orchestrator's configuration for a test (fast sweepers, no artifact or approval service). */
export function testConfig(servers: ProvidedServers, iso: { prefix: string; dbName: string }, env: Record<string, string> = {}): OrchestratorConfig {
  return loadOrchestratorConfig({
    NATS_URL: servers.natsUrl,
    MONGO_URL: servers.mongoUrl,
    MONGO_DB: iso.dbName,
    SLUICE_AUTH_TOKENS: TOKENS,
    SLUICE_DEV_MODE: "true",
    SLUICE_BUS_PREFIX: iso.prefix,
    OUTBOX_SWEEP_MS: "100",
    TIMER_SWEEP_MS: "50",
    ...env,
  });
}

/** Removes a test's database. */
export async function dropDatabase(mongoUrl: string, dbName: string): Promise<void> {
  const mongo = await MongoClient.connect(mongoUrl);
  try {
    await mongo.db(dbName).dropDatabase();
  } finally {
    await mongo.close();
  }
}

/** Clients of one orchestrator, one per principal. */
export interface Clients {
  ops: Client<typeof PipelineService>;
  viewer: Client<typeof PipelineService>;
  approver: Client<typeof PipelineService>;
  anonymous: Client<typeof PipelineService>;
  close(): void;
}

export function clientsFor(port: number): Clients {
  const address = `127.0.0.1:${port}`;
  const ops = createClient(PipelineService, address, { token: "op-token", deadlineMs: 20_000 });
  const viewer = createClient(PipelineService, address, { token: "viewer-token", deadlineMs: 20_000 });
  const approver = createClient(PipelineService, address, { token: "alice-token", deadlineMs: 20_000 });
  const anonymous = createClient(PipelineService, address, { deadlineMs: 20_000 });
  return {
    ops,
    viewer,
    approver,
    anonymous,
    close() {
      for (const c of [ops, viewer, approver, anonymous]) c.close();
    },
  };
}

/** What `startHarness` sets up besides the orchestrator, its clients and a bus connection. */
export interface HarnessOptions {
  /** Connection name of the test's own bus client. */
  readonly name: string;
  /** Passed on to `startOrchestrator` (e.g. a test clock). */
  readonly deps?: OrchestratorDeps;
  /** Tap the jobs stream (see `tapJobs`). */
  readonly tapJobs?: boolean;
  /** Collects every StateChangeEvent published under the test's prefix. */
  readonly events?: StateChangeEvent[];
  /** Collects every CancelJob broadcast on the control subject (what every runner listens to, core NATS). */
  readonly cancels?: CancelJob[];
}

/** One orchestrator on the shared servers, isolated by `iso`, with what a test drives it through. */
export interface Harness {
  readonly service: Orchestrator;
  readonly clients: Clients;
  /** A bus connection under the test's prefix. */
  readonly bus: Bus;
  /** Closes everything and drops the test's database (for `afterAll`). */
  stop(): Promise<void>;
}

/** A harness started with `tapJobs: true`. */
export interface TappedHarness extends Harness {
  readonly tap: JobTap;
}

/**
 * Starts an orchestrator with `testConfig(servers, iso)`, clients for it and a bus connection,
 * plus what `options` asks for. When a step fails, what was started is stopped again.
 */
export async function startHarness(servers: ProvidedServers, iso: { prefix: string; dbName: string }, options: HarnessOptions & { readonly tapJobs: true }): Promise<TappedHarness>;
export async function startHarness(servers: ProvidedServers, iso: { prefix: string; dbName: string }, options: HarnessOptions): Promise<Harness>;
export async function startHarness(
  servers: ProvidedServers,
  iso: { prefix: string; dbName: string },
  options: HarnessOptions,
): Promise<Harness & { readonly tap: JobTap | undefined }> {
  let service: Orchestrator | undefined;
  let clients: Clients | undefined;
  let bus: Bus | undefined;
  let tap: JobTap | undefined;
  let events: EventSubscription | undefined;
  let cancelSub: ReturnType<Bus["nc"]["subscribe"]> | undefined;
  const stop = async (): Promise<void> => {
    clients?.close();
    cancelSub?.unsubscribe();
    await events?.stop();
    await tap?.stop();
    await bus?.close();
    await service?.stop(5_000);
    await dropDatabase(servers.mongoUrl, iso.dbName);
  };
  try {
    service = await startOrchestrator(testConfig(servers, iso), options.deps);
    clients = clientsFor(service.port);
    bus = await connectBus({ servers: servers.natsUrl, name: options.name, logger: noopLogger, prefix: iso.prefix });
    if (options.tapJobs === true) tap = await tapJobs(bus);
    const { events: seen, cancels } = options;
    if (seen !== undefined) {
      events = await bus.subscribeEvents(bus.subjects.eventFilter(), (event) => {
        seen.push(event);
      });
    }
    if (cancels !== undefined) {
      cancelSub = bus.nc.subscribe(bus.subjects.controlSubject("cancel"), {
        callback: (_err, msg) => {
          cancels.push(fromBinary(CancelJobSchema, msg.data));
        },
      });
    }
    return { service, clients, bus, tap, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The error a call fails with (fails the test when it succeeds). */
export async function failure(call: Promise<unknown>): Promise<SluiceRpcError> {
  try {
    await call;
  } catch (err) {
    if (isRpcError(err)) return err;
    throw err;
  }
  throw new Error("expected the call to fail");
}

/** The status of an execution, as GetPipelineExecution reports it to the viewer. */
export async function statusOf(clients: Clients, pipelineName: string, pipelineExecutionId: string): Promise<string | undefined> {
  return (await clients.viewer.getPipelineExecution({ pipelineName, pipelineExecutionId })).pipelineExecution?.status;
}

type DeclarationInit = MessageInitShape<typeof PipelineDeclarationSchema>;

/** Source (Git) → Build (Commands, input Src, output Built) → Deploy (Commands, input Built). */
export function threeStagePipeline(name: string): DeclarationInit {
  return {
    name,
    roleArn: "arn:aws:iam::123456789012:role/sluice",
    artifactStore: { type: "S3", location: "sluice-artifacts" },
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Checkout",
            actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
            configuration: { RepositoryUrl: "file:///tmp/repo.git", BranchName: "main" },
            outputArtifacts: [{ name: "Src" }],
          },
        ],
      },
      {
        name: "Build",
        actions: [
          {
            name: "Compile",
            actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
            commands: ["make"],
            inputArtifacts: [{ name: "Src" }],
            outputArtifacts: [{ name: "Built", files: ["out/**"] }],
          },
        ],
      },
      {
        name: "Deploy",
        actions: [
          {
            name: "Ship",
            actionTypeId: { category: "Deploy", owner: "AWS", provider: "Commands", version: "1" },
            commands: ["./ship.sh"],
            inputArtifacts: [{ name: "Built" }],
          },
        ],
      },
    ],
  };
}

/** Source (Git) → Approve (Manual). */
export function approvalPipeline(name: string): DeclarationInit {
  return {
    name,
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Checkout",
            actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
            configuration: { RepositoryUrl: "file:///tmp/repo.git" },
            outputArtifacts: [{ name: "Src" }],
          },
        ],
      },
      {
        name: "Gate",
        actions: [{ name: "Approve", actionTypeId: { category: "Approval", owner: "AWS", provider: "Manual", version: "1" } }],
      },
    ],
  };
}

/** Every Job published on the jobs stream, in arrival order (a test durable, acked at once). */
export interface JobTap {
  readonly jobs: Job[];
  /** The subject each job arrived on, by job id. */
  readonly subjects: Map<string, string>;
  /** The first job matching `predicate`, waiting for it (20 s unless `timeoutMs` says otherwise). */
  next(predicate: (job: Job) => boolean, timeoutMs?: number): Promise<Job>;
  stop(): Promise<void>;
}

export async function tapJobs(bus: Bus): Promise<JobTap> {
  const jobs: Job[] = [];
  const subjects = new Map<string, string>();
  const consumer: Consumer = await bus.consume({
    stream: bus.streams.jobs,
    durable: "test-jobs",
    filterSubject: runnerJobsFilter(bus),
    schema: JobSchema,
    concurrency: 4,
    handler: (job, ctx) => {
      subjects.set(job.jobId, ctx.subject);
      jobs.push(job);
      return Promise.resolve();
    },
  });
  return {
    jobs,
    subjects,
    next(predicate, timeoutMs = 20_000) {
      return vi.waitFor(
        () => {
          const found = jobs.find(predicate);
          if (found === undefined) throw new Error("no matching job yet");
          return found;
        },
        { timeout: timeoutMs, interval: 25 },
      );
    },
    stop: () => consumer.stop(),
  };
}

/** A JobResult as an init object (not a message). */
export type ResultInit = Exclude<MessageInitShape<typeof JobResultSchema>, JobResult>;

/** Publishes a runner's result for `job` on the results subject of the job's pool, as the action-runner does. */
export async function report(bus: Bus, job: Job, over: ResultInit = {}): Promise<void> {
  const result: ResultInit = {
    jobId: job.jobId,
    actionExecutionId: job.actionExecutionId,
    attempt: job.attempt,
    pipelineName: job.pipelineName,
    pipelineExecutionId: job.pipelineExecutionId,
    stageName: job.stageName,
    actionName: job.actionName,
    status: "Succeeded",
    summary: "done",
    updatedBy: "runner-1",
    finishedAt: timestampFromMs(Date.now()),
    ...over,
  };
  await bus.publish(bus.subjects.resultSubject(job.pipelineName, job.actionTypeId?.provider === "Manual" ? "approval" : { runner: runnerPoolOf(job.configuration) }), JobResultSchema, result, { msgId: `${job.jobId}:result:${randomUUID()}` });
}

/** The output artifact `name` of `job`, as a runner reports it. */
export function produced(job: Job, name: string): NonNullable<ResultInit["outputArtifacts"]> {
  return [{ name, artifactId: `${job.actionExecutionId}/${name}`, bucket: job.artifactBucket, key: `${job.pipelineName}/${job.actionExecutionId}/${name}.zip`, sha256: "ab".repeat(32), sizeBytes: 42n }];
}

/** Matches the job of `action` in `pipeline` (of one execution, when given). */
export const isJob =
  (pipeline: string, action: string, executionId?: string) =>
  (job: Job): boolean =>
    job.pipelineName === pipeline && job.actionName === action && (executionId === undefined || job.pipelineExecutionId === executionId);
