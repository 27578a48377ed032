// Types of the pure execution state machine.
//
// Everything here is plain JSON-serialisable data: the orchestrator stores a
// PipelineRuntime in MongoDB as-is. Hence: no classes, no Date (epoch ms
// numbers), no Map, no `undefined` values (optional fields are absent).
//
// Keys of objects used as maps are never user-chosen names that may contain
// a "." (stage and action names may: `[A-Za-z0-9.@_-]+`), because MongoDB
// queries cannot address such keys and FerretDB rejects them outright. So
// everything keyed by a stage or action name is an array of entries carrying
// the name; maps are keyed only by execution ids (UUIDs), namespaces and
// variable keys (`[A-Za-z0-9@_-]+`, no dot).

// ---------------------------------------------------------------- statuses

/** AWS PipelineExecutionStatus values Sluice produces. */
export type ExecutionStatus = "InProgress" | "Succeeded" | "Failed" | "Superseded" | "Stopped" | "Stopping" | "Cancelled";

/** AWS StageExecutionStatus values Sluice produces. */
export type StageStatus = "InProgress" | "Succeeded" | "Failed" | "Stopped" | "Stopping" | "Cancelled" | "Skipped";

/** AWS ActionExecutionStatus values. */
export type ActionStatus = "InProgress" | "Succeeded" | "Failed" | "Abandoned";

/** AWS execution modes. */
export type ExecutionMode = "SUPERSEDED" | "QUEUED" | "PARALLEL";

/** AWS ExecutionType. */
export type ExecutionType = "STANDARD" | "ROLLBACK";

/** AWS StageRetryMode. */
export type StageRetryMode = "FAILED_ACTIONS" | "ALL_ACTIONS";

/**
 * When a stage condition is checked: before the stage's actions run
 * (AWS ConditionType BEFORE_ENTRY), after they all succeeded (ON_SUCCESS),
 * or once one failed (ON_FAILURE; Sluice's name, AWS has no value for it).
 */
export type ConditionType = "BEFORE_ENTRY" | "ON_SUCCESS" | "ON_FAILURE";

/** AWS Result: what a condition engages. */
export type ConditionResult = "ROLLBACK" | "FAIL" | "RETRY" | "SKIP";

/** AWS ConditionExecutionStatus. */
export type ConditionStatus = "InProgress" | "Failed" | "Errored" | "Succeeded" | "Cancelled" | "Abandoned" | "Overridden";

/** AWS RuleExecutionStatus (the same values as ActionExecutionStatus). */
export type RuleStatus = "InProgress" | "Succeeded" | "Failed" | "Abandoned";

// ---------------------------------------------------------------- the pipeline as the machine sees it

/** The normalized declaration reduced to what execution needs (see `toPipelineSpec`). */
export interface PipelineSpec {
  name: string;
  version: number;
  executionMode: ExecutionMode;
  /** Bucket of the artifact store. */
  artifactBucket: string;
  stages: StageSpec[];
  /** Declared pipeline variables (`#{variables.<name>}`), in declaration order. */
  variables: PipelineVariableSpec[];
}

/** A declared pipeline variable. */
export interface PipelineVariableSpec {
  name: string;
  defaultValue?: string;
  description?: string;
}

/** One declared stage. */
export interface StageSpec {
  name: string;
  actions: ActionSpec[];
  /** Checked before the actions run: FAIL or SKIP the stage when a rule fails. */
  beforeEntry?: StageConditionsSpec;
  /** Checked after every action succeeded: FAIL or ROLLBACK when a rule fails. */
  onSuccess?: StageConditionsSpec;
  /** What a failed stage does: ROLLBACK, automatic RETRY, or a condition whose rules decide on a ROLLBACK. */
  onFailure?: StageConditionsSpec;
}

/** AWS BeforeEntryConditions / SuccessConditions / FailureConditions. */
export interface StageConditionsSpec {
  /** onFailure only: ROLLBACK or RETRY, engaged when the stage fails (without conditions). */
  result?: ConditionResult;
  /** onFailure with result RETRY. */
  retryConfiguration?: { retryMode: StageRetryMode };
  /** At most one (the validator enforces AWS's "exactly 1" where it applies). */
  conditions: ConditionSpec[];
}

/** AWS Condition. */
export interface ConditionSpec {
  /** Absent: FAIL (beforeEntry, onSuccess) or ROLLBACK (onFailure). */
  result?: ConditionResult;
  rules: RuleSpec[];
}

