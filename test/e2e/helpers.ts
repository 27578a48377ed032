// Shared setup of the end-to-end suite: one real cluster (the five services as processes) per test file,
// git repositories in temp dirs, AWS-style pipeline JSON, and compact views of the API's answers so a
// failed `expect.poll` prints something a person can read. On a failed test the services' warnings and
// the tail of their logs are printed, so the cause is visible without re-running.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createApprovalClient, createArtifactClient, createSluiceClient, isRpcError, readPipelineJson } from "@sluice/client";
import type { Client, SluiceClient, SluiceRpcError } from "@sluice/client";
import type { ActionExecutionDetail, ApprovalService, ArtifactService, GetPipelineStateResponse, PipelineExecutionSummary } from "@sluice/proto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { clusterBusAuthorization, createCatalog, generateBusAuthorization } from "@sluice/bus";
import { CLUSTER_SERVICES, startCluster } from "@sluice/testkit";
import type { Cluster, ClusterService, ProvidedServers } from "@sluice/testkit";
import { Client as MinioClient } from "minio";
import { afterAll, afterEach, beforeAll, expect, inject } from "vitest";

/** Repository root (services run from `<root>/services/<name>/dist/main.js`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** How `expect.poll` waits everywhere in this suite. */
export const POLL = { timeout: 60_000, interval: 200 } as const;

// expect.stringMatching/stringContaining are typed `any`; as `unknown` they sit inside toMatchObject shapes.
/** `expect.stringMatching(re)`, typed `unknown`. */
export const matching = (re: RegExp): unknown => expect.stringMatching(re);
/** `expect.stringContaining(text)`, typed `unknown`. */
export const containing = (text: string): unknown => expect.stringContaining(text);
/** A non-empty string (approval tokens). */
export const NON_EMPTY: unknown = expect.stringMatching(/\S/);

/** A short random suffix for names that must not collide between files or runs. */
export function suffix(): string {
  return randomBytes(4).toString("hex");
}

/** Everything a test file needs to talk to its cluster. */
export interface E2eEnv {
  cluster: Cluster;
  servers: ProvidedServers;
  /** SLUICE_BUS_PREFIX of this cluster. */
  busPrefix: string;
  /** Where the services' logs go (`<service>.log`). */
  logDir: string;
  /** PipelineService as the admin. */
  sluice: SluiceClient;
  /** ApprovalService as the admin. */
  approvals: Client<typeof ApprovalService>;
  /** ArtifactService as the admin. */
  artifacts: Client<typeof ArtifactService>;
  /** Admin S3 client of the shared MinIO (to read deploy buckets). */
  s3: MinioClient;
  /** Registers a directory to remove after the file's tests. */
  tempDir(prefix: string): string;
}

/** What a cluster of one test file is started with. */
export interface ClusterSetup {
  servers: ProvidedServers;
  /** SLUICE_BUS_PREFIX of the cluster. */
  busPrefix: string;
  /** Database names start with this (`<prefix>_<service>`). */
  mongoDbPrefix: string;
  /** Each service logs to `<logDir>/<service>.log`. */
  logDir: string;
}

/** Options of {@link useCluster}. */
export interface UseClusterOptions {
  /** Per-service extra variables (e.g. `{ "action-runner": { RUNNER_CONCURRENCY: "8" } }`). */
  serviceEnv?: Partial<Record<ClusterService, Record<string, string>>>;
  /** Starts the cluster some other way (e.g. services in-process). @default the services as processes (`startCluster`) */
  start?: (setup: ClusterSetup) => Promise<Cluster>;
}

/**
 * Starts one cluster for the calling test file (beforeAll) and stops it (afterAll). The returned object
 * is filled in by the time the tests run. Logs stay in a temp dir that is removed when every test passed
 * and kept (its path printed) otherwise.
 */
