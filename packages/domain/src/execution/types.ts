// Types of the pure execution state machine (DESIGN §7).
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

/** Only execution mode implemented so far. */
export type ExecutionMode = "SUPERSEDED";

// ---------------------------------------------------------------- the pipeline as the machine sees it

/** The normalized declaration reduced to what execution needs (see `toPipelineSpec`). */
export interface PipelineSpec {
  name: string;
  version: number;
  executionMode: ExecutionMode;
  /** Bucket of the artifact store. */
  artifactBucket: string;
  stages: StageSpec[];
}

/** One declared stage. */
export interface StageSpec {
  name: string;
  actions: ActionSpec[];
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
  /** PLAINTEXT or SECRETS_MANAGER. */
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
}

/** Lock, waiter and latest state of one stage. */
export interface StageSlot {
  name: string;
  /** Execution inside the stage (SUPERSEDED: at most one). */
  lock?: string;
  /** Execution waiting to enter (SUPERSEDED: at most one). */
  waiting?: string;
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
}

/** One execution in flight (or terminal, not yet archived). */
export interface ExecutionRuntime {
  id: string;
  pipelineVersion: number;
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
  /** Output variables: namespace → key → value. */
  variables: Record<string, Record<string, string>>;
}

/** One stage of one execution. */
export interface StageRun {
  name: string;
  status: StageStatus;
  /** Actions started so far, in dispatch order. */
  actions: ActionRun[];
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
}

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
      /** Revisions the source actions must fetch, by action name. */
      pinnedRevisions?: SourceRevisionRef[];
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
    }
  | { type: "JobCompleted"; result: JobOutcome }
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
  | { type: "PipelineDeleted" };

// ---------------------------------------------------------------- outputs

/** Plain mirror of the Job bus message, minus the grants the shell attaches. */
export interface JobSpec {
  /** "<actionExecutionId>:<attempt>"; also the Nats-Msg-Id. */
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
  /** Subject parts: category and built-in provider (subject sluice.jobs.<pool>.<category>.<builtIn>). */
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
  artifactBucket: string;
  /** For ArtifactService.IssueJobGrants: ids of the inputs … */
  inputArtifactIds: string[];
  /** … and names of the outputs. */
  outputNames: string[];
}

/** Something the shell must do after the state is written. */
export type ExecutionCommand = { type: "DispatchJob"; job: JobSpec };

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
  /** STARTED, SUCCEEDED, FAILED, SUPERSEDED, CANCELED, ABANDONED. */
  state: string;
  executionTrigger?: TriggerSpec;
  type?: { category: string; owner: string; provider: string; version: string };
  executionResult?: {
    externalExecutionId?: string;
    externalExecutionSummary?: string;
    externalExecutionUrl?: string;
    errorCode?: string;
  };
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
}
