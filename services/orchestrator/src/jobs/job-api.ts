import { timestampMs } from "@bufbuild/protobuf/wkt";
import { DomainError, queryablePropertyOf } from "@sluice/domain";
import type { JobOutcome, Logger } from "@sluice/domain";
import type { Client, PermissionTable, ServiceImpl } from "@sluice/grpc";
import type { ArtifactService, Job, JobService, PutJobSuccessResultRequest } from "@sluice/proto";
import { notFound } from "../action-types/action-type-store.js";
import type { ActionTypeCatalog } from "../action-types/action-type-store.js";
import type { ApplyResult } from "../runtime/runtime-store.js";
import { freshGrants, jobDataOf } from "./job-data.js";
import { actionTypeKey, jobOf, queryEntry } from "./job-store.js";
import type { JobStatus, JobStore, StoredJob } from "./job-store.js";
import { checkAcknowledge, checkJobId, checkPoll, checkQueryParam, checkSuccess, checkFailure } from "./job-validation.js";

/**
 * Job workers reuse the `runner` role: like runners they take jobs and answer them, and they need
 * exactly the artifact calls runners have (CommitArtifact, RenewOutputGrants) for their outputs;
 * neither role reaches PipelineService. `admin` passes too (checked by @sluice/grpc).
 */
export const JOB_PERMISSIONS: PermissionTable = {
  PollForJobs: ["runner"],
  AcknowledgeJob: ["runner"],
  GetJobDetails: ["runner"],
  PutJobSuccessResult: ["runner"],
  PutJobFailureResult: ["runner"],
};

/**
 * How long a job handed out by a poll waits for its AcknowledgeJob before polls hand it out
 * again (with a new nonce, so the first worker's late acknowledge gets InvalidNonceException).
 */
export const DEFAULT_JOB_HANDOUT_MS = 60_000;

/** How stale the action-type catalog may be when a poll reads it. */
const TYPE_REFRESH_MS = 1000;

/** What the JobService implementation needs. */
export interface JobApiDeps {
  jobs: JobStore;
  /** The declared custom action types: a poll names one of them, and filters only on its queryable property. */
  actionTypes: ActionTypeCatalog;
  /** ArtifactService client for fresh grants and the outputs' records; undefined: jobs have no grants. */
  artifacts: Client<typeof ArtifactService> | undefined;
  /** The path runner results take into the runtime (`runtime.apply` of a JobCompleted). */
  applyResult: (pipelineName: string, result: JobOutcome) => Promise<ApplyResult>;
  logger: Logger;
  /** Epoch ms. @default Date.now */
  clock?: () => number;
  /** @default DEFAULT_JOB_HANDOUT_MS */
  handoutMs?: number;
}

