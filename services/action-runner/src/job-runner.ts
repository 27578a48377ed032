import { randomUUID } from "node:crypto";
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { TransferError, downloadFile, extractZip, uploadFile, zipDirectory } from "@sluice/artifacts";
import { ARTIFACT_NAME_PATTERN, MAX_ERROR_MESSAGE_CHARS, MAX_SUMMARY_CHARS, SECRET_ENV_TYPES, isDomainError, resolveProvider } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { JobResultSchema } from "@sluice/proto";
import type { Grant, Job, JobResult, OutputGrant, ProducedArtifactSchema } from "@sluice/proto";
import { runInJobSandbox } from "./isolation.js";
import type { JobSandbox } from "./isolation.js";
import { createJobLog } from "./job-log.js";
import type { JobLog, LogPublisher } from "./job-log.js";
import { ANSWERED_LATER_STATUS, JobFailure, abortable, createMasker } from "./providers/provider.js";
import type { FailureCode, PreparedInput, Provider, ProviderOutcome } from "./providers/provider.js";
import { createWorkspace } from "./workspace.js";
import type { Workspace } from "./workspace.js";

/**
 * Runs one job from start to result: workspace, inputs (download, verify, extract), the
 * provider, outputs (zip, upload, commit), deadline. `run` never throws for anything the job
 * did or that went wrong while running it — that becomes a Failed `JobResult` — with one
 * exception: when the runner itself is stopping, `run` throws {@link JobCancelledError} so the
 * job goes back to the queue for another runner instead of being reported as failed.
 * A job cancelled by the orchestrator (its `cancel` signal) is a Failed result with
 * `JobCancelled`: nobody waits for it any more, so it must not go back to the queue.
 */

/**
 * Records an uploaded output with the artifact service (ArtifactService.CommitArtifact).
 * A function rather than a client so the runner can be driven by any transport in tests.
 */
export type ArtifactCommitter = (
  commit: { readonly artifactId: string; readonly sha256: string; readonly sizeBytes: bigint },
  signal: AbortSignal,
) => Promise<void>;

/**
 * Fresh PUT grants for outputs of one action execution that are not committed yet
 * (ArtifactService.RenewOutputGrants, called with the runner's own token). A function rather
 * than a client for the same reason as {@link ArtifactCommitter}.
 */
export type OutputGrantRenewer = (
  request: { readonly actionExecutionId: string; readonly outputNames: readonly string[] },
  signal: AbortSignal,
) => Promise<readonly OutputGrant[]>;

/** An upload grant expiring sooner than this is renewed just before the upload. */
export const GRANT_RENEWAL_MARGIN_MS = 60_000;

/** Providers by `"<Category>/<Provider>"`, e.g. `"Build/Commands"`. */
export type ProviderTable = ReadonlyMap<string, Provider>;

/** Options of {@link createJobRunner}. */
export interface JobRunnerOptions {
  readonly logger: Logger;
  /** Goes into `JobResult.updatedBy`. */
  readonly runnerId: string;
  /** Parent directory of the per-job workspaces. */
  readonly workspaceRoot: string;
  readonly providers: ProviderTable;
  readonly commitArtifact: ArtifactCommitter;
  /**
   * Renews an output's upload grant that expires within {@link GRANT_RENEWAL_MARGIN_MS}
   * (a job that ran longer than the grants' lifetime). Without it the job's grant is used as is.
   */
  readonly renewOutputGrants?: OutputGrantRenewer;
  /** Environment every child process starts from (allow-listed by the service's config). */
  readonly baseEnv: Readonly<Record<string, string>>;
  /**
   * Where the job's child processes run (PID namespace, uid); see `resolveJobSandbox`. Without
   * it they run as the runner's user in their own process group.
   */
  readonly sandbox?: JobSandbox;
  /**
   * Publishes the job's log lines to SLUICE_LOGS as they are written (see job-log.ts). Without it
   * the log is still kept and stored when the job carries a log grant.
   */
  readonly publishLog?: LogPublisher;
  /** How long a log line may wait before its batch is sent (default 100 ms). */
  readonly logFlushMs?: number;
  /** Clock; tests may pin it. */
  readonly now?: () => Date;
}

