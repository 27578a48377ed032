export { ERROR_CODES, DomainError, invalid, isDomainError } from "./errors.js";
export type { ErrorCode, FieldViolation } from "./errors.js";
export { noopLogger } from "./logger.js";
export type { Logger } from "./logger.js";
// -- validation exports (owned by the validation helper) --
// -- end validation exports --
// -- execution exports (owned by the execution helper) --
export type {
  ActionLatest,
  ActionRun,
  ActionSlot,
  ActionSpec,
  ActionStatus,
  ArtifactRef,
  DecideContext,
  Decision,
  Emitted,
  EnvironmentVariableSpec,
  ErrorDetailsSpec,
  ExecutionCommand,
  ExecutionEvent,
  ExecutionMode,
  ExecutionRuntime,
  ExecutionStatus,
  JobOutcome,
  JobSpec,
  OutputArtifactSpec,
  PipelineRuntime,
  PipelineSpec,
  ProducedArtifactRef,
  SourceRevisionRef,
  StageLatest,
  StageRun,
  StageSlot,
  StageSpec,
  StageStatus,
  StateChangeEventSpec,
  TriggerSpec,
} from "./execution/types.js";
// -- end execution exports --