export function useCluster(name: string, opts: UseClusterOptions = {}): E2eEnv {
  const env = {} as E2eEnv;
  const cleanup: string[] = [];
  let failed = false;

  beforeAll(async () => {
    const servers = inject("servers");
    const id = `${name}-${suffix()}`;
    env.servers = servers;
    env.busPrefix = `e2e-${id}`;
    env.logDir = mkdtempSync(join(tmpdir(), `sluice-e2e-${name}-logs-`));
    env.tempDir = (prefix) => {
      const dir = mkdtempSync(join(tmpdir(), `sluice-e2e-${prefix}-`));
      cleanup.push(dir);
      return dir;
    };
    const mongoDbPrefix = `e2e_${id.replace(/-/g, "_")}`;
    try {
      env.cluster =
        opts.start === undefined
          ? await startCluster({
              servers,
              repoRoot: REPO_ROOT,
              busPrefix: env.busPrefix,
              busAuthorization: clusterBusAuthorization(generateBusAuthorization(createCatalog({ prefix: env.busPrefix }))),
              mongoDbPrefix,
              pollIntervalMs: 500,
              logDir: env.logDir,
              stopGraceMs: 10_000,
              deployBuckets: E2E_DEPLOY_BUCKETS,
              sourceBuckets: E2E_SOURCE_BUCKETS,
              ...(opts.serviceEnv === undefined ? {} : { serviceEnv: opts.serviceEnv }),
            })
          : await opts.start({ servers, busPrefix: env.busPrefix, mongoDbPrefix, logDir: env.logDir });
    } catch (err) {
      failed = true;
      printLogs(env.logDir, `cluster did not start (${String(err)})`);
      throw err;
    }
    const token = env.cluster.tokens.admin;
    env.sluice = createSluiceClient({ address: env.cluster.addresses.orchestrator, token, deadlineMs: 15_000 });
    env.approvals = createApprovalClient({ address: env.cluster.addresses.approval, token, deadlineMs: 15_000 });
    env.artifacts = createArtifactClient({ address: env.cluster.addresses.artifact, token, deadlineMs: 15_000 });
    env.s3 = new MinioClient({
      endPoint: servers.s3.endPoint,
      port: servers.s3.port,
      useSSL: servers.s3.useSSL,
      accessKey: servers.s3.accessKey,
      secretKey: servers.s3.secretKey,
    });
  });

  afterEach((ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    failed = true;
    printLogs(env.logDir, `test failed: ${ctx.task.name}`);
  });

  afterAll(async () => {
    env.sluice?.close();
    env.approvals?.close();
    env.artifacts?.close();
    await env.cluster?.stop();
    for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
    if (env.logDir === undefined) return;
    if (failed) process.stderr.write(`[e2e] service logs kept in ${env.logDir}\n`);
    else rmSync(env.logDir, { recursive: true, force: true });
  });

  return env;
}