/** AWS RuleTypeId. */
export interface RuleTypeIdSpec {
  /** Always "Rule". */
  category: string;
  owner: string;
  /** VariableCheck (evaluated by decide()) or Commands (run on a runner). */
  provider: string;
  version: string;
}

/** AWS RuleDeclaration, reduced to what Sluice runs. */
export interface RuleSpec {
  /** Unique in the pipeline. */
  name: string;
  ruleTypeId: RuleTypeIdSpec;
  /** VariableCheck: Variable, Value, Operator. */
  configuration: Record<string, string>;
  /** Commands rules. */
  commands: string[];
  inputArtifacts: string[];
  /** Commands rules: the job timeout (default DEFAULT_RULE_TIMEOUT_MINUTES). */
  timeoutInMinutes?: number;
}

/** One declared action. */
export interface ActionSpec {
  name: string;
  /** Source, Build, Test, Deploy, Approval, Invoke, Compute. */
  category: string;
  owner: string;
  /** The provider as declared (e.g. "CodeBuild"). */
  provider: string;
  /** The built-in provider that runs it: Git, Commands, Manual or ObjectStore. */
  builtIn: string;
  providerVersion: string;
  runOrder: number;
  configuration: Record<string, string>;
  commands: string[];
  inputArtifacts: string[];
  outputArtifacts: OutputArtifactSpec[];
  outputVariables: string[];
  /** Namespace of the action's output variables, when declared. */
  namespace?: string;
  /** Job timeout: the declared one (approvals) or the provider default. */
  timeoutInMinutes: number;
  environmentVariables: EnvironmentVariableSpec[];
  /** Configuration keys holding secrets (a custom action type's secret properties): masked in every answer. */
  secretConfiguration?: string[];
}

/** A declared output artifact. */
export interface OutputArtifactSpec {
  name: string;
  files: string[];
}

/** A declared environment variable of a Commands action. */
export interface EnvironmentVariableSpec {
  name: string;
  value: string;
  /** PLAINTEXT, or SECRET (a Sluice extension: the value is the secret, masked everywhere it could be shown). */
  type: string;
}

// ---------------------------------------------------------------- runtime state

/** The execution trigger as AWS reports it. */
export interface TriggerSpec {
  triggerType: string;
  triggerDetail: string;
}

/** A revision of a source action. */
export interface SourceRevisionRef {
  actionName: string;
  revisionId: string;
  /**
   * How a StartPipelineExecution pin is read: absent = the revision itself (a commit id, or an
   * object's VersionId); `S3_OBJECT_KEY` = the object key an ObjectStore source reads instead of
   * its configured S3ObjectKey (its current version).
   */
  revisionType?: "S3_OBJECT_KEY";
  revisionSummary?: string;
  /** Commit time, epoch ms. */
  created?: number;
  branch?: string;
  revisionUrl?: string;
}

/** One stored artifact produced by an action of an execution. */
export interface ArtifactRef {
  name: string;
  /** "<actionExecutionId>/<name>". */
  artifactId: string;
  bucket: string;
  key: string;
  sha256: string;
  sizeBytes: number;
  /** Set on artifacts produced by source actions. */
  revisionId?: string;
  revisionSummary?: string;
  /** Epoch ms. */
  created?: number;
  revisionUrl?: string;
}

/** A pipeline variable's value for one execution (PipelineExecution.variables). */
export interface ResolvedPipelineVariable {
  name: string;
  resolvedValue: string;
}

/** A pipeline variable given at StartPipelineExecution. */
export interface PipelineVariableOverride {
  name: string;
  value: string;
}

/** AWS StopExecutionTrigger plus who asked and how. */
export interface StopTrigger {
  reason: string;
  /** Principal that asked. */
  by: string;
  /** Epoch ms of the (latest) request. */
  at: number;
  /** True once an abandon was requested (possibly after a stop-and-wait). */
  abandon: boolean;
}

/** InboundTransitionState of a stage; absent on a slot = enabled, never changed. */
export interface TransitionStateSpec {
  enabled: boolean;
  lastChangedBy: string;
  /** Epoch ms. */
  lastChangedAt: number;
  /** Set while disabled. */
  disabledReason?: string;
}

