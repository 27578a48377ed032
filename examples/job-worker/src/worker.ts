import type { createJobClient } from "@sluice/client";

/** A JobService client (its token needs the `runner` role). */
export type JobClient = ReturnType<typeof createJobClient>;
/** One job as PollForJobs hands it out: id, nonce and JobData. */
export type PolledJob = Awaited<ReturnType<JobClient["pollForJobs"]>>["jobs"][number];

/** The custom action type a worker serves (owner Custom). */
export interface WorkerActionType {
  readonly category: string;
  readonly provider: string;
  readonly version: string;
}

/** What the example worker does with its jobs. */
export interface WorkOptions {
  /**
   * Follow-up jobs before the final success: the first job answers with continuation token
   * `step-1`, its follow-up with `step-2`, …, the job carrying `step-<steps>` succeeds. @default 2
   */
  readonly steps?: number;
  /** Where progress lines go. @default nothing */
  readonly log?: (line: string) => void;
}

/** What became of one job. */
export type Handled = { readonly jobId: string; readonly outcome: "continued" | "succeeded" | "failed"; readonly continuationToken?: string };

/** Which step a job is at: 0 for a first job, n for the follow-up carrying `step-<n>`. */
function stepOf(token: string): number | undefined {
  if (token === "") return 0;
  const match = /^step-(\d+)$/.exec(token);
  return match === null ? undefined : Number(match[1]);
}

/**
 * Works one polled job as a real worker would: acknowledges it with the poll's nonce (a second
 * worker holding another nonce would get InvalidNonceException here), reads its details (fresh
 * artifact grants), then either continues with the next step's token or, at the last step,
 * succeeds with an output variable. A token it does not know fails the job as a ConfigurationError.
 */
export async function handleJob(client: JobClient, job: PolledJob, opts: WorkOptions = {}): Promise<Handled> {
  const steps = opts.steps ?? 2;
  const log = opts.log ?? (() => undefined);
  await client.acknowledgeJob({ jobId: job.id, nonce: job.nonce });
  const { jobDetails } = await client.getJobDetails({ jobId: job.id });
  const data = jobDetails?.data;
  const where = `${data?.pipelineContext?.pipelineName ?? "?"}/${data?.pipelineContext?.action?.name ?? "?"}`;
  const step = stepOf(data?.continuationToken ?? "");
  if (step === undefined) {
    await client.putJobFailureResult({ jobId: job.id, failureDetails: { type: "ConfigurationError", message: `unknown continuation token ${JSON.stringify(data?.continuationToken)}` } });
    log(`${where}: job ${job.id} failed (unknown continuation token)`);
    return { jobId: job.id, outcome: "failed" };
  }
  const percentComplete = Math.round(((step + 1) * 100) / (steps + 1));
  if (step < steps) {
    const continuationToken = `step-${step + 1}`;
    await client.putJobSuccessResult({
      jobId: job.id,
      continuationToken,
      executionDetails: { summary: `step ${step + 1} of ${steps + 1} done`, percentComplete, externalExecutionId: `example-${job.id}` },
    });
    log(`${where}: job ${job.id} continued with ${continuationToken} (${percentComplete}%)`);
    return { jobId: job.id, outcome: "continued", continuationToken };
  }
  await client.putJobSuccessResult({
    jobId: job.id,
    executionDetails: { summary: `all ${steps + 1} steps done`, percentComplete: 100, externalExecutionId: `example-${job.id}` },
    outputVariables: { StepsDone: String(steps + 1) },
  });
  log(`${where}: job ${job.id} succeeded`);
  return { jobId: job.id, outcome: "succeeded" };
}

/** Polls once for up to `maxBatchSize` jobs of the type and works each. */
export async function pollOnce(client: JobClient, actionType: WorkerActionType, opts: WorkOptions & { readonly maxBatchSize?: number } = {}): Promise<Handled[]> {
  const { jobs } = await client.pollForJobs({ actionTypeId: { ...actionType, owner: "Custom" }, maxBatchSize: opts.maxBatchSize ?? 10 });
  const handled: Handled[] = [];
  for (const job of jobs) handled.push(await handleJob(client, job, opts));
  return handled;
}

/** Polls every `intervalMs` (an empty poll waits, a full one polls again at once) until `signal` aborts. */
export async function runWorker(client: JobClient, actionType: WorkerActionType, signal: AbortSignal, opts: WorkOptions & { readonly intervalMs?: number } = {}): Promise<void> {
  const intervalMs = opts.intervalMs ?? 1000;
  while (!signal.aborted) {
    let handled: Handled[] = [];
    try {
      handled = await pollOnce(client, actionType, opts);
    } catch (err) {
      // A lost race (InvalidNonceException) or an unreachable orchestrator: poll again.
      opts.log?.(`poll failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (handled.length === 0) await sleep(intervalMs, signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
