import { Metadata, status } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";
import { isDomainError } from "@sluice/domain";
import type { ErrorCode, FieldViolation, Logger } from "@sluice/domain";

/** Trailer carrying the AWS exception name of a failed call (e.g. `PipelineNotFoundException`). */
export const ERROR_CODE_TRAILER = "sluice-error-code";
/** Trailer carrying the field violations of a failed call, as a JSON array of `{field, message}`. */
export const FIELD_VIOLATIONS_TRAILER = "sluice-field-violations";

// Trailers travel in HTTP/2 headers, which peers cap (commonly 8-16 KiB in all).
// A declaration with hundreds of problems must not turn a clear error into a
// protocol failure, so both parts are bounded; the first violations are kept.
const MAX_DETAILS_CHARS = 4096;
const MAX_VIOLATIONS_JSON_BYTES = 8192;

/**
 * The gRPC status for each domain error code. Exhaustive: adding a code to
 * `ERROR_CODES` in @sluice/domain fails compilation here until it is mapped.
 */
export function grpcStatusOf(code: ErrorCode): status {
  switch (code) {
    case "ValidationException":
    case "InvalidStructureException":
    case "InvalidStageDeclarationException":
    case "InvalidActionDeclarationException":
    case "InvalidNextTokenException":
    case "InvalidWebhookAuthenticationParametersException":
    case "InvalidWebhookFilterPatternException":
      return status.INVALID_ARGUMENT;
    case "PipelineNotFoundException":
    case "PipelineVersionNotFoundException":
    case "PipelineExecutionNotFoundException":
    case "StageNotFoundException":
    case "ActionNotFoundException":
    case "ArtifactNotFoundException":
    case "ActionExecutionNotFoundException":
    case "JobNotFoundException":
    case "ActionTypeNotFoundException":
    case "WebhookNotFoundException":
      return status.NOT_FOUND;
    case "PipelineNameInUseException":
      return status.ALREADY_EXISTS;
    case "InvalidApprovalTokenException":
    case "ApprovalAlreadyCompletedException":
    case "ConflictException":
    case "StageNotRetryableException":
    case "NotLatestPipelineExecutionException":
    case "PipelineExecutionNotStoppableException":
    case "DuplicatedStopRequestException":
    case "UnableToRollbackStageException":
    case "PipelineExecutionOutdatedException":
    case "ConditionNotOverridableException":
    case "InvalidNonceException":
    case "InvalidJobStateException":
    case "RequestFailedException":
      return status.FAILED_PRECONDITION;
    case "ConcurrentModificationException":
      return status.ABORTED;
    case "LimitExceededException":
    case "ConcurrentPipelineExecutionsLimitExceededException":
      return status.RESOURCE_EXHAUSTED;
    case "ArtifactIntegrityException":
      return status.DATA_LOSS;
    case "UnauthenticatedException":
      return status.UNAUTHENTICATED;
    case "AccessDeniedException":
      return status.PERMISSION_DENIED;
    case "ServiceUnavailableException":
      return status.UNAVAILABLE;
    default:
      return assertNever(code);
  }
}

/** Compile-time exhaustiveness check; at run time reports the impossible value. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${String(value)}`);
}

/**
 * Turns anything a handler threw into the status the caller sees. A DomainError
 * keeps its message and travels with its code and violations in trailers;
 * anything else is a bug or an infrastructure failure whose text may hold
 * internals, so the caller gets only "internal error" and the cause is logged.
 */
export function toServiceError(err: unknown, logger: Logger, fields: Record<string, unknown> = {}): Partial<ServiceError> & { code: status; details: string; metadata: Metadata } {
  const metadata = new Metadata();
  if (isDomainError(err)) {
    metadata.set(ERROR_CODE_TRAILER, err.code);
    const violations = encodeViolations(err.violations);
    if (violations !== undefined) metadata.set(FIELD_VIOLATIONS_TRAILER, violations);
    const details = truncate(err.message, MAX_DETAILS_CHARS);
    logger.debug("rpc failed with domain error", { ...fields, errorCode: err.code });
    return { name: "DomainError", message: details, code: grpcStatusOf(err.code), details, metadata };
  }
  logger.error("rpc failed with unexpected error", { ...fields, err: describeError(err) });
  return { name: "InternalError", message: "internal error", code: status.INTERNAL, details: "internal error", metadata };
}

/**
 * JSON for the violations trailer, or undefined when there are none. Non-ASCII
 * characters are escaped (`\uXXXX`) because text metadata must be printable
 * ASCII; JSON.parse restores them.
 */
function encodeViolations(violations: readonly FieldViolation[]): string | undefined {
  if (violations.length === 0) return undefined;
  const kept: { field: string; message: string }[] = [];
  let json = "[]";
  for (const v of violations) {
    const next = asciiJson([...kept, { field: v.field, message: v.message }]);
    if (next.length > MAX_VIOLATIONS_JSON_BYTES) break;
    kept.push({ field: v.field, message: v.message });
    json = next;
  }
  return json;
}

function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (truncated)`;
}

function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { value: String(err) };
}
