// Every name pattern, enum and numeric limit Sluice enforces, in one place:
// those of a pipeline declaration are taken from AWS CodePipeline's API model
// (its shapes and quotas) so a declaration that AWS accepts is judged by the same
// rules here; those of executions are Sluice's own caps. The API layer checks
// requests against these same values, never copies of them.
//
// Every pattern is anchored and built from character classes with at most one
// quantifier per class, so matching is linear in the input (no catastrophic
// backtracking on hostile input); lengths are bounded in the pattern itself.

/** Pipeline names: 1-100 chars of `A-Za-z0-9.@-_` (AWS `PipelineName`). */
export const PIPELINE_NAME_PATTERN = /^[A-Za-z0-9.@_-]{1,100}$/;
/** Stage names: same rule as pipeline names (AWS `StageName`). */
export const STAGE_NAME_PATTERN = PIPELINE_NAME_PATTERN;
/** Action names: same rule as pipeline names (AWS `ActionName`). */
export const ACTION_NAME_PATTERN = PIPELINE_NAME_PATTERN;
/** Artifact names: 1-100 chars of `a-zA-Z0-9_-` (AWS `ArtifactName`). */
export const ARTIFACT_NAME_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
/** Action type provider: 1-35 chars of `0-9A-Za-z_-` (AWS `ActionProvider`). */
export const PROVIDER_PATTERN = /^[A-Za-z0-9_-]{1,35}$/;
/** Action type version: 1-9 chars of `0-9A-Za-z_-` (AWS `Version`). */
export const PROVIDER_VERSION_PATTERN = /^[A-Za-z0-9_-]{1,9}$/;
/** Action namespaces: 1-100 chars of `A-Za-z0-9@-_`, no dot (a dot separates namespace and key). */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9@_-]{1,100}$/;
/** Variable keys inside `#{namespace.key}` (AWS output variable keys / pipeline variable names). */
export const VARIABLE_KEY_PATTERN = /^[A-Za-z0-9@_-]{1,128}$/;
/** A variable reference `#{namespace.key}`: namespace and key use AWS's charset `[A-Za-z0-9@_-]`. */
export const VARIABLE_REFERENCE = /#\{([A-Za-z0-9@_-]+)\.([A-Za-z0-9@_-]+)\}/;
/** Environment variable names of Commands actions: 1-128 chars of `A-Za-z0-9_`. */
export const ENV_VAR_NAME_PATTERN = /^[A-Za-z0-9_]{1,128}$/;
/**
 * Output variables of a Commands action are shell variables read after the
 * commands ran, so they must be valid shell names (AWS only bounds length).
 */
export const OUTPUT_VARIABLE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** IAM role ARN (AWS `RoleArn`), accepted and kept for compatibility; Sluice does not use IAM. */
export const ROLE_ARN_PATTERN = /^arn:aws(?:-[A-Za-z0-9_]+)*:iam::[0-9]{12}:role\/[^\n]*$/;
/**
 * Bucket names (artifact store location, ObjectStore deploy target): the S3
 * naming rule — 3-63 chars of lower-case letters, digits, `.` and `-`,
 * starting and ending with a letter or digit. AWS's artifactStore pattern also
 * allows upper case, but no S3-compatible server (MinIO included) creates
 * such a bucket, so accepting it would only move the failure to run time.
 */
export const BUCKET_NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Action categories (AWS `ActionCategory`). */
export const ACTION_CATEGORIES = ["Source", "Build", "Deploy", "Test", "Invoke", "Approval", "Compute"] as const;
/** A value of ACTION_CATEGORIES. */
export type ActionCategory = (typeof ACTION_CATEGORIES)[number];
/** Action owners (AWS `ActionOwner`). */
export const ACTION_OWNERS = ["AWS", "ThirdParty", "Custom"] as const;
/** A value of ACTION_OWNERS. */
export type ActionOwner = (typeof ACTION_OWNERS)[number];
/** Execution modes (AWS `ExecutionMode`). */
export const EXECUTION_MODES = ["SUPERSEDED", "QUEUED", "PARALLEL"] as const;
/** Execution modes the orchestrator implements: all of AWS's. */
export const SUPPORTED_EXECUTION_MODES: readonly string[] = EXECUTION_MODES;
/** Pipeline types (AWS `PipelineType`). */
export const PIPELINE_TYPES = ["V1", "V2"] as const;

/** Namespaces Sluice reserves: `codepipeline` (execution id) and `variables` (pipeline variables). */
export const RESERVED_NAMESPACES: readonly string[] = ["codepipeline", "variables"];

/** Variables of the reserved `codepipeline` namespace. */
export const PIPELINE_VARIABLES: readonly string[] = ["PipelineExecutionId"];

/**
 * Most violations reported for one declaration. A hostile or badly broken
 * declaration could otherwise produce thousands, and the list travels back in
 * gRPC trailers; the last entry says how many more there were.
 */
export const MAX_VIOLATIONS = 100;