/** StageState.retryStageMetadata. */
export interface RetryStageMetadataSpec {
  autoStageRetryAttempt: number;
  manualStageRetryAttempt: number;
  /** "ManualStageRetry" or "AutomatedStageRetry". */
  latestRetryTrigger?: string;
}

/** A clientRequestToken seen by StartPipelineExecution and the execution it started. */
export interface RequestTokenEntry {
  token: string;
  executionId: string;
  /** Epoch ms. */
  at: number;
}

/** AWS ErrorDetails. */
export interface ErrorDetailsSpec {
  code: string;
  message: string;
}

/**
 * Per-pipeline runtime document: locks, waiters, in-flight executions and the
 * latest stage/action state shown by GetPipelineState.
 */
export interface PipelineRuntime {
  pipelineName: string;
  spec: PipelineSpec;
  /**
   * Executions by id: in flight, plus those that finished and have not been
   * archived yet (terminal status; the shell archives then deletes them).
   */
  executions: Record<string, ExecutionRuntime>;
  /** One slot per stage of `spec`, in the same order. */
  stages: StageSlot[];
  /** Latest revision started or fetched per source action (dedupes SourceChanged). */
  lastSourceRevisions: SourceRevisionRef[];
  /** Ids of executions that became terminal in the last decision (for the shell to archive). */
  finished: string[];
  /**
   * Older pipeline versions still used by an execution in flight (PARALLEL
   * executions run the version they started with). Pruned when unused.
   * Absent = none.
   */
  retainedSpecs?: PipelineSpec[];
  /**
   * Copies of Failed/Stopped executions a retry may still resume (each is
   * the latest execution of the stage it ended in, on the current version).
   * The shell archives ended executions and drops them from `executions`;
   * these copies survive that. At most one per stage. Absent = none.
   */
  retryable?: ExecutionRuntime[];
  /** Recent clientRequestTokens (bounded, oldest dropped first). Absent = none. */
  requestTokens?: RequestTokenEntry[];
  /**
   * What a rollback needs of executions that succeeded in a stage on the
   * current version: the newest MAX_ROLLBACK_TARGETS per stage (the shell
   * archives executions, so their inputs are kept here). Absent = none.
   */
  rollbackTargets?: RollbackTarget[];
}

/**
 * An execution that succeeded in a stage, as a rollback of that stage reruns
 * it: the stage's inputs (artifacts and variables produced before it), the
 * source revisions and the pipeline variables.
 */
export interface RollbackTarget {
  executionId: string;
  stageName: string;
  pipelineVersion: number;
  /** Epoch ms the stage succeeded. */
  succeededAt: number;
  sourceRevisions: SourceRevisionRef[];
  /** Artifacts that existed when the stage started (not those the stage produced). */
  artifacts: ArtifactRef[];
  /** Variables by namespace, without those of the stage's own actions. */
  variables: Record<string, Record<string, string>>;
  pipelineVariables?: ResolvedPipelineVariable[];
}

/** Lock, waiter and latest state of one stage. */
export interface StageSlot {
  name: string;
  /** Execution inside the stage (SUPERSEDED: at most one). */
  lock?: string;
  /**
   * Execution waiting to enter: SUPERSEDED the single waiter; QUEUED the
   * first of `queue` (kept equal to queue[0] so older readers still work).
   */
  waiting?: string;
  /** QUEUED: every execution waiting to enter, in arrival order. */
  queue?: string[];
  /** Inbound transition; absent = enabled and never changed. */
  transition?: TransitionStateSpec;
  /** Retries of the latest execution in this stage. */
  retryStageMetadata?: RetryStageMetadataSpec;
  /** The latest check of each condition type of the latest execution (GetPipelineState). */
  conditions?: ConditionRun[];
  latest?: StageLatest;
  /** One entry per action that has run at least once, in declaration order of first run. */
  actions: ActionSlot[];
}

/** StageState.latestExecution. */
export interface StageLatest {
  pipelineExecutionId: string;
  status: StageStatus;
}

/** GetPipelineState's view of one action. */
export interface ActionSlot {
  name: string;
  latest?: ActionLatest;
  /** Source actions: the revision last fetched. */
  currentRevision?: { revisionId: string; revisionChangeId?: string; created?: number };
}