/** Runs jobs. */
export interface JobRunner {
  /**
   * Runs `job`. `signal` aborts it because the runner is stopping (then {@link JobCancelledError}
   * is thrown); `cancel` aborts it because the orchestrator cancelled the job (then the result is
   * Failed with `JobCancelled` and the abort reason's message, see {@link cancelReasonOf}).
   */
  run(job: Job, signal: AbortSignal, cancel?: AbortSignal): Promise<JobResult>;
}

/** The reason text of an aborted cancel signal: the reason's message, or a generic one. */
export function cancelReasonOf(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  const text = reason instanceof Error ? reason.message : typeof reason === "string" ? reason : "";
  return text === "" ? "the job was cancelled" : text;
}

/** The fields every JobResult about `job` starts with: which job, and who answers it. */
export function resultOf(job: Job, runnerId: string): Pick<JobResult, "jobId" | "actionExecutionId" | "attempt" | "pipelineName" | "pipelineExecutionId" | "stageName" | "actionName" | "updatedBy"> {
  return {
    jobId: job.jobId,
    actionExecutionId: job.actionExecutionId,
    attempt: job.attempt,
    pipelineName: job.pipelineName,
    pipelineExecutionId: job.pipelineExecutionId,
    stageName: job.stageName,
    actionName: job.actionName,
    updatedBy: runnerId,
  };
}

/** Thrown by {@link JobRunner.run} when the job was interrupted by the runner stopping, not by its own fault. */
export class JobCancelledError extends Error {
  override readonly name = "JobCancelledError";
  constructor(readonly jobId: string) {
    super(`job ${jobId} was interrupted because the runner is stopping`);
  }
}

/** How long storing a finished job's log may take. */
const LOG_STORE_TIMEOUT_MS = 60_000;

/**
 * The job's secret values — SECRET and store-backed environment variables, and the values of its
 * secret configuration properties — masked in every log line.
 */
export function jobSecrets(job: Job): string[] {
  const env = job.environmentVariables.filter((v) => SECRET_ENV_TYPES.has(v.type)).map((v) => v.value);
  const config = job.secretConfigurationKeys.map((key) => job.configuration[key] ?? "");
  return [...env, ...config].filter((v) => v !== "");
}

/** setTimeout's ceiling; longer deadlines are re-armed. */
const MAX_TIMER_MS = 2_147_483_647;

type ProducedArtifactInit = MessageInitShape<typeof ProducedArtifactSchema>;