/** Largest declaration (its JSON form, UTF-8) CreatePipeline/UpdatePipeline accept. */
export const MAX_DECLARATION_BYTES = 256 * 1024;

/** Numeric limits of a declaration (AWS quotas and API model bounds). */
export const LIMITS = {
  minStages: 2,
  maxStages: 50,
  minActionsPerStage: 1,
  maxActionsPerStage: 50,
  maxActionsPerPipeline: 500,
  minRunOrder: 1,
  maxRunOrder: 999,
  maxRoleArnLength: 1024,
  minRegionLength: 4,
  maxRegionLength: 30,
  maxConfigurationKeyLength: 50,
  maxConfigurationValueLength: 1000,
  maxCommands: 50,
  maxCommandLength: 1000,
  maxOutputVariables: 15,
  maxEnvironmentVariables: 10,
  maxEnvironmentVariableValueLength: 2000,
  maxOutputFiles: 10,
  maxOutputFileLength: 128,
  minTimeoutInMinutes: 5,
  maxTimeoutInMinutes: 86_400,
  maxEncryptionKeyIdLength: 400,
  maxPipelineVariables: 50,
  maxTriggers: 50,
  maxTriggerFilters: 3,
  maxTriggerPatterns: 8,
  maxTriggerPatternLength: 255,
  maxPipelineVariableNameLength: 128,
  maxPipelineVariableValueLength: 1000,
  maxPipelineVariableDescriptionLength: 200,
  minRulesPerCondition: 1,
  maxRulesPerCondition: 5,
  maxRuleConfigurationEntries: 200,
  maxRuleConfigurationValueLength: 10_000,
  maxRuleInputArtifacts: 5,
} as const;

/** AWS rule providers (RuleTypeId.provider of category Rule, owner AWS). */
export const AWS_RULE_PROVIDERS = ["CloudWatchAlarm", "CodeBuild", "Commands", "DeploymentWindow", "LambdaInvoke", "VariableCheck"] as const;
/** The rule providers Sluice runs: VariableCheck (evaluated by the orchestrator) and Commands (run on a runner). */
export const SUPPORTED_RULE_PROVIDERS = ["Commands", "VariableCheck"] as const;
/** VariableCheck's Operator values (AWS rule reference). */
export const VARIABLE_CHECK_OPERATORS = ["EQ", "NE", "CONTAINS", "MATCHES"] as const;
/** Condition results (AWS Result). */
export const CONDITION_RESULTS = ["ROLLBACK", "FAIL", "RETRY", "SKIP"] as const;
/** Stage retry modes (AWS StageRetryMode). */
export const STAGE_RETRY_MODES = ["FAILED_ACTIONS", "ALL_ACTIONS"] as const;

/**
 * How long after a job's deadline TimerFired fails the action. The runner
 * gives up at the deadline and reports a failure with its own detail; the
 * grace lets that report win over the orchestrator's generic timeout.
 */
export const TIMEOUT_GRACE_MS = 30_000;

/**
 * QUEUED: how many executions may wait in a pipeline's queues. AWS caps the
 * queue without documenting the value; a start request beyond it gets
 * ConcurrentPipelineExecutionsLimitExceededException.
 */
export const MAX_QUEUED_EXECUTIONS = 50;

/** PARALLEL: how many executions may be in flight at once (same exception beyond it). */
export const MAX_PARALLEL_EXECUTIONS = 50;

/** How many clientRequestTokens a pipeline remembers (the oldest is forgotten first). */
export const MAX_REQUEST_TOKENS = 1000;

/** Pipeline execution ids as Sluice mints them and AWS writes them: lower-case UUIDs (AWS `PipelineExecutionId`). */
export const EXECUTION_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A UUID in either case: approval tokens, and the execution ids the approval and artifact services are handed. */
export const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Action execution ids the orchestrator mints; each becomes one object-key segment (never "." or ".."). */
export const ACTION_EXECUTION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A SHA-256 digest in hexadecimal, either case. */
export const SHA256_PATTERN = /^[0-9a-fA-F]{64}$/;
/**
 * A Git commit id, abbreviated or full (SHA-1 or SHA-256). Stricter than
 * AWS's 1-1500 characters on purpose: the value reaches `git fetch`, and a
 * value starting with `-` must never be read as an option.
 */
export const COMMIT_ID_PATTERN = /^[0-9a-fA-F]{4,64}$/;

