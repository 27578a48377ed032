import type { MessageInitShape } from "@bufbuild/protobuf";
import { SECRET_MASK, createMasker as createSecretMasker } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import type { Job, SourceRevisionDetailSchema } from "@sluice/proto";
import type { Workspace } from "../workspace.js";

/**
 * What a provider sees and returns. The job runner owns everything around a provider:
 * the workspace, input downloads and extraction, output zipping and upload, the deadline,
 * and turning failures into a `JobResult`; a provider only does its action's work.
 */

/**
 * Error codes a runner puts in `JobResult.errorDetails.code`. The first five are the failure
 * types of CodePipeline's `FailureDetails`; `JobTimedOut` is Sluice's name for a deadline hit,
 * `JobCancelled` for a job the orchestrator cancelled (abandoned or timed-out action).
 */
export const FAILURE_CODES = [
  "JobFailed",
  "ConfigurationError",
  "RevisionUnavailable",
  "SystemUnavailable",
  "PermissionError",
  "JobTimedOut",
  "ArtifactIntegrityError",
  "JobCancelled",
] as const;

export type FailureCode = (typeof FAILURE_CODES)[number];

/** A failure the job reports as its result (status Failed); never retried by the bus. */
export class JobFailure extends Error {
  override readonly name = "JobFailure";
  constructor(
    readonly code: FailureCode,
    message: string,
    /** Longer text for `JobResult.summary` (e.g. the last lines of a failed build); defaults to `message`. */
    readonly summary?: string,
  ) {
    super(message);
  }
}

/** One input artifact, downloaded, verified and extracted. */
export interface PreparedInput {
  readonly name: string;
  readonly artifactId: string;
  /** The verified zip as downloaded. */
  readonly zipPath: string;
  /** Where it was extracted (the workspace's `src/` for the primary input). */
  readonly dir: string;
  readonly primary: boolean;
}

/** Everything a provider gets for one job. */
export interface ProviderContext {
  readonly job: Job;
  readonly ws: Workspace;
  readonly inputs: readonly PreparedInput[];
  /**
   * The base environment for child processes: the runner's allow-listed variables
   * (PATH, HOME, …) plus the job's `SLUICE_*` / `CODEBUILD_*` variables. Never the
   * runner's own environment, which holds its credentials.
   */
  readonly env: Readonly<Record<string, string>>;
  readonly logger: Logger;
  /** Aborted when the job's deadline passes or the runner shuts down. */
  readonly signal: AbortSignal;
  /**
   * The job's live log (SLUICE_LOGS, stored whole when the job ends). Lines written here are
   * masked again, but a provider masks its output before writing it (see shell-job.ts).
   */
  readonly log?: JobLogWriter;
}

/** What a provider may do with the job's log. */
export interface JobLogWriter {
  write(stream: "stdout" | "stderr" | "system", text: string): void;
}

/** A directory (and globs inside it) the job runner zips and uploads as one output artifact. */
export interface ProducedOutput {
  readonly name: string;
  readonly dir: string;
  /** Globs relative to `dir`; empty = everything. */
  readonly patterns: readonly string[];
}

/** What a provider returns when the action succeeded. */
export interface ProviderOutcome {
  readonly summary?: string;
  readonly externalExecutionId?: string;
  readonly outputVariables?: Readonly<Record<string, string>>;
  readonly revision?: MessageInitShape<typeof SourceRevisionDetailSchema>;
  readonly outputs: readonly ProducedOutput[];
  /**
   * The work was accepted and is answered later through JobService (an Http endpoint's 202): the
   * runner publishes no result, and the action waits for PutJobSuccessResult/PutJobFailureResult.
   */
  readonly answeredLater?: boolean;
}

/**
 * The status of a runner's JobResult for a job answered later through JobService. It never leaves
 * the runner: it settles the job's lease (acked, not redelivered) without publishing a result.
 */
export const ANSWERED_LATER_STATUS = "AnsweredLater";

/** A built-in provider: does the action's work or throws (a {@link JobFailure} when it is the job's fault). */
export type Provider = (ctx: ProviderContext) => Promise<ProviderOutcome>;

/**
 * Replaces every occurrence of the given secret values — as written, base64 and
 * URL-encoded — with `***` (the domain's masker, which finds the same forms the
 * views mask). Longer forms are replaced first so a secret that contains
 * another is masked whole.
 */
export function createMasker(secrets: readonly string[]): (text: string) => string {
  return createSecretMasker(secrets, "***");
}

/**
 * Masks secrets in values that leave the runner as data (output variables) with the mask the
 * state and views use (`****`), so a later action and every view see the same text.
 */
export function createValueMasker(secrets: readonly string[]): (text: string) => string {
  return createSecretMasker(secrets, SECRET_MASK);
}

/** Keeps the last `max` lines of output for failure summaries. */
export class LineTail {
  private readonly lines: string[] = [];
  constructor(private readonly max: number) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  toString(): string {
    return this.lines.join("\n");
  }
}

/** Reads a configuration value, trimmed; undefined when absent or blank. */
export function configValue(job: Job, key: string): string | undefined {
  const value = job.configuration[key]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

/** Reads a required configuration value or fails the job naming the key. */
export function requireConfig(job: Job, key: string): string {
  const value = configValue(job, key);
  if (value === undefined) {
    throw new JobFailure("ConfigurationError", `configuration.${key}: is required`);
  }
  return value;
}

/** Parses a boolean configuration value ("true"/"false", any case) with a default. */
export function booleanConfig(job: Job, key: string, fallback: boolean): boolean {
  const value = configValue(job, key);
  if (value === undefined) return fallback;
  switch (value.toLowerCase()) {
    case "true":
      return true;
    case "false":
      return false;
    default:
      throw new JobFailure("ConfigurationError", `configuration.${key}: must be "true" or "false", got "${value}"`);
  }
}

/**
 * Resolves with `promise`, or rejects as soon as `signal` aborts. The abandoned operation
 * keeps running in the background; its outcome is swallowed so it cannot become an
 * unhandled rejection.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(new JobFailure("JobFailed", "the job was stopped"));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new JobFailure("JobFailed", "the job was stopped"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