/** Prints each service's warnings/errors and the tail of its log (pino JSON lines). */
function printLogs(logDir: string | undefined, why: string): void {
  if (logDir === undefined) return;
  const out: string[] = [`\n===== [e2e] ${why}; service logs from ${logDir} =====`];
  for (const service of CLUSTER_SERVICES) {
    const file = join(logDir, `${service}.log`);
    if (!existsSync(file)) continue;
    const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");
    const warnings = lines.filter((l) => levelOf(l) >= 40).slice(-30);
    out.push(`----- ${service}: ${lines.length} lines, ${warnings.length} (last) warnings/errors -----`, ...warnings.map(clip));
    out.push(`----- ${service}: last 15 lines -----`, ...lines.slice(-15).map(clip));
  }
  process.stderr.write(`${out.join("\n")}\n`);
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

function levelOf(line: string): number {
  try {
    const parsed = JSON.parse(line) as { level?: unknown };
    // The services' loggers write the level's label ("warn"); plain pino writes its number.
    if (typeof parsed.level === "string") return LEVELS[parsed.level] ?? 0;
    return typeof parsed.level === "number" ? parsed.level : 0;
  } catch {
    // Non-JSON output (a stack trace, a crash) is worth seeing.
    return 50;
  }
}

function clip(line: string): string {
  return line.length > 1500 ? `${line.slice(0, 1500)}…` : line;
}

/** A git repository in a temp dir on branch `main`. */
export interface GitRepo {
  dir: string;
  /** `file://<dir>` */
  url: string;
  /** Writes the files (relative paths), commits everything, returns the commit id. */
  commit(files: Record<string, string>, message: string): string;
}

/** `git init -b main` in a fresh temp dir (removed after the file's tests). */
export function makeGitRepo(env: E2eEnv, files: Record<string, string>, message: string): GitRepo & { first: string } {
  const dir = env.tempDir("repo");
  const git = (...args: string[]): string => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8" }).trim();
  git("init", "-q", "-b", "main");
  const commit = (content: Record<string, string>, msg: string): string => {
    for (const [rel, text] of Object.entries(content)) {
      const path = join(dir, rel);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    }
    git("add", "-A");
    git("commit", "-q", "-m", msg);
    return git("rev-parse", "HEAD");
  };
  const first = commit(files, message);
  return { dir, url: `file://${dir}`, commit, first };
}

/** Options of {@link pipelineJson}. */
export interface PipelineJsonOptions {
  name: string;
  repoUrl: string;
  artifactBucket: string;
  deployBucket: string;
  /** Commands of the Build action. */
  buildCommands: string[];
  /** Key prefix of the deploy (may use `#{...}` variables). @default "site" */
  deployPrefix?: string;
  /** Whether the Approve stage is there. @default true */
  approval?: boolean;
  /** `executionMode` of the pipeline. @default none (the service's default, SUPERSEDED) */
  executionMode?: "SUPERSEDED" | "QUEUED" | "PARALLEL";
  /** More plaintext environment variables of the Build action (besides COMMIT_ID). */
  buildEnv?: Record<string, string>;
  /** `timeoutInMinutes` of the approval (5-86400). @default none (7 days) */
  approvalTimeoutInMinutes?: number;
}

/**
 * An AWS create-pipeline JSON document: Source (Git) → Build (Commands, output `dist/**`) →
 * Approve (Manual) → Deploy (S3 → ObjectStore, extracted under `site/`). The Build action gets the
 * commit id through the variable `#{SourceVariables.CommitId}` in `$COMMIT_ID`.
 */
export function pipelineJson(o: PipelineJsonOptions): string {
  return JSON.stringify(pipelineDocument(o));
}

/** The document {@link pipelineJson} serializes, for tests that change it before creating the pipeline. */
export function pipelineDocument(o: PipelineJsonOptions): { pipeline: { name: string; stages: Record<string, unknown>[]; [key: string]: unknown } } {
  const buildEnv = Object.entries(o.buildEnv ?? {}).map(([name, value]) => ({ name, value, type: "PLAINTEXT" }));
  const approve = {
    name: "Approve",
    actions: [
      {
        name: "Approve",
        actionTypeId: { category: "Approval", owner: "AWS", provider: "Manual", version: "1" },
        configuration: { CustomData: "Approve the e2e deploy." },
        ...(o.approvalTimeoutInMinutes === undefined ? {} : { timeoutInMinutes: o.approvalTimeoutInMinutes }),
      },
    ],
  };
  return {
    pipeline: {
      name: o.name,
      roleArn: "arn:aws:iam::123456789012:role/sluice-e2e",
      artifactStore: { type: "S3", location: o.artifactBucket },
      ...(o.executionMode === undefined ? {} : { executionMode: o.executionMode }),
      stages: [
        {
          name: "Source",
          actions: [
            {
              name: "Checkout",
              actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
              configuration: { RepositoryUrl: o.repoUrl, BranchName: "main" },
              outputArtifacts: [{ name: "SourceOutput" }],
              namespace: "SourceVariables",
            },
          ],
        },
        {
          name: "Build",
          actions: [
            {
              name: "Build",
              actionTypeId: { category: "Build", owner: "AWS", provider: "Commands", version: "1" },
              commands: o.buildCommands,
              environmentVariables: [{ name: "COMMIT_ID", value: "#{SourceVariables.CommitId}", type: "PLAINTEXT" }, ...buildEnv],
              inputArtifacts: [{ name: "SourceOutput" }],
              outputArtifacts: [{ name: "BuildOutput", files: ["dist/**"] }],
            },
          ],
        },
        ...(o.approval === false ? [] : [approve]),
        {
          name: "Deploy",
          actions: [
            {
              name: "Deploy",
              actionTypeId: { category: "Deploy", owner: "AWS", provider: "S3", version: "1" },
              configuration: { BucketName: o.deployBucket, Extract: "true", ObjectKey: o.deployPrefix ?? "site" },
              inputArtifacts: [{ name: "BuildOutput" }],
            },
          ],
        },
      ],
    },
  };
}

/** Creates the pipeline from its JSON text, as `sluice create-pipeline --cli-input-json` would. */
export async function createPipelineFromJson(env: E2eEnv, json: string): Promise<void> {
  await env.sluice.pipelines.createPipeline(readPipelineJson(json));
}

/** DEPLOY_BUCKETS of e2e clusters: every pipeline may deploy to the buckets `bucketName("deploy")` makes. */
export const E2E_DEPLOY_BUCKETS = "*=e2e-deploy-*";

/** SOURCE_BUCKETS of e2e clusters: every pipeline may read buckets named by `bucketName("source")`. */
export const E2E_SOURCE_BUCKETS = "*=e2e-source-*";

/** Unique lowercase bucket name (3-63 characters). */
export function bucketName(kind: string): string {
  return `e2e-${kind}-${suffix()}`;
}

/** One action's latest execution, flattened. */
interface ActionView {
  status: string;
  executionId: string;
  token: string;
  summary: string;
  errorCode: string;
  errorMessage: string;
}

/** One stage, flattened: `latest`/`inbound` are `<executionId>` and the status. */
export interface StageView {
  latestExecutionId: string;
  latestStatus: string;
  inboundExecutionId: string;
  /** Every execution waiting in front of the stage, in the order they will enter. */
  inboundExecutionIds: string[];
  /** The inbound transition (`enabled` is true when the API reports no transition state). */
  transition: { enabled: boolean; disabledReason: string; lastChangedBy: string; lastChangedAt: Date | undefined };
  actions: Record<string, ActionView>;
}

/** GetPipelineState as `{ <stage>: StageView }`, so poll failures print readably. */
export async function stateView(env: E2eEnv, name: string): Promise<Record<string, StageView>> {
  return viewOf(await env.sluice.pipelines.getPipelineState({ name }));
}

function viewOf(state: GetPipelineStateResponse): Record<string, StageView> {
  const out: Record<string, StageView> = {};
  for (const stage of state.stageStates) {
    const actions: Record<string, ActionView> = {};
    for (const a of stage.actionStates) {
      const l = a.latestExecution;
      actions[a.actionName] = {
        status: l?.status ?? "",
        executionId: l?.actionExecutionId ?? "",
        token: l?.token ?? "",
        summary: l?.summary ?? "",
        errorCode: l?.errorDetails?.code ?? "",
        errorMessage: l?.errorDetails?.message ?? "",
      };
    }
    const t = stage.inboundTransitionState;
    out[stage.stageName] = {
      latestExecutionId: stage.latestExecution?.pipelineExecutionId ?? "",
      latestStatus: stage.latestExecution?.status ?? "",
      inboundExecutionId: stage.inboundExecution?.pipelineExecutionId ?? "",
      inboundExecutionIds: stage.inboundExecutions.map((e) => e.pipelineExecutionId),
      transition: {
        enabled: t?.enabled ?? true,
        disabledReason: t?.disabledReason ?? "",
        lastChangedBy: t?.lastChangedBy ?? "",
        lastChangedAt: t?.lastChangedAt === undefined ? undefined : timestampDate(t.lastChangedAt),
      },
      actions,
    };
  }
  return out;
}

/** ListPipelineExecutions, newest first as the API returns them, flattened. */
export async function executionsView(
  env: E2eEnv,
  name: string,
): Promise<{ id: string; status: string; trigger: string; summary: string; revisions: string[]; stopReason: string; type: string }[]> {
  const res = await env.sluice.pipelines.listPipelineExecutions({ pipelineName: name });
  return res.pipelineExecutionSummaries.map((s: PipelineExecutionSummary) => ({
    id: s.pipelineExecutionId,
    status: s.status,
    trigger: s.trigger?.triggerType ?? "",
    summary: s.statusSummary,
    revisions: s.sourceRevisions.map((r) => r.revisionId),
    stopReason: s.stopTrigger?.reason ?? "",
    type: s.executionType,
  }));
}

/** One attempt of one action (ListActionExecutions), flattened; times in epoch ms. */
export interface ActionAttemptView {
  executionId: string;
  actionExecutionId: string;
  stage: string;
  action: string;
  status: string;
  start: number;
  end: number;
  updatedBy: string;
  errorCode: string;
  errorMessage: string;
}

/**
 * Every action attempt of the pipeline (all pages), oldest first, optionally of one execution only.
 */
export async function actionAttempts(env: E2eEnv, pipelineName: string, pipelineExecutionId?: string): Promise<ActionAttemptView[]> {
  const out: ActionAttemptView[] = [];
  let nextToken = "";
  do {
    const res = await env.sluice.pipelines.listActionExecutions({
      pipelineName,
      nextToken,
      ...(pipelineExecutionId === undefined ? {} : { filter: { pipelineExecutionId } }),
    });
    out.push(...res.actionExecutionDetails.map(attemptView));
    nextToken = res.nextToken;
  } while (nextToken !== "");
  return out.sort((a, b) => a.start - b.start);
}

function attemptView(d: ActionExecutionDetail): ActionAttemptView {
  const error = d.output?.executionResult?.errorDetails;
  return {
    executionId: d.pipelineExecutionId,
    actionExecutionId: d.actionExecutionId,
    stage: d.stageName,
    action: d.actionName,
    status: d.status,
    start: d.startTime === undefined ? 0 : timestampDate(d.startTime).getTime(),
    end: d.lastUpdateTime === undefined ? 0 : timestampDate(d.lastUpdateTime).getTime(),
    updatedBy: d.updatedBy,
    errorCode: error?.code ?? "",
    errorMessage: error?.message ?? "",
  };
}

/**
 * A file the Build commands of a test wait for (`GATE_WAIT` with `$GATE` in their environment), so a
 * test decides when a running build may finish: executions then overlap exactly as the test arranged.
 */
export interface Gate {
  /** Absolute path of the file. */
  path: string;
  /** Creates the file: every waiting build goes on, and later ones do not wait. */
  open(): void;
}

/** A closed {@link Gate} in a temp dir of the file (removed after its tests). */
export function makeGate(env: E2eEnv): Gate {
  const path = join(env.tempDir("gate"), "open");
  return { path, open: () => writeFileSync(path, "open\n") };
}

/** The shell command that waits for the gate in `$GATE` to open. */
export const GATE_WAIT = 'until [ -e "$GATE" ]; do sleep 0.1; done';

/** Pids of the processes whose command line (argv, NUL-joined) contains `text` (Linux /proc). */
export function processesWith(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(join("/proc", entry, "cmdline"), "utf8").includes(text)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** The log lines (pino JSON, parsed) of one service of the cluster whose `msg` is `msg`. */
export function logEntries(env: E2eEnv, service: ClusterService, msg: string): Record<string, unknown>[] {
  const file = join(env.logDir, `${service}.log`);
  if (!existsSync(file)) return [];
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.includes(msg)) continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed["msg"] === msg) out.push(parsed);
    } catch {
      // Not a log entry.
    }
  }
  return out;
}