/** AWS SourceRevisionType; Sluice's sources are Git, so only COMMIT_ID applies. */
export const SOURCE_REVISION_TYPES = ["COMMIT_ID", "IMAGE_DIGEST", "S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY"] as const;
/** AWS StageTransitionType. */
export const TRANSITION_TYPES = ["Inbound", "Outbound"] as const;
/** AWS DisableStageTransition.reason: at most this many characters. */
export const MAX_TRANSITION_REASON = 300;
/** AWS DisableStageTransition.reason: 1–MAX_TRANSITION_REASON characters of this set. */
export const TRANSITION_REASON_PATTERN = new RegExp(`^[a-zA-Z0-9!@ ().*?-]{1,${MAX_TRANSITION_REASON}}$`);
/** AWS StopPipelineExecution.reason: at most this many characters. */
export const MAX_STOP_REASON = 200;
/** AWS ClientRequestToken: 1–128 of `[a-zA-Z0-9-]`. */
export const CLIENT_REQUEST_TOKEN_PATTERN = /^[a-zA-Z0-9-]{1,128}$/;
/** AWS's quota: the output variables of one action, names and values, are at most 122,880 bytes. */
export const MAX_OUTPUT_VARIABLES_BYTES = 122_880;
/** Job timeout of an action whose built-in provider has no default of its own (AWS's default for most actions). */
export const FALLBACK_TIMEOUT_MINUTES = 60;
/** Job timeout of a Commands rule that sets no timeoutInMinutes (AWS's default for other actions). */
export const DEFAULT_RULE_TIMEOUT_MINUTES = 60;
/** Condition checks kept per stage run (each retry or re-entry checks again). */
export const MAX_CONDITION_RUNS = 20;
/** Condition types OverrideStageCondition accepts (AWS ConditionType). */
export const OVERRIDABLE_CONDITION_TYPES: readonly string[] = ["BEFORE_ENTRY", "ON_SUCCESS"];
/** How many executions that succeeded in a stage are kept as rollback targets, per stage. */
export const MAX_ROLLBACK_TARGETS = 5;
/** Trigger types of rollback executions (AWS TriggerType). */
export const ROLLBACK_TRIGGERS: readonly string[] = ["ManualRollback", "AutomatedRollback"];
/**
 * The environment variable type whose value is the secret itself (a Sluice
 * extension beside AWS's PLAINTEXT, PARAMETER_STORE and SECRETS_MANAGER):
 * passed to the job as is, never resolved, masked everywhere it could be shown.
 */
export const SECRET_ENV_TYPE = "SECRET";
/** Types whose values are never shown: SECRET, and AWS's store-backed types (their values name secrets). */
export const SECRET_ENV_TYPES: ReadonlySet<string> = new Set([SECRET_ENV_TYPE, "SECRETS_MANAGER", "PARAMETER_STORE"]);
/** Largest compiled program (instructions) a VariableCheck pattern may produce; bounds the matching cost. */
export const MAX_PATTERN_PROGRAM = 2000;
/** Largest `{n,m}` bound in a VariableCheck pattern. */
export const MAX_PATTERN_REPEAT = 1000;
/** Shortest SECRET value: a shorter one would be masked wherever those characters occur. */
export const MIN_SECRET_LENGTH = 4;
/** AWS StartPipelineExecution: at most this many variables. */
export const MAX_START_VARIABLES = 50;
/** AWS StartPipelineExecution: at most this many source revisions. */
export const MAX_SOURCE_REVISIONS = 50;

/**
 * Approval states: Pending until someone answers; Approved or Rejected afterwards, or Expired
 * when nobody answered before the deadline (never changes again).
 */
export const APPROVAL_STATUSES = ["Pending", "Approved", "Rejected", "Expired"] as const;
/** A value of APPROVAL_STATUSES. */
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];
/** AWS's limit on an approval summary. */
export const MAX_APPROVAL_SUMMARY_LENGTH = 512;

/** Most inputs or outputs one job may ask artifact grants for (AWS allows at most 5 per action type; custom 100 is far above). */
export const MAX_ARTIFACTS_PER_JOB = 100;

/** Longest job result summary (CodePipeline's limit on an execution summary). */
export const MAX_SUMMARY_CHARS = 2048;
/** Longest job result `errorDetails.message`. */
export const MAX_ERROR_MESSAGE_CHARS = 1024;

/** AWS tag rules: at most this many tags on a pipeline. */
export const MAX_TAGS = 50;
/** AWS tag keys: 1 to this many characters. */
export const MAX_TAG_KEY_LENGTH = 128;
/** AWS tag values: at most this many characters. */
export const MAX_TAG_VALUE_LENGTH = 256;
/** AWS caps pagination tokens (nextToken) at this many characters. */
export const MAX_NEXT_TOKEN_LENGTH = 2048;
/** Page size of a List call that gives no maxResults. */
export const DEFAULT_MAX_RESULTS = 100;
/** Largest maxResults of ListPipelines and ListApprovals. */
export const MAX_LIST_RESULTS = 1000;
/** Largest maxResults of ListPipelineExecutions and ListActionExecutions (AWS). */
export const MAX_LIST_EXECUTION_RESULTS = 100;

/** WatchPipelineExecution: how often a stream re-reads the state it watches, unless configured. */
export const DEFAULT_WATCH_RESYNC_MS = 5000;
/** WatchPipelineExecution: open streams one principal may hold, unless configured (WATCH_MAX_PER_PRINCIPAL). */
export const DEFAULT_WATCH_MAX_PER_PRINCIPAL = 16;
/** WatchPipelineExecution: open streams one orchestrator process holds, unless configured (WATCH_MAX_TOTAL). */
export const DEFAULT_WATCH_MAX_TOTAL = 256;
