export { ERROR_CODES, DomainError, invalid, isDomainError } from "./errors.js";
export type { ErrorCode, FieldViolation } from "./errors.js";
export { noopLogger } from "./logger.js";
export type { Logger } from "./logger.js";
// Strict reading of AWS --cli-input-json files: the CLI and the orchestrator (.sluice/pipeline.json) share it.
export { readPipelineJson, readRequestJson } from "./pipeline-json.js";
// -- validation exports (owned by the validation helper) --
export { validatePipeline } from "./validation/validate.js";
export { EVENT_RULE_STATES, MAX_EVENT_RULES, MAX_SCHEDULES } from "./validation/pipeline-starts.js";
export { parseSchedule } from "./schedules/schedule-expression.js";
export type { Schedule } from "./schedules/schedule-expression.js";
export type { ValidationOptions } from "./validation/validate.js";
export type { CustomActionTypeLookup } from "./validation/positions.js";
export {
  CONFIGURATION_PROPERTY_TYPES,
  DEFAULT_CUSTOM_TIMEOUT_MINUTES,
  MAX_CUSTOM_ACTION_TYPES,
  QUERYABLE_VALUE_PATTERN,
  checkCustomActionType,
  customActionTypeKey,
  customActionTypeSpec,
  queryablePropertyOf,
} from "./validation/custom-action-types.js";
export type { ArtifactCounts, CustomActionType, CustomActionTypeProperty, CustomActionTypeSettings } from "./validation/custom-action-types.js";
export {
  DEFAULT_ARTIFACT_BUCKET,
  assertValidPipeline,
  checkDeclarationSize,
  declarationSizeBytes,
  normalizePipeline,
} from "./validation/normalize.js";
export {
  ACTION_CATEGORIES,
  ACTION_EXECUTION_ID_PATTERN,
  ACTION_NAME_PATTERN,
  ACTION_OWNERS,
  APPROVAL_STATUSES,
  ARTIFACT_NAME_PATTERN,
  AWS_RULE_PROVIDERS,
  BUCKET_NAME_PATTERN,
  COMMIT_ID_PATTERN,
  CONDITION_RESULTS,
  DEFAULT_MAX_RESULTS,
  DEFAULT_WATCH_MAX_PER_PRINCIPAL,
  DEFAULT_WATCH_MAX_TOTAL,
  DEFAULT_WATCH_RESYNC_MS,
  ENV_VAR_NAME_PATTERN,
  EXECUTION_ID_PATTERN,
  EXECUTION_MODES,
  LIMITS,
  MAX_APPROVAL_SUMMARY_LENGTH,
  MAX_ARTIFACTS_PER_JOB,
  MAX_DECLARATION_BYTES,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_LIST_EXECUTION_RESULTS,
  MAX_LIST_RESULTS,
  MAX_NEXT_TOKEN_LENGTH,
  MAX_PARALLEL_EXECUTIONS,
  MAX_QUEUED_EXECUTIONS,
  MAX_REQUEST_TOKENS,
  MAX_SOURCE_REVISIONS,
  MAX_START_VARIABLES,
  MAX_SUMMARY_CHARS,
  MAX_TAGS,
  MAX_TAG_KEY_LENGTH,
  MAX_TAG_VALUE_LENGTH,
  MAX_TRANSITION_REASON,
  MAX_VIOLATIONS,
  NAMESPACE_PATTERN,
  OUTPUT_VARIABLE_PATTERN,
  PIPELINE_NAME_PATTERN,
  PIPELINE_TYPES,
  PIPELINE_VARIABLES,
  PROVIDER_PATTERN,
  PROVIDER_VERSION_PATTERN,
  RESERVED_NAMESPACES,
  ROLE_ARN_PATTERN,
  SHA256_PATTERN,
  SOURCE_REVISION_TYPES,
  STAGE_NAME_PATTERN,
  STAGE_RETRY_MODES,
  SUPPORTED_EXECUTION_MODES,
  SUPPORTED_RULE_PROVIDERS,
  TIMEOUT_GRACE_MS,
  TRANSITION_TYPES,
  UUID_PATTERN,
  VARIABLE_CHECK_OPERATORS,
  VARIABLE_KEY_PATTERN,
  CLIENT_REQUEST_TOKEN_PATTERN,
  DEFAULT_RULE_TIMEOUT_MINUTES,
  FALLBACK_TIMEOUT_MINUTES,
  MAX_CONDITION_RUNS,
  MAX_OUTPUT_VARIABLES_BYTES,
  MAX_PATTERN_PROGRAM,
  MAX_ROLLBACK_TARGETS,
  MAX_STOP_REASON,
  MIN_SECRET_LENGTH,
  OVERRIDABLE_CONDITION_TYPES,
  ROLLBACK_TRIGGERS,
  SECRET_ENV_TYPE,
  SECRET_ENV_TYPES,
  TRANSITION_REASON_PATTERN,
} from "./limits.js";
export { stageConditionFields } from "./validation/conditions.js";
export type {
  ConditionDeclarationLike,
  RuleDeclarationLike,
  StageConditionFields,
  StageConditionsDeclarationLike,
} from "./validation/conditions.js";
export type { ActionCategory, ActionOwner, ApprovalStatus } from "./limits.js";
export {
  BUILT_IN_PROVIDERS,
  DEFAULT_BRANCH,
  DEFAULT_RUNNER_POOL,
  DEFAULT_TIMEOUT_MINUTES,
  GIT_OUTPUT_VARIABLES,
  OBJECT_SOURCE_OUTPUT_VARIABLES,
  RUNNER_POOL_KEY,
  actionTimeoutMinutes,
  commandsOf,
  gitSourceOf,
  isObjectSource,
  objectSourceOf,
  objectStoreTargetOf,
  providerKey,
  resolveProvider,
  runnerPoolOf,
  runnerPoolProblem,
  splitCommands,
  supportedProviders,
} from "./validation/providers.js";
export type {
  ActionTypeIdLike,
  ArtifactBounds,
  BuiltInProvider,
  CommandsSource,
  ConfigurationFormat,
  ConfigurationProperty,
  GitSourceSettings,
  ObjectSourceSettings,
  ObjectStoreTarget,
  ProviderRoute,
  ProviderSpec,
} from "./validation/providers.js";
export {
  BUILD_SPEC_KEY,
  BUILD_SPEC_PHASES,
  MAX_BUILD_SPEC_FILE_BYTES,
  buildSpecOutputProblems,
  buildSpecPathProblem,
  buildSpecSourceOf,
  commandsOutputVariables,
  parseBuildSpec,
} from "./validation/buildspec.js";
export type {
  BuildSpec,
  BuildSpecArtifact,
  BuildSpecOnFailure,
  BuildSpecParse,
  BuildSpecPhase,
  BuildSpecPhaseName,
  BuildSpecSource,
  DeclaredOutput,
} from "./validation/buildspec.js";
// -- end validation exports --
// -- execution exports (owned by the execution helper) --
export {
  DETAIL_TYPES,
  decide,
  initialRuntime,
  isFinal,
  isTerminal,
  nextDeadline,
} from "./execution/decide.js";
export { findExecution, waitersOf } from "./execution/draft.js";
export { variableCheck } from "./execution/conditions.js";
export type { VariableCheckOutcome } from "./execution/conditions.js";
export { compileSafePattern } from "./execution/safe-regex.js";
export type { SafePattern, SafePatternResult } from "./execution/safe-regex.js";
export { toPipelineSpec } from "./execution/spec.js";
export type { ToPipelineSpecOptions } from "./execution/spec.js";
export {
  actionExecutionDetails,
  actionExecutionView,
  conditionStateFields,
  conditionStateView,
  executionSummaryView,
  executionView,
  newestFirst,
  pipelineStateView,
  transitionStateView,
} from "./execution/views.js";
export type { ActionExecutionDetailSpec, ActionExecutionFields, ArtifactDetailSpec, PipelineTimes } from "./execution/views.js";
export { jobInit, jobOutcomeFromProto, sourceRevisionFromProto, stateChangeEventInit } from "./execution/convert.js";
export { JOB_STARTED_STATUS, queuedJobsOf, runOfJob, staleAttempt } from "./execution/fencing.js";
export type { QueuedJob } from "./execution/fencing.js";
export { resolveScript, resolveValue } from "./execution/variables.js";
export {
  SECRET_MASK,
  actionSecrets,
  createMasker,
  maskDeep,
  maskUserinfo,
  pipelineSecrets,
  scrubOutcome,
  secretForms,
  stripUserinfo,
  viewMasker,
} from "./execution/secrets.js";
export { outputVariablesOverLimit } from "./execution/actions.js";
export { REFERENCE_ENV_PREFIX, RESERVED_ENV_PREFIX, bindShellReferences } from "./execution/shell-references.js";
export type { BoundScript, ShellReference } from "./execution/shell-references.js";
export type { Resolution } from "./execution/variables.js";
export type {
  ActionAttempt,
  ActionLatest,
  ActionRun,
  ActionSlot,
  ActionSpec,
  ActionStatus,
  ArtifactRef,
  ConditionResult,
  ConditionRun,
  ConditionSpec,
  ConditionStatus,
  ConditionType,
  DecideContext,
  Decision,
  Emitted,
  EnvironmentVariableSpec,
  ErrorDetailsSpec,
  EventArtifactSpec,
  ExecutionCommand,
  ExecutionEvent,
  ExecutionMode,
  ExecutionRuntime,
  ExecutionStatus,
  ExecutionType,
  JobOutcome,
  JobSpec,
  OutputArtifactSpec,
  PipelineRuntime,
  PipelineSpec,
  PipelineVariableOverride,
  PipelineVariableSpec,
  ProducedArtifactRef,
  RequestTokenEntry,
  ResolvedPipelineVariable,
  RetryStageMetadataSpec,
  RollbackTarget,
  RuleRun,
  RuleSpec,
  RuleStatus,
  RuleTypeIdSpec,
  SourceRevisionRef,
  StageLatest,
  StageRun,
  StageConditionsSpec,
  StageSlot,
  StageSpec,
  StageRetryMode,
  StageStatus,
  StateChangeEventSpec,
  StopTrigger,
  TransitionStateSpec,
  TriggerSpec,
} from "./execution/types.js";
// -- end execution exports --
export { LOG_ARTIFACT_NAME_PATTERN, logArtifactIdOf, logArtifactName, logStreamArnOf } from "./action-logs.js";
// -- trigger exports --
export { compileGlob, globMatch, globProblem } from "./triggers/glob.js";
export type { CompiledGlob, GlobCompileResult } from "./triggers/glob.js";
export { criteriaMatch, matchGitTrigger } from "./triggers/match.js";
export type {
  GitFilterCriteriaLike,
  GitPullRequestFilterLike,
  GitPushFilterLike,
  GitTriggerEvent,
  GitTriggerFiltersLike,
  PullRequestEventType,
  TriggerMatch,
} from "./triggers/match.js";
export { PULL_REQUEST_EVENTS, TRIGGER_PROVIDER_TYPES } from "./validation/triggers.js";
// -- end trigger exports --
