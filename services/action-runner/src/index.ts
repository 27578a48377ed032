// @sluice/action-runner: runs jobs of the built-in providers (Git source, Commands,
// ObjectStore deploy) from the JetStream job queue. Exported for in-process tests and the
// local cluster; every export is named here.
export { JOB_ENV_ALLOWLIST, actionRunnerEnvSchema, loadActionRunnerConfig, secretVariableNames } from "./config.js";
export { scrubEnviron } from "./environ-scrub.js";
export { PID_NAMESPACE_ARGV, resolveJobSandbox, runInJobSandbox, sandboxArgv } from "./isolation.js";
export type { JobIsolationMode, JobIsolationSetting, JobSandbox, ResolveJobSandboxOptions } from "./isolation.js";
export { LeaseLostError, createJobLeases } from "./job-leases.js";
export type { HeldJob, JobLeases, JobLeasesOptions } from "./job-leases.js";
export type { ActionRunnerConfig } from "./config.js";
export { runnerDurable, startActionRunner } from "./service.js";
export { JobCancelledReason, createCancellations, subscribeCancellations } from "./cancellations.js";
export type { CancelOutcome, Cancellations, CancellationsOptions, RunningJob } from "./cancellations.js";
export type { ActionRunnerDeps, ActionRunnerService } from "./service.js";
export { GRANT_RENEWAL_MARGIN_MS, JobCancelledError, cancelReasonOf, createJobRunner, redactSecrets } from "./job-runner.js";
export type { ArtifactCommitter, JobRunner, JobRunnerOptions, OutputGrantRenewer, ProviderTable } from "./job-runner.js";
export { FAILURE_CODES, JobFailure } from "./providers/provider.js";
export type {
  FailureCode,
  PreparedInput,
  ProducedOutput,
  Provider,
  ProviderContext,
  ProviderOutcome,
} from "./providers/provider.js";
export { SERVED_ACTIONS, createProviderTable } from "./providers/table.js";
export type { DeployGranter } from "./providers/object-store-deploy.js";
export { chownTree, createWorkspace, withWorkspace } from "./workspace.js";
export type { Workspace } from "./workspace.js";