/** ActionState.latestExecution. */
export interface ActionLatest {
  pipelineExecutionId: string;
  actionExecutionId: string;
  status: ActionStatus;
  summary?: string;
  /** Epoch ms. */
  lastStatusChange: number;
  token?: string;
  updatedBy?: string;
  externalExecutionId?: string;
  externalExecutionUrl?: string;
  errorDetails?: ErrorDetailsSpec;
  /** A continued custom action's latest percentComplete (0-100), while it runs. */
  percentComplete?: number;
  /**
   * Set while the job waits for a runner of this pool: dispatched, and no runner reported it
   * started (a pool with no runner up, or all busy). Absent for approvals and once started.
   */
  queuedPool?: string;
  /** Epoch ms: when the queued job was dispatched (with `queuedPool`). */
  queuedSince?: number;
  /** Epoch ms: when a runner first reported the job started. */
  startedAt?: number;
}

/** One execution in flight (or terminal, not yet archived). */
export interface ExecutionRuntime {
  id: string;
  pipelineVersion: number;
  /** Mode the execution runs under (the pipeline's mode when it started). Absent = SUPERSEDED. */
  executionMode?: ExecutionMode;
  /** Absent = STANDARD. */
  executionType?: ExecutionType;
  /** 1, +1 on every resume by a retry (EventBridge pipeline-execution-attempt). Absent = 1. */
  executionAttempt?: number;
  /** Resolved pipeline variables, in declaration order (also under namespace `variables` of `variables`). */
  pipelineVariables?: ResolvedPipelineVariable[];
  /** Set by StopPipelineExecution. */
  stopTrigger?: StopTrigger;
  /** The execution that superseded this one (status Superseded). */
  supersededBy?: string;
  /** Why the execution was cancelled (status Cancelled): "PipelineUpdated" or "PipelineDeleted". */
  cancelledBy?: string;
  clientRequestToken?: string;
  /** ROLLBACK executions: the execution whose stage inputs they rerun. */
  rollbackMetadata?: { rollbackTargetPipelineExecutionId: string };
  /** ROLLBACK executions: the one stage they run. */
  rollbackStage?: string;
  status: ExecutionStatus;
  statusSummary?: string;
  trigger: TriggerSpec;
  /** Epoch ms. */
  startTime: number;
  lastUpdateTime: number;
  /** Stages entered, in order of entry. */
  stages: StageRun[];
  artifacts: ArtifactRef[];
  /** Revisions fetched by this execution's source actions. */
  sourceRevisions: SourceRevisionRef[];
  /** Revisions the source actions must fetch (SourceChanged, or StartPipelineExecution with sourceRevisions). */
  pinnedRevisions: SourceRevisionRef[];
  /** Name of the stage the execution is inside. */
  currentStage?: string;
  /** Name of the stage the execution waits in front of. */
  waitingFor?: string;
  /**
   * Set when the execution must end Cancelled as soon as its running actions
   * finish (the pipeline was updated under it); the reason becomes statusSummary.
   */
  cancelReason?: string;
  /**
   * Variables by namespace → key → value: action output variables, plus the
   * resolved pipeline variables under the reserved namespace `variables`.
   */
  variables: Record<string, Record<string, string>>;
}

/** One stage of one execution. */
export interface StageRun {
  name: string;
  status: StageStatus;
  /** Manual retries of this stage in this execution. Absent = 0. */
  manualRetryAttempts?: number;
  /**
   * Actions a retry will run again (ALL_ACTIONS: every action, group by
   * group); a name leaves the list when its new attempt starts. Absent = none.
   */
  pendingRerun?: string[];
  /** Actions started so far, in dispatch order. */
  actions: ActionRun[];
  /** Condition checks of this stage run, oldest first (at most MAX_CONDITION_RUNS). Absent = none. */
  conditions?: ConditionRun[];
  /** The beforeEntry condition passed or was overridden: the actions may run. */
  entryCleared?: boolean;
  /** The onSuccess condition passed or was overridden since the last action attempt started. */
  successCleared?: boolean;
  /** The condition whose failure failed the stage (a retry checks it again). */
  failedBy?: "BEFORE_ENTRY" | "ON_SUCCESS";
  /** Automatic retries (onFailure RETRY) of this stage in this execution. Absent = 0. */
  autoRetryAttempts?: number;
  /** Who retried the stage last: an automatic retry's failure is not retried automatically again. */
  lastRetryTrigger?: "AutomatedStageRetry" | "ManualStageRetry";
}

