import { status } from "@grpc/grpc-js";
import { DomainError, ERROR_CODES, noopLogger } from "@sluice/domain";
import type { ErrorCode } from "@sluice/domain";
import { describe, expect, it } from "vitest";
import { ERROR_CODE_TRAILER, FIELD_VIOLATIONS_TRAILER, grpcStatusOf, toServiceError } from "./errors.js";

describe("grpcStatusOf", () => {
  // The SPEC's table, written out so a changed mapping is a visible test change.
  const expected: Record<ErrorCode, status> = {
    ValidationException: status.INVALID_ARGUMENT,
    InvalidStructureException: status.INVALID_ARGUMENT,
    InvalidStageDeclarationException: status.INVALID_ARGUMENT,
    InvalidActionDeclarationException: status.INVALID_ARGUMENT,
    InvalidNextTokenException: status.INVALID_ARGUMENT,
    PipelineNameInUseException: status.ALREADY_EXISTS,
    PipelineNotFoundException: status.NOT_FOUND,
    PipelineVersionNotFoundException: status.NOT_FOUND,
    PipelineExecutionNotFoundException: status.NOT_FOUND,
    StageNotFoundException: status.NOT_FOUND,
    ActionNotFoundException: status.NOT_FOUND,
    ArtifactNotFoundException: status.NOT_FOUND,
    InvalidApprovalTokenException: status.FAILED_PRECONDITION,
    ApprovalAlreadyCompletedException: status.FAILED_PRECONDITION,
    ConflictException: status.FAILED_PRECONDITION,
    ConcurrentModificationException: status.ABORTED,
    LimitExceededException: status.RESOURCE_EXHAUSTED,
    ArtifactIntegrityException: status.DATA_LOSS,
    UnauthenticatedException: status.UNAUTHENTICATED,
    AccessDeniedException: status.PERMISSION_DENIED,
    ServiceUnavailableException: status.UNAVAILABLE,
    StageNotRetryableException: status.FAILED_PRECONDITION,
    NotLatestPipelineExecutionException: status.FAILED_PRECONDITION,
    PipelineExecutionNotStoppableException: status.FAILED_PRECONDITION,
    DuplicatedStopRequestException: status.FAILED_PRECONDITION,
    ConcurrentPipelineExecutionsLimitExceededException: status.RESOURCE_EXHAUSTED,
    UnableToRollbackStageException: status.FAILED_PRECONDITION,
    PipelineExecutionOutdatedException: status.FAILED_PRECONDITION,
    ConditionNotOverridableException: status.FAILED_PRECONDITION,
    ActionExecutionNotFoundException: status.NOT_FOUND,
    JobNotFoundException: status.NOT_FOUND,
    InvalidNonceException: status.FAILED_PRECONDITION,
    InvalidJobStateException: status.FAILED_PRECONDITION,
    ActionTypeNotFoundException: status.NOT_FOUND,
    RequestFailedException: status.FAILED_PRECONDITION,
    InvalidWebhookAuthenticationParametersException: status.INVALID_ARGUMENT,
    InvalidWebhookFilterPatternException: status.INVALID_ARGUMENT,
    WebhookNotFoundException: status.NOT_FOUND,
  };

  it.each(ERROR_CODES.map((c) => [c, expected[c]] as const))("maps %s to status %i", (code, want) => {
    expect(grpcStatusOf(code)).toBe(want);
  });
});

describe("toServiceError", () => {
  it("keeps a DomainError's message and puts code and violations in ASCII-only trailers", () => {
    const err = new DomainError("ValidationException", "bad name «ü»", [{ field: "pipeline.name", message: "must not contain «ü»" }]);
    const se = toServiceError(err, noopLogger);
    expect(se.code).toBe(status.INVALID_ARGUMENT);
    expect(se.details).toBe("bad name «ü»");
    expect(se.metadata.get(ERROR_CODE_TRAILER)).toEqual(["ValidationException"]);
    const raw = se.metadata.get(FIELD_VIOLATIONS_TRAILER)[0] as string;
    expect(raw).toMatch(/^[\x20-\x7e]*$/);
    expect(JSON.parse(raw)).toEqual([{ field: "pipeline.name", message: "must not contain «ü»" }]);
  });

  it("omits the violations trailer when there are none", () => {
    const se = toServiceError(new DomainError("PipelineNotFoundException", "pipeline not found: web"), noopLogger);
    expect(se.code).toBe(status.NOT_FOUND);
    expect(se.metadata.get(FIELD_VIOLATIONS_TRAILER)).toEqual([]);
  });

  it("bounds the violations trailer and the message so a huge error still fits in HTTP/2 headers", () => {
    const violations = Array.from({ length: 500 }, (_, i) => ({ field: `pipeline.stages[${i}].name`, message: "must match [A-Za-z0-9.@_-]{1,100}" }));
    const se = toServiceError(new DomainError("InvalidStructureException", "x".repeat(100_000), violations), noopLogger);
    const raw = se.metadata.get(FIELD_VIOLATIONS_TRAILER)[0] as string;
    expect(raw.length).toBeLessThanOrEqual(8192);
    const kept = JSON.parse(raw) as unknown[];
    expect(kept.length).toBeGreaterThan(50);
    expect(kept[0]).toEqual(violations[0]);
    expect(se.details.length).toBeLessThan(5000);
    expect(se.details.endsWith("... (truncated)")).toBe(true);
  });

  it("hides anything that is not a DomainError behind INTERNAL", () => {
    const logged: unknown[] = [];
    const logger = { ...noopLogger, error: (_msg: string, fields?: Record<string, unknown>) => logged.push(fields) };
    const se = toServiceError(new TypeError("cannot read 'x' of undefined at /srv/secret/path"), logger, { method: "/a.B/C" });
    expect(se).toMatchObject({ code: status.INTERNAL, details: "internal error" });
    expect(se.metadata.get(ERROR_CODE_TRAILER)).toEqual([]);
    expect(JSON.stringify(logged)).toContain("/srv/secret/path");
    expect(JSON.stringify(logged)).toContain("/a.B/C");
  });
});