/** The JobService implementation (CodePipeline's job-worker protocol over the `jobs` collection). */
export function createJobApi(deps: JobApiDeps): ServiceImpl<typeof JobService> {
  const { jobs, actionTypes, artifacts, applyResult } = deps;
  const logger = deps.logger.child({ component: "job-api" });
  const clock = deps.clock ?? Date.now;
  const handoutMs = deps.handoutMs ?? DEFAULT_JOB_HANDOUT_MS;

  const existing = async (jobId: string): Promise<StoredJob> => {
    const stored = await jobs.find(jobId);
    if (stored === undefined) throw new DomainError("JobNotFoundException", `job ${jobId} does not exist`, [{ field: "jobId", message: `job ${jobId} does not exist` }]);
    return stored;
  };

  /** A job whose deadline passed is TimedOut from now on; returns its status as it is now. */
  const statusNow = async (stored: StoredJob): Promise<JobStatus> => {
    const live = stored.status === "Queued" || stored.status === "Dispatched" || stored.status === "InProgress";
    if (!live || clock() <= stored.deadline) return stored.status;
    await jobs.transition(stored._id, stored.status, "TimedOut");
    return "TimedOut";
  };

  const notInProgress = (jobId: string, status: JobStatus): DomainError =>
    new DomainError(
      "InvalidJobStateException",
      status === "TimedOut" ? `job ${jobId} timed out: its result is refused` : `job ${jobId} is ${status}, not InProgress: only an acknowledged job takes a result`,
      [{ field: "jobId", message: `job is ${status}` }],
    );

  /**
   * Ends an InProgress job, acknowledged by `principal`, with `outcome`: the job is claimed first (so two results cannot both
   * apply), then the outcome takes the runner results' path. A result the state machine ignores
   * (the action ended meanwhile: stopped, timed out) is refused.
   */
  const finish = async (jobId: string, principal: string, status: "Succeeded" | "Failed", outcomeOf: (job: Job) => Promise<JobOutcome>): Promise<void> => {
    const stored = await existing(jobId);
    const now = await statusNow(stored);
    if (now !== "InProgress") throw notInProgress(jobId, now);
    // Only the worker that acknowledged the job answers it: another runner token cannot end it.
    if (stored.acknowledgedBy !== undefined && stored.acknowledgedBy !== principal) {
      throw new DomainError("AccessDeniedException", `job ${jobId} was acknowledged by another worker; only it may report the result`);
    }
    const job = jobOf(stored);
    const outcome = await outcomeOf(job);
    if (!(await jobs.transition(jobId, "InProgress", status))) throw notInProgress(jobId, (await existing(jobId)).status);
    let applied: ApplyResult;
    try {
      applied = await applyResult(job.pipelineName, outcome);
    } catch (err) {
      // Not applied (an outage): the worker may retry the call.
      await jobs.transition(jobId, status, "InProgress");
      throw err;
    }
    const ignored = applied.decision.ignored;
    if (ignored !== undefined) {
      await jobs.transition(jobId, status, "Failed", { refusedReason: ignored });
      logger.warn("job result not applied", { jobId, pipeline: job.pipelineName, reason: ignored });
      throw new DomainError("InvalidJobStateException", `job ${jobId}: the action no longer takes its result (${ignored})`, [{ field: "jobId", message: "the action has ended" }]);
    }
    logger.info("job result applied", { jobId, pipeline: job.pipelineName, status, continued: outcome.continuationToken !== undefined });
  };

  /** The produced artifacts of a succeeded job: the records the worker committed for its outputs. */
  const producedOutputs = async (job: Job): Promise<JobOutcome["outputArtifacts"]> => {
    if (artifacts === undefined) return [];
    const produced: JobOutcome["outputArtifacts"] = [];
    for (const name of job.outputArtifacts.map((o) => o.name)) {
      try {
        const { artifact } = await artifacts.getArtifact({ artifactId: `${job.actionExecutionId}/${name}` });
        if (artifact?.status === "STORED") {
          produced.push({ name, artifactId: artifact.artifactId, bucket: artifact.bucket, key: artifact.key, sha256: artifact.sha256, sizeBytes: Number(artifact.sizeBytes) });
        }
      } catch (err) {
        // Missing: the state machine fails the action, naming the artifact the success lacks.
        logger.debug("output artifact not found", { jobId: job.jobId, name, error: err instanceof Error ? err.message : String(err) });
      }
    }
    return produced;
  };

  return {
    async pollForJobs(req, ctx) {
      const { actionTypeId, maxBatchSize, queryParam } = checkPoll(req);
      // Workers poll often: a type declared on another replica is seen within a second.
      await actionTypes.refreshIfOlder(TYPE_REFRESH_MS);
      const declared = actionTypes.find(actionTypeId);
      if (declared === undefined || declared.deleted) throw notFound(actionTypeId);
      checkQueryParam(queryParam, queryablePropertyOf(declared.definition), declared._id);
      const query = Object.entries(queryParam).map(([k, v]) => queryEntry(k, v));
      const handed = await jobs.handOut(actionTypeKey(actionTypeId), query, maxBatchSize, clock(), handoutMs);
      const out = [];
      for (const stored of handed) {
        const job = jobOf(stored);
        out.push({ id: stored._id, nonce: stored.nonce ?? "", data: jobDataOf(job, await freshGrants(artifacts, job, ctx.signal)) });
      }
      if (out.length > 0) logger.info("jobs handed out", { actionType: actionTypeKey(actionTypeId), count: out.length, principal: ctx.principal.id });
      return { jobs: out };
    },

    async acknowledgeJob(req, ctx) {
      checkAcknowledge(req);
      const stored = await existing(req.jobId);
      // A repeated acknowledge by the holder (its answer was lost) is answered again.
      if (stored.status === "InProgress" && stored.nonce === req.nonce) return { status: await statusNow(stored) };
      if (stored.nonce !== req.nonce) {
        throw new DomainError("InvalidNonceException", `nonce does not match job ${req.jobId}'s latest hand-out: another worker may hold it; poll again`, [
          { field: "nonce", message: "does not match the job's latest hand-out" },
        ]);
      }
      const now = await statusNow(stored);
      if (now !== "Dispatched") throw new DomainError("InvalidJobStateException", `job ${req.jobId} is ${now}: it cannot be acknowledged`, [{ field: "jobId", message: `job is ${now}` }]);
      const claim = await jobs.acknowledge(req.jobId, req.nonce, ctx.principal.id);
      if (!claim.ok) {
        throw new DomainError("InvalidNonceException", `job ${req.jobId} was handed out again meanwhile: poll again`, [{ field: "nonce", message: "does not match the job's latest hand-out" }]);
      }
      logger.info("job acknowledged", { jobId: req.jobId, principal: ctx.principal.id });
      return { status: "InProgress" };
    },

    async getJobDetails(req, ctx) {
      checkJobId(req.jobId);
      const stored = await existing(req.jobId);
      const status = await statusNow(stored);
      const job = jobOf(stored);
      return { jobDetails: { id: stored._id, status, data: jobDataOf(job, await freshGrants(artifacts, job, ctx.signal)) } };
    },

    async putJobSuccessResult(req, ctx) {
      checkSuccess(req);
      await finish(req.jobId, ctx.principal.id, "Succeeded", async (job) => ({
        ...concerned(job, ctx.principal.id),
        status: "Succeeded",
        ...successDetails(req),
        outputArtifacts: req.continuationToken === "" ? await producedOutputs(job) : [],
      }));
      return {};
    },

    async putJobFailureResult(req, ctx) {
      const details = checkFailure(req);
      await finish(req.jobId, ctx.principal.id, "Failed", (job) =>
        Promise.resolve({
          ...concerned(job, ctx.principal.id),
          status: "Failed",
          summary: details.message,
          errorDetails: { code: details.type, message: details.message },
          ...(details.externalExecutionId === "" ? {} : { externalExecutionId: details.externalExecutionId }),
          outputArtifacts: [],
        }),
      );
      return {};
    },
  };
}

