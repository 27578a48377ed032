// The orchestrator service: PipelineService and JobService over gRPC, the runtime store around
// the pure state machine, the outbox, and the result/source consumers.
export { PIPELINE_PERMISSIONS, createPipelineApi, pipelineArn } from "./api/pipeline-api.js";
export type { PipelineApiDeps } from "./api/pipeline-api.js";
export {
  actionRetryEvent,
  overrideEvent,
  rollbackEvent,
  stageRetryEvent,
  startOptions,
  stopEvent,
  transitionEvent,
} from "./api/execution-requests.js";
export type { StartOptions } from "./api/execution-requests.js";
export { watchExecution } from "./api/watch.js";
export type { WatchSource, WatchedState } from "./api/watch.js";
export { loadOrchestratorConfig } from "./config.js";
export { DEFAULT_JOB_HANDOUT_MS, JOB_PERMISSIONS, createJobApi } from "./jobs/job-api.js";
export type { JobApiDeps } from "./jobs/job-api.js";
export { CUSTOM_JOBS_DURABLE, customJobsFilter, runnerJobsFilter } from "./jobs/job-intake.js";
export { actionTypeKey, createJobStore } from "./jobs/job-store.js";
export type { JobStatus, JobStore, StoredJob } from "./jobs/job-store.js";
export type { OrchestratorConfig } from "./config.js";
export { createPipelineStore, parseDeclaration, pipelineNotFound } from "./pipelines/pipeline-store.js";
export type { PipelinePage, PipelineStore, StoredPipeline, StoredTag } from "./pipelines/pipeline-store.js";
export { specOf } from "./pipelines/spec-of.js";
export { DECLARATION_DETAIL_TYPE, cancelEntry, commandEntry, declarationEntry, eventEntry, jobEntry, parseCancel, parseEvent, parseJob } from "./runtime/outbox.js";
export type { DeclarationChange, OutboxEntry } from "./runtime/outbox.js";
export { createOutboxPublisher } from "./runtime/publisher.js";
export type { OutboxPublisher, OutboxPublisherOptions, PublishOutcome } from "./runtime/publisher.js";
export { decodeOutbox } from "./runtime/runtime-codec.js";
export { createRuntimeStore } from "./runtime/runtime-store.js";
export type { ApplyOptions, ApplyResult, ArchivedExecution, RuntimeDoc, RuntimeStore, RuntimeStoreOptions } from "./runtime/runtime-store.js";
export { startOrchestrator } from "./service.js";
export type { Orchestrator, OrchestratorDeps } from "./service.js";