/** One check of a stage condition. */
export interface ConditionRun {
  conditionType: ConditionType;
  /** What the check engages: when it fails (BEFORE_ENTRY, ON_SUCCESS) or when it is met (ON_FAILURE). */
  result: ConditionResult;
  status: ConditionStatus;
  summary?: string;
  /** Epoch ms. */
  startTime: number;
  lastUpdateTime: number;
  rules: RuleRun[];
  /** OverrideStageCondition: who overrode it. */
  overriddenBy?: string;
}

/** One rule of a condition check. */
export interface RuleRun {
  name: string;
  ruleTypeId: RuleTypeIdSpec;
  /** Also the job's action execution id (Commands rules). */
  ruleExecutionId: string;
  status: RuleStatus;
  summary?: string;
  errorDetails?: ErrorDetailsSpec;
  externalExecutionId?: string;
  externalExecutionUrl?: string;
  updatedBy?: string;
  /** Epoch ms. */
  startTime: number;
  lastUpdateTime: number;
  /** Commands rules: the job deadline, epoch ms. */
  deadline?: number;
  /** Configuration after variable resolution. */
  resolvedConfiguration?: Record<string, string>;
  /** Commands rules: ids of the input artifacts given to the job. */
  inputArtifactIds: string[];
  /** The highest delivery of the rule's job a runner reported started (see ActionRun.startedDelivery). */
  startedDelivery?: number;
}

/** One action of one execution (the latest attempt). */
export interface ActionRun {
  name: string;
  actionExecutionId: string;
  attempt: number;
  status: ActionStatus;
  summary?: string;
  errorDetails?: ErrorDetailsSpec;
  externalExecutionId?: string;
  externalExecutionUrl?: string;
  /** Approval token (approval actions). */
  token?: string;
  /** Epoch ms. */
  startTime: number;
  lastUpdateTime: number;
  /** Job deadline, epoch ms: after it (plus a grace) a TimerFired fails the action. */
  deadline: number;
  updatedBy?: string;
  outputVariables?: Record<string, string>;
  /** Configuration after variable resolution (as dispatched). */
  resolvedConfiguration?: Record<string, string>;
  /** Ids of the input artifacts given to the job. */
  inputArtifactIds: string[];
  /** Earlier attempts of this action in this execution, oldest first (retries). Absent = none. */
  attempts?: ActionAttempt[];
  /** Pipeline version the run was dispatched for. */
  pipelineVersion?: number;
  /**
   * Follow-up jobs dispatched for this attempt because a job worker succeeded with a continuation
   * token (custom actions); the current job is `<actionExecutionId>:<attempt>:<continuations>`.
   * Absent = none, the job is `<actionExecutionId>:<attempt>`.
   */
  continuations?: number;
  /** The latest intermediate result's percentComplete (0-100) while a continued action runs. */
  percentComplete?: number;
  /**
   * The highest JetStream delivery of the run's job a runner reported started (JobStarted): a
   * result from a lower delivery is a stale attempt and refused (fencing.ts). Absent = none reported.
   */
  startedDelivery?: number;
  /** Epoch ms: when a runner first reported the job started; absent while it is queued. */
  startedAt?: number;
  /** The runner pool the run's job was dispatched to; absent for jobs no runner takes (approvals). */
  runnerPool?: string;
}

/** A finished earlier attempt of an action run (kept for ListActionExecutions): the run as it ended. */
export type ActionAttempt = Omit<ActionRun, "name" | "deadline" | "attempts" | "continuations" | "percentComplete" | "runnerPool">;

// ---------------------------------------------------------------- events in

/** Plain mirror of the JobResult bus message. */
export interface JobOutcome {
  jobId: string;
  actionExecutionId: string;
  attempt: number;
  pipelineName: string;
  pipelineExecutionId: string;
  stageName: string;
  actionName: string;
  /** Succeeded or Failed (anything else counts as Failed). */
  status: string;
  summary?: string;
  errorDetails?: ErrorDetailsSpec;
  externalExecutionId?: string;
  externalExecutionUrl?: string;
  outputArtifacts: ProducedArtifactRef[];
  outputVariables: Record<string, string>;
  /** Source actions: the revision fetched (actionName is the action's). */
  revision?: Omit<SourceRevisionRef, "actionName">;
  updatedBy?: string;
  /** Epoch ms. */
  finishedAt?: number;
  /**
   * A job worker's PutJobSuccessResult with a continuation token: the action is not done; the
   * orchestrator dispatches a follow-up job carrying the token and the action stays InProgress.
   */
  continuationToken?: string;
  /** ExecutionDetails.percentComplete (0-100) of a job worker's result. */
  percentComplete?: number;
  /**
   * The JetStream delivery of the job this result or started report comes from (1 = first);
   * absent when unknown (approvals, job workers, older runners), which is never fenced.
   */
  delivery?: number;
}