/** Creates a job runner. */
export function createJobRunner(opts: JobRunnerOptions): JobRunner {
  const now = opts.now ?? (() => new Date());

  async function run(job: Job, cancel: AbortSignal, jobCancel?: AbortSignal): Promise<JobResult> {
    const jobLog = createJobLog({
      job,
      // Each run of a job (a redelivery to another runner too) gets its own message ids, so JetStream's
      // de-duplication never drops a second run's lines as copies of the first's.
      publish: opts.publishLog ?? (() => Promise.resolve()),
      runId: randomUUID().slice(0, 8),
      mask: createMasker(jobSecrets(job)),
      logger: opts.logger.child({ jobId: job.jobId }),
      ...(opts.logFlushMs === undefined ? {} : { flushMs: opts.logFlushMs }),
      now,
    });
    jobLog.write("system", `job ${job.jobId} started on runner ${opts.runnerId}`);
    let result: JobResult;
    try {
      result = await runJob(job, cancel, jobCancel, jobLog);
    } catch (err) {
      // Handed back to the queue: another run of the same job follows, so this is not the log's end.
      jobLog.write("system", "job handed back to the queue: the runner is stopping");
      await jobLog.flush();
      throw err;
    }
    for (const output of result.outputArtifacts) jobLog.write("system", `output artifact ${output.name} stored (${output.sizeBytes} bytes)`);
    jobLog.write("system", result.status === "Succeeded" ? "job succeeded" : `job failed: ${result.errorDetails?.code ?? ""}: ${result.errorDetails?.message ?? ""}`);
    const stored = await storeLog(job, jobLog);
    await jobLog.end(stored);
    return result;
  }

  /**
   * Uploads the whole masked log with the job's log grant and commits it as an artifact, so
   * GetActionLog reads a finished action's log from the store. A failure is logged, never the job's.
   */
  async function storeLog(job: Job, jobLog: JobLog): Promise<boolean> {
    const grant = job.log?.grant;
    if (job.log === undefined || grant === undefined || grant.url === "") return false;
    const log = opts.logger.child({ jobId: job.jobId });
    // Kept as written, so storing waits for no publish.
    const { body, sha256 } = jobLog.stored();
    const signal = AbortSignal.timeout(LOG_STORE_TIMEOUT_MS);
    try {
      const res = await fetch(grant.url, { method: "PUT", body, headers: { "Content-Type": "application/x-ndjson" }, signal });
      if (!res.ok) throw new Error(`the object store answered ${res.status} ${res.statusText}`);
      await res.arrayBuffer();
      await commitWithRetry({ artifactId: job.log.artifactId, sha256, sizeBytes: BigInt(body.length) }, signal);
      log.debug("log stored", { artifactId: job.log.artifactId, bytes: body.length });
      return true;
    } catch (err) {
      log.warn("could not store the job's log", { artifactId: job.log.artifactId, err: redactSecrets(err instanceof Error ? err.message : String(err)) });
      return false;
    }
  }

  async function runJob(job: Job, cancel: AbortSignal, jobCancel: AbortSignal | undefined, jobLog: JobLog): Promise<JobResult> {
    const log = opts.logger.child({
      jobId: job.jobId,
      pipeline: job.pipelineName,
      stage: job.stageName,
      action: job.actionName,
    });
    const base = resultOf(job, opts.runnerId);
    const failed = (code: FailureCode, message: string, summary?: string): JobResult => {
      const msg = truncate(redactSecrets(message), MAX_ERROR_MESSAGE_CHARS);
      log.info("job failed", { code, message: msg });
      return create(JobResultSchema, {
        ...base,
        status: "Failed",
        summary: truncateTail(redactSecrets(summary ?? message), MAX_SUMMARY_CHARS),
        errorDetails: { code, message: msg },
        externalExecutionId: job.jobId,
        finishedAt: timestampFromDate(now()),
      });
    };

    if (cancel.aborted) throw new JobCancelledError(job.jobId);
    const cancelledResult = (signal: AbortSignal): JobResult => {
      const reason = cancelReasonOf(signal);
      return failed("JobCancelled", reason, `Cancelled: ${reason}`);
    };
    // Cancelled while still queued: nothing is started.
    if (jobCancel?.aborted === true) return cancelledResult(jobCancel);
    const category = job.actionTypeId?.category ?? "";
    const providerName = job.actionTypeId?.provider ?? "";
    // The job names the provider as declared (AWS's S3, CodeBuild, CodeCommit …); the domain's
    // provider table says which built-in runs it.
    const builtIn = resolveProvider(job.actionTypeId)?.builtIn ?? providerName;
    const provider = opts.providers.get(`${category}/${builtIn}`);
    if (provider === undefined) {
      return failed("ConfigurationError", `actionTypeId: ${category}/${providerName} is not served by this runner`);
    }
    const deadline = job.deadline === undefined ? undefined : timestampDate(job.deadline);
    if (deadline !== undefined && deadline.getTime() <= now().getTime()) {
      return failed("JobTimedOut", `the job's deadline ${deadline.toISOString()} passed before it started`);
    }

    // One signal for the provider and every step: aborted by the deadline, by a cancel from the
    // orchestrator, or by the runner stopping. The first of deadline and cancel names the failure.
    const controller = new AbortController();
    let timedOut = false;
    let cancelled = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (deadline === undefined || controller.signal.aborted) return;
      const left = deadline.getTime() - now().getTime();
      if (left <= 0) {
        timedOut = true;
        controller.abort(new Error("deadline"));
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    arm();
    const onCancel = (): void => controller.abort(new Error("runner stopping"));
    cancel.addEventListener("abort", onCancel, { once: true });
    // A cancel wins over the runner stopping too: the job must not be handed back to the queue.
    const onJobCancel = (): void => {
      if (!timedOut) cancelled = true;
      controller.abort(new Error("cancelled"));
    };
    jobCancel?.addEventListener("abort", onJobCancel, { once: true });
    const signal = controller.signal;

    const started = Date.now();
    log.info("job started", { attempt: job.attempt, provider: `${category}/${providerName}` });
    let ws: Workspace | undefined;
    try {
      ws = await createWorkspace(opts.workspaceRoot);
      const inputs = await abortable(prepareInputs(job, ws, log, signal), signal);
      for (const input of inputs) jobLog.write("system", `input artifact ${input.name} ready in ${input.primary ? "the working directory" : `${input.name}/`}`);
      const env = jobEnvironment(job, ws, inputs, opts);
      const context = { job, ws, inputs, env, logger: log, signal, log: jobLog };
      const workspace = ws;
      const outcome = await (opts.sandbox === undefined
        ? provider(context)
        : runInJobSandbox(opts.sandbox, workspace, () => provider(context)));
      if (signal.aborted) throw new JobFailure("JobFailed", "the job was stopped");
      if (outcome.answeredLater === true) {
        log.info("job accepted; its answer comes through JobService", { ms: Date.now() - started });
        return create(JobResultSchema, { ...base, status: ANSWERED_LATER_STATUS, summary: truncate(outcome.summary ?? "", MAX_SUMMARY_CHARS), finishedAt: timestampFromDate(now()) });
      }
      const produced = await abortable(publishOutputs(job, ws, outcome, log, signal), signal);
      if (signal.aborted) throw new JobFailure("JobFailed", "the job was stopped");
      log.info("job succeeded", { ms: Date.now() - started, outputs: produced.length });
      return create(JobResultSchema, {
        ...base,
        status: "Succeeded",
        summary: truncate(outcome.summary ?? "Succeeded", MAX_SUMMARY_CHARS),
        externalExecutionId: outcome.externalExecutionId ?? job.jobId,
        outputArtifacts: produced,
        outputVariables: { ...outcome.outputVariables },
        ...(outcome.revision === undefined ? {} : { revision: outcome.revision }),
        finishedAt: timestampFromDate(now()),
      });
    } catch (err) {
      if (cancelled && jobCancel !== undefined) return cancelledResult(jobCancel);
      if (timedOut) {
        return failed(
          "JobTimedOut",
          `the job exceeded its deadline ${deadline?.toISOString() ?? ""} and was stopped`,
          err instanceof JobFailure && err.summary !== undefined
            ? `Timed out. ${err.summary}`
            : "Timed out: the job exceeded its deadline and was stopped",
        );
      }
      if (cancel.aborted) throw new JobCancelledError(job.jobId);
      if (err instanceof JobFailure) return failed(err.code, err.message, err.summary);
      if (err instanceof TransferError) {
        // Network trouble or an object store error: the job did nothing wrong (an expired or
        // refused grant is not retryable, but neither is it the job's fault).
        return failed(err.retryable ? "SystemUnavailable" : "JobFailed", `artifact transfer failed: ${err.message}`);
      }
      if (isDomainError(err)) {
        return failed(err.code === "ArtifactIntegrityException" ? "ArtifactIntegrityError" : "JobFailed", err.message);
      }
      const message = err instanceof Error ? err.message : String(err);
      log.error("job failed unexpectedly", { err: redactSecrets(message) });
      return failed("JobFailed", `internal runner error: ${message}`);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      cancel.removeEventListener("abort", onCancel);
      jobCancel?.removeEventListener("abort", onJobCancel);
      if (ws !== undefined) {
        await ws.remove().catch((err: unknown) => {
          log.warn("could not remove workspace", { dir: ws?.root, err: String(err) });
        });
      }
    }
  }

  /**
   * Downloads, verifies and extracts every input. The primary input (configuration
   * `PrimarySource`, else the first) goes into the workspace root, as CodeBuild's primary
   * source does; each other input into `<workspace>/<name>/`.
   */
  async function prepareInputs(job: Job, ws: Workspace, log: Logger, signal: AbortSignal): Promise<PreparedInput[]> {
    if (job.inputs.length === 0) return [];
    job.inputs.forEach((input, i) => {
      // Artifact names become directory and environment variable names: AWS's pattern only.
      if (!ARTIFACT_NAME_PATTERN.test(input.name)) {
        throw new JobFailure("ConfigurationError", `inputs[${i}].name: "${input.name}" is not a valid artifact name`);
      }
      if (input.grant === undefined || input.grant.url === "") {
        throw new JobFailure("SystemUnavailable", `inputs[${i}] (${input.name}): the job carries no download grant`);
      }
    });
    const primaryName = job.configuration["PrimarySource"]?.trim();
    const primaryIndex = Math.max(
      0,
      job.inputs.findIndex((i) => i.name === primaryName),
    );
    const ordered = [primaryIndex, ...job.inputs.keys()].filter((i, pos, all) => all.indexOf(i) === pos);
    const prepared: PreparedInput[] = [];
    for (const index of ordered) {
      const input = job.inputs[index];
      if (input === undefined || input.grant === undefined) continue;
      const primary = index === primaryIndex;
      const zipPath = path.join(ws.inputs, `${index}-${input.name}.zip`);
      // Bounded by the recorded size: a grant to a bigger object must not fill the disk.
      await downloadFile(input.grant.url, zipPath, input.sha256, { signal, ...(input.sizeBytes > 0n ? { maxBytes: Number(input.sizeBytes) } : {}) });
      const dir = primary ? ws.src : path.join(ws.src, input.name);
      if (!primary) {
        if (await exists(dir)) {
          throw new JobFailure(
            "ConfigurationError",
            `inputs[${index}] (${input.name}): the primary input already contains a path named "${input.name}"`,
          );
        }
        await mkdir(dir);
      }
      const extracted = await extractZip(zipPath, dir);
      log.debug("input extracted", { artifact: input.name, files: extracted.files, bytes: extracted.bytes, primary });
      prepared.push({ name: input.name, artifactId: input.artifactId, zipPath, dir, primary });
    }
    return prepared;
  }

  /** Zips, uploads and commits every output the job has a grant for. */
  async function publishOutputs(
    job: Job,
    ws: Workspace,
    outcome: ProviderOutcome,
    log: Logger,
    signal: AbortSignal,
  ): Promise<ProducedArtifactInit[]> {
    const produced: ProducedArtifactInit[] = [];
    for (const [index, output] of job.outputs.entries()) {
      const source = outcome.outputs.find((o) => o.name === output.name);
      if (source === undefined) {
        throw new JobFailure("JobFailed", `outputArtifacts: ${output.name} was not produced by the action`);
      }
      const grant = output.grant;
      if (grant === undefined || grant.url === "") {
        throw new JobFailure("SystemUnavailable", `outputs[${index}] (${output.name}): the job carries no upload grant`);
      }
      const zipFile = path.join(ws.outputs, `${index}.zip`);
      const zipped = await zipDirectory(source.dir, [...source.patterns], zipFile);
      if (zipped.files === 0 && source.patterns.length > 0) {
        throw new JobFailure(
          "JobFailed",
          `outputArtifacts ${output.name}: no files match ${source.patterns.map((p) => JSON.stringify(p)).join(", ")}`,
        );
      }
      const url = await uploadUrl(job, index, output.name, grant, log, signal);
      await uploadFile(url, zipFile, zipped.sha256, { signal });
      const sizeBytes = BigInt(zipped.sizeBytes);
      await commitWithRetry({ artifactId: output.artifactId, sha256: zipped.sha256, sizeBytes }, signal);
      produced.push({
        name: output.name,
        artifactId: output.artifactId,
        bucket: grant.bucket,
        key: grant.key,
        sha256: zipped.sha256,
        sizeBytes,
      });
    }
    return produced;
  }

  /**
   * The URL to upload output `name` to: the job's own grant, or a renewed one when the job's
   * expires within {@link GRANT_RENEWAL_MARGIN_MS}. URLs are credentials: never logged.
   */
  async function uploadUrl(job: Job, index: number, name: string, grant: Grant, log: Logger, signal: AbortSignal): Promise<string> {
    const renew = opts.renewOutputGrants;
    const expiresAt = grant.expiresAt === undefined ? undefined : timestampDate(grant.expiresAt);
    if (renew === undefined || expiresAt === undefined) return grant.url;
    const left = expiresAt.getTime() - now().getTime();
    if (left > GRANT_RENEWAL_MARGIN_MS) return grant.url;
    let renewed: readonly OutputGrant[];
    try {
      renewed = await renew({ actionExecutionId: job.actionExecutionId, outputNames: [name] }, signal);
    } catch (err) {
      const message = redactSecrets(err instanceof Error ? err.message : String(err));
      if (left > 0) {
        // Still valid for a little while: try the job's own grant rather than give up.
        log.warn("could not renew an upload grant; using the job's own", { artifact: name, err: message });
        return grant.url;
      }
      const code = (err as { code?: unknown }).code;
      throw new JobFailure(
        code === 14 || code === 4 ? "SystemUnavailable" : "JobFailed",
        `outputs[${index}] (${name}): the upload grant expired and renewing it failed: ${message}`,
      );
    }
    const fresh = renewed.find((o) => o.name === name)?.grant;
    if (fresh === undefined || fresh.url === "" || fresh.method !== "PUT") {
      throw new JobFailure("SystemUnavailable", `outputs[${index}] (${name}): the artifact service returned no renewed upload grant`);
    }
    if (fresh.bucket !== grant.bucket || fresh.key !== grant.key) {
      throw new JobFailure("SystemUnavailable", `outputs[${index}] (${name}): the renewed upload grant is for a different object`);
    }
    log.debug("upload grant renewed", { artifact: name, expiresInMs: left });
    return fresh.url;
  }

  /** CommitArtifact is idempotent, so a transient failure (UNAVAILABLE, DEADLINE_EXCEEDED) is retried briefly. */
  async function commitWithRetry(
    commit: { artifactId: string; sha256: string; sizeBytes: bigint },
    signal: AbortSignal,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await opts.commitArtifact(commit, signal);
        return;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const transient = code === 14 || code === 4;
        if (!transient || attempt >= 3 || signal.aborted) {
          const message = err instanceof Error ? err.message : String(err);
          throw new JobFailure(
            transient ? "SystemUnavailable" : "JobFailed",
            `committing artifact ${commit.artifactId} failed: ${message}`,
          );
        }
        await delay(250 * 2 ** attempt, signal);
      }
    }
  }

  return { run };
}