/** The execution's status (GetPipelineExecution). */
export async function executionStatus(env: E2eEnv, pipelineName: string, pipelineExecutionId: string): Promise<{ status: string; statusSummary: string }> {
  const res = await env.sluice.pipelines.getPipelineExecution({ pipelineName, pipelineExecutionId });
  return { status: res.pipelineExecution?.status ?? "", statusSummary: res.pipelineExecution?.statusSummary ?? "" };
}

/** Execution statuses that do not change any more. */
const FINAL = /^(Succeeded|Failed|Stopped|Superseded|Cancelled)$/;

/**
 * Waits until the execution has finished (any final status) and returns its status and summary, so a
 * test asserting `Succeeded` fails at once, with the summary, when the execution failed instead.
 */
export async function finishedExecution(env: E2eEnv, pipelineName: string, pipelineExecutionId: string): Promise<{ status: string; statusSummary: string }> {
  await expect.poll(async () => (await executionStatus(env, pipelineName, pipelineExecutionId)).status, POLL).toMatch(FINAL);
  return executionStatus(env, pipelineName, pipelineExecutionId);
}

/** Runs `call` and returns the RPC error it must fail with (fails the test when it succeeds). */
export async function rpcError(call: () => Promise<unknown>): Promise<SluiceRpcError> {
  try {
    await call();
  } catch (err) {
    if (isRpcError(err)) return err;
    throw err;
  }
  expect.fail("the call succeeded; expected an RPC error");
}

/** Reads one object of a bucket as UTF-8 text. */
export async function readObject(s3: MinioClient, bucket: string, key: string): Promise<string> {
  const stream = await s3.getObject(bucket, key);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Every key of a bucket (sorted); empty when the bucket does not exist. */
export async function listKeys(s3: MinioClient, bucket: string): Promise<string[]> {
  if (!(await s3.bucketExists(bucket))) return [];
  const keys: string[] = [];
  for await (const item of s3.listObjectsV2(bucket, "", true) as AsyncIterable<{ name?: string }>) {
    if (item.name !== undefined) keys.push(item.name);
  }
  return keys.sort();
}
