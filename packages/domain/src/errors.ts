/**
 * The closed set of errors Sluice reports to callers. Each code is AWS
 * CodePipeline's exception name, so clients can branch on the same names they
 * know from AWS. `@sluice/grpc` maps every code to a gRPC status in one
 * exhaustive switch; anything that is not a DomainError becomes INTERNAL.
 */
export const ERROR_CODES = [
  "ValidationException",
  "InvalidStructureException",
  "InvalidStageDeclarationException",
  "InvalidActionDeclarationException",
  "PipelineNameInUseException",
  "PipelineNotFoundException",
  "PipelineVersionNotFoundException",
  "PipelineExecutionNotFoundException",
  "StageNotFoundException",
  "ActionNotFoundException",
  "InvalidNextTokenException",
  "InvalidApprovalTokenException",
  "ApprovalAlreadyCompletedException",
  "ConcurrentModificationException",
  "ConflictException",
  "LimitExceededException",
  "ArtifactNotFoundException",
  "ArtifactIntegrityException",
  "UnauthenticatedException",
  "AccessDeniedException",
  "ServiceUnavailableException",
  "StageNotRetryableException",
  "NotLatestPipelineExecutionException",
  "PipelineExecutionNotStoppableException",
  "DuplicatedStopRequestException",
  "ConcurrentPipelineExecutionsLimitExceededException",
  "UnableToRollbackStageException",
  "PipelineExecutionOutdatedException",
  "ConditionNotOverridableException",
  "ActionExecutionNotFoundException",
  "JobNotFoundException",
  "InvalidNonceException",
  "InvalidJobStateException",
  "ActionTypeNotFoundException",
  "RequestFailedException",
  "InvalidWebhookAuthenticationParametersException",
  "InvalidWebhookFilterPatternException",
  "WebhookNotFoundException",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** One problem in a request, named by its field path (e.g. `pipeline.stages[1].actions[0].name`). */
export interface FieldViolation {
  readonly field: string;
  readonly message: string;
}

/** Thrown for every failure a caller should see; `retryable` tells bus consumers whether to retry. */
export class DomainError extends Error {
  override readonly name = "DomainError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly violations: readonly FieldViolation[] = [],
    readonly retryable = false,
  ) {
    super(message);
  }
}

/** A declaration or request that breaks one or more rules; the message lists every violation. */
export function invalid(code: ErrorCode, violations: readonly FieldViolation[]): DomainError {
  const lines = violations.map((v) => `${v.field}: ${v.message}`);
  return new DomainError(code, lines.join("; "), violations);
}

export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError;
}