/** Who a job's outcome concerns, and who answered it. */
function concerned(job: Job, principal: string): Omit<JobOutcome, "status" | "outputArtifacts"> {
  return {
    jobId: job.jobId,
    actionExecutionId: job.actionExecutionId,
    attempt: job.attempt,
    pipelineName: job.pipelineName,
    pipelineExecutionId: job.pipelineExecutionId,
    stageName: job.stageName,
    actionName: job.actionName,
    outputVariables: {},
    updatedBy: principal,
  };
}

/** The parts of a JobOutcome a PutJobSuccessResult sets. */
function successDetails(req: PutJobSuccessResultRequest): Partial<JobOutcome> {
  const out: Partial<JobOutcome> = { outputVariables: { ...req.outputVariables } };
  const details = req.executionDetails;
  if (details !== undefined) {
    if (details.summary !== "") out.summary = details.summary;
    if (details.externalExecutionId !== "") out.externalExecutionId = details.externalExecutionId;
    if (details.percentComplete !== undefined) out.percentComplete = details.percentComplete;
  }
  if (req.continuationToken !== "") out.continuationToken = req.continuationToken;
  const rev = req.currentRevision;
  if (rev !== undefined && rev.revision !== "") {
    out.revision = {
      revisionId: rev.revision,
      ...(rev.revisionSummary === "" ? {} : { revisionSummary: rev.revisionSummary }),
      ...(rev.created === undefined ? {} : { created: timestampMs(rev.created) }),
    };
  }
  return out;
}