/**
 * The environment of the job's child processes: the runner's allow-listed base, the job's
 * identity (`SLUICE_*`), its own HOME and TMPDIR, and CodeBuild's names for the source directories so buildspec-style
 * commands work unchanged.
 */
function jobEnvironment(
  job: Job,
  ws: Workspace,
  inputs: readonly PreparedInput[],
  opts: JobRunnerOptions,
): Record<string, string> {
  const env: Record<string, string> = {
    ...opts.baseEnv,
    SLUICE_JOB_ID: job.jobId,
    SLUICE_ATTEMPT: String(job.attempt),
    SLUICE_PIPELINE_NAME: job.pipelineName,
    SLUICE_PIPELINE_VERSION: String(job.pipelineVersion),
    SLUICE_PIPELINE_EXECUTION_ID: job.pipelineExecutionId,
    SLUICE_STAGE_NAME: job.stageName,
    SLUICE_ACTION_NAME: job.actionName,
    SLUICE_ACTION_EXECUTION_ID: job.actionExecutionId,
    SLUICE_RUNNER_ID: opts.runnerId,
    SLUICE_WORKSPACE: ws.src,
    // The job's own HOME and temp dir, inside its workspace and removed with it: nothing of the
    // runner's home (keys, credential helpers) is reachable through $HOME, and one job's temp
    // files are neither seen by the next nor left behind.
    HOME: ws.home,
    TMPDIR: ws.tmp,
    TMP: ws.tmp,
    TEMP: ws.tmp,
    CODEBUILD_SRC_DIR: ws.src,
    CODEBUILD_BUILD_ID: job.jobId,
    CODEBUILD_INITIATOR: `codepipeline/${job.pipelineName}`,
    CODEBUILD_CI: "true",
    CI: "true",
  };
  for (const input of inputs) {
    const token = input.name.replace(/[^A-Za-z0-9_]/g, "_");
    env[`SLUICE_INPUT_${token.toUpperCase()}`] = input.dir;
    if (!input.primary) env[`CODEBUILD_SRC_DIR_${token}`] = input.dir;
  }
  return env;
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Presigned URLs are bearer credentials: strip query strings from any URL in a message
 * that may leave the runner (results, logs).
 */
export function redactSecrets(text: string): string {
  return text.replace(/(https?:\/\/[^\s?#]+)\?[^\s"')]*/g, "$1?…");
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Keeps the END of long text (the last output lines matter most in a failure summary). */
function truncateTail(text: string, max: number): string {
  return text.length > max ? `…${text.slice(text.length - max + 1)}` : text;
}