/** Plain mirror of ProducedArtifact. */
export interface ProducedArtifactRef {
  name: string;
  artifactId: string;
  bucket: string;
  key: string;
  sha256: string;
  sizeBytes: number;
}

/** What decide() reacts to. */
export type ExecutionEvent =
  | {
      type: "ExecutionRequested";
      /** New execution id (the caller returns it to the user). */
      executionId: string;
      trigger: TriggerSpec;
      /** Revisions the source actions must fetch, by action name (StartPipelineExecution.sourceRevisions). */
      pinnedRevisions?: SourceRevisionRef[];
      /** StartPipelineExecution.variables: overrides of declared pipeline variables. */
      variables?: PipelineVariableOverride[];
      /**
       * Idempotency token: a token seen before returns that execution's id
       * (Decision.executionId) and starts nothing.
       */
      clientRequestToken?: string;
    }
  | {
      /**
       * A new revision of a source. Ignored (no execution) if it equals the
       * last revision started or fetched for that action, or the pinned
       * revision of an execution in flight.
       */
      type: "SourceChanged";
      executionId: string;
      actionName: string;
      revision: SourceRevisionRef;
      trigger: TriggerSpec;
      /**
       * A caller waits for the answer (PutActionRevision): a pipeline without room throws
       * ConcurrentPipelineExecutionsLimitExceededException instead of leaving the revision unseen.
       */
      limitIsError?: boolean;
    }
  | {
      /**
       * A new revision of a source whose pipeline definition in the repository
       * (`.sluice/pipeline.json`) was refused: the execution of that revision
       * is created Failed, entering no stage, its statusSummary listing the
       * violations; the revision counts as seen, so a redelivery or another
       * report of it starts nothing. Ignored like SourceChanged when the
       * revision was already seen.
       */
      type: "DefinitionRejected";
      executionId: string;
      actionName: string;
      revision: SourceRevisionRef;
      trigger: TriggerSpec;
      violations: readonly { field: string; message: string }[];
    }
  | { type: "JobCompleted"; result: JobOutcome }
  /**
   * A runner reports it started delivery `report.delivery` of a job (JobResult status
   * InProgress): the run is no longer queued, and results of lower deliveries are stale.
   */
  | { type: "JobStarted"; report: JobOutcome }
  /** Deadlines may be due: fails every in-flight action whose deadline + grace ≤ ctx.now. */
  | { type: "TimerFired" }
  /**
   * The pipeline was updated (AWS, SUPERSEDED): new executions run `spec`;
   * executions waiting in front of a stage are Cancelled at once; executions
   * inside a stage start nothing new and end Cancelled when their running
   * actions finish.
   */
  | { type: "PipelineUpdated"; spec: PipelineSpec }
  /** The pipeline is gone: every in-flight execution ends Cancelled. */
  | { type: "PipelineDeleted" }
  /**
   * StopPipelineExecution. abandon=false: Stopping, running actions finish,
   * then Stopped; abandon=true: running actions Abandoned (jobs cancelled), Stopped at once.
   */
  | { type: "StopRequested"; executionId: string; abandon: boolean; reason: string; by: string }
  /** RetryStageExecution. */
  | { type: "StageRetryRequested"; executionId: string; stageName: string; retryMode: StageRetryMode; by: string }
  /** Sluice extension: rerun one action (failed or succeeded) of the stage's latest execution. */
  | { type: "ActionRetryRequested"; executionId: string; stageName: string; actionName: string; by: string }
  /** Enable/DisableStageTransition (Inbound). */
  | { type: "TransitionChanged"; stageName: string; enabled: boolean; reason: string; by: string }
  /** OverrideStageCondition: a running (or failed) check of the condition counts as passed. */
  | { type: "ConditionOverridden"; executionId: string; stageName: string; conditionType: "BEFORE_ENTRY" | "ON_SUCCESS"; by: string }
  /**
   * RollbackStage: a new execution (`executionId`, type ROLLBACK) reruns the
   * stage with the inputs it had in `targetExecutionId`.
   */
  | { type: "RollbackRequested"; executionId: string; stageName: string; targetExecutionId: string; trigger: TriggerSpec };

// ---------------------------------------------------------------- outputs

/** Plain mirror of the Job bus message, minus the grants the shell attaches. */
export interface JobSpec {
  /**
   * "<actionExecutionId>:<attempt>", or "<actionExecutionId>:<attempt>:<n>" for the n-th
   * follow-up job of a continued action; also the Nats-Msg-Id.
   */
  jobId: string;
  actionExecutionId: string;
  attempt: number;
  pipelineName: string;
  pipelineVersion: number;
  pipelineExecutionId: string;
  stageName: string;
  actionName: string;
  /** As declared. */
  actionTypeId: { category: string; owner: string; provider: string; version: string };
  /** Subject parts: pool, category and built-in provider (subject sluice.jobs.<pool>.<category>.<builtIn>). */
  pool: string;
  category: string;
  builtIn: string;
  /** Resolved configuration. */
  configuration: Record<string, string>;
  commands: string[];
  /** Values resolved. */
  environmentVariables: EnvironmentVariableSpec[];
  outputVariables: string[];
  outputArtifacts: OutputArtifactSpec[];
  /** Epoch ms. */
  deadline: number;
  /** Source actions of a pinned execution: the revision to fetch. */
  sourceRevision?: string;
  /** Approval actions. */
  approvalToken?: string;
  /** A follow-up job of a custom action: the token its previous job's success returned. */
  continuationToken?: string;
  /** Configuration keys holding secrets (ActionSpec.secretConfiguration): whoever runs the job masks their values in its output. */
  secretConfigurationKeys?: string[];
  artifactBucket: string;
  /** For ArtifactService.IssueJobGrants: ids of the inputs … */
  inputArtifactIds: string[];
  /** … and names of the outputs. */
  outputNames: string[];
}

/** Something the shell must do after the state is written. */
export type ExecutionCommand =
  | { type: "DispatchJob"; job: JobSpec }
  /** Kill a dispatched job (abandoned or timed out); published on `sluice.control.cancel`. */
  | { type: "CancelJob"; jobId: string; actionExecutionId: string; pipelineName: string; reason: string };

/** Plain mirror of StateChangeEvent's execution fields. */
export interface StateChangeEventSpec {
  /** Deterministic, unique per event; the Nats-Msg-Id. */
  eventId: string;
  /** "CodePipeline Pipeline Execution State Change" etc. */
  detailType: string;
  /** Epoch ms. */
  time: number;
  pipeline: string;
  executionId: string;
  version: number;
  stage?: string;
  action?: string;
  /** STARTED, SUCCEEDED, FAILED, SUPERSEDED, CANCELED, ABANDONED, RESUMED, STOPPING, STOPPED. */
  state: string;
  executionTrigger?: TriggerSpec;
  type?: { category: string; owner: string; provider: string; version: string };
  executionResult?: {
    externalExecutionId?: string;
    externalExecutionSummary?: string;
    externalExecutionUrl?: string;
    errorCode?: string;
  };
  /** Pipeline STOPPING/STOPPED: the stop reason (stop-execution-comments). */
  stopExecutionComments?: string;
  /** 1 + the number of resumes (pipeline-execution-attempt). */
  pipelineExecutionAttempt?: number;
  /** Action events: region is always the local one. */
  inputArtifacts?: EventArtifactSpec[];
  outputArtifacts?: EventArtifactSpec[];
}

/** An artifact in an action state-change event. */
export interface EventArtifactSpec {
  name: string;
  s3location: { bucket: string; key: string };
}

/** A state change to publish on sluice.events.<pipeline>.<kind>. */
export interface Emitted {
  kind: "pipeline" | "stage" | "action";
  event: StateChangeEventSpec;
}

/** The world decide() may consult: the clock and an id source. */
export interface DecideContext {
  /** Epoch ms. */
  now: number;
  /** A fresh unique id (UUID) for action executions and approval tokens. */
  newId(): string;
}

/** What decide() returns. */
export interface Decision {
  /** The new state (the input state, unchanged, when the event was ignored). */
  state: PipelineRuntime;
  commands: ExecutionCommand[];
  events: Emitted[];
  /** Why the event changed nothing (stale result, duplicate source revision, …); absent when applied. */
  ignored?: string;
  /** ExecutionRequested: the execution the request resulted in (an earlier one for a repeated clientRequestToken). */
  executionId?: string;
}
