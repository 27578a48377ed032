import { DomainError } from "@sluice/domain";
import { ApprovalService, PipelineService } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { authorize, createTokenAuthenticator, parseTokenTable } from "./auth.js";
import type { PermissionTable, Principal } from "./auth.js";

function thrown(fn: () => unknown): DomainError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err;
    throw err;
  }
  throw new Error("expected a DomainError");
}

describe("parseTokenTable", () => {
  it("parses principals, roles and tokens (tokens may contain ':' and '=')", () => {
    expect(parseTokenTable(" alice=admin:s3cret , ci=operator+viewer:a:b=c,orchestrator=service:svc ")).toEqual([
      { principal: "alice", roles: ["admin"], token: "s3cret" },
      { principal: "ci", roles: ["operator", "viewer"], token: "a:b=c" },
      { principal: "orchestrator", roles: ["service"], token: "svc" },
    ]);
  });

  it.each([
    ["", "token table entry 0: the token table is empty"],
    ["alice=admin:a,,bob=viewer:b", "token table entry 1: entry is empty"],
    ["alice:tok", 'token table entry 0: expected "<principal>=<role>+<role>:<token>"'],
    ["alice=admin:a,bob=viewer+root:b", 'token table entry 1: principal "bob" has unknown role "root" (known: viewer, operator, approver, admin, runner, service)'],
    ["alice=:tok", 'token table entry 0: principal "alice" has no roles'],
    ["alice=admin:", 'token table entry 0: principal "alice" has an empty token'],
    ["alice=admin:same,bob=viewer:same", 'token table entry 1: principal "bob" reuses the token of an earlier entry'],
  ])("rejects %j naming the entry", (spec, message) => {
    const err = thrown(() => parseTokenTable(spec));
    expect(err.code).toBe("ValidationException");
    expect(err.message).toBe(message);
    expect(err.violations[0]?.field).toMatch(/^tokens\[\d+\]$/);
  });

  it("never echoes a token in an error", () => {
    const err = thrown(() => parseTokenTable("alice=admin:topsecret,bob=wizard:othersecret"));
    expect(err.message).not.toContain("secret");
  });
});

describe("createTokenAuthenticator", () => {
  const auth = createTokenAuthenticator(parseTokenTable("alice=admin:tok-a,ci=operator+viewer:tok-c"));

  it("returns the principal of a valid bearer token (scheme case-insensitive)", () => {
    expect(auth.authenticate("Bearer tok-c")).toEqual({ id: "ci", roles: ["operator", "viewer"] });
    expect(auth.authenticate("bearer tok-a").id).toBe("alice");
  });

  it.each([
    [undefined, "missing bearer token"],
    ["", "missing bearer token"],
    ["Basic tok-a", "missing bearer token"],
    ["Bearer", "missing bearer token"],
    ["Bearer tok-a extra", "missing bearer token"],
    ["Bearer tok-b", "invalid token"],
    ["Bearer tok-a-longer", "invalid token"],
  ])("rejects %j: %s", (header, message) => {
    const err = thrown(() => auth.authenticate(header));
    expect(err.code).toBe("UnauthenticatedException");
    expect(err.message).toBe(message);
  });
});

describe("authorize", () => {
  const table: PermissionTable = {
    ListPipelines: ["viewer", "operator"],
    PutApprovalResult: ["approver"],
    "ApprovalService.PutApprovalResult": ["approver", "service"],
  };
  const who = (...roles: Principal["roles"]): Principal => ({ id: "p", roles });

  it("passes a principal holding a listed role, or admin", () => {
    expect(() => authorize(who("viewer"), PipelineService.method.listPipelines, table)).not.toThrow();
    expect(() => authorize(who("admin"), PipelineService.method.putApprovalResult, table)).not.toThrow();
  });

  it("denies other roles with AccessDeniedException naming the method", () => {
    const err = thrown(() => authorize(who("viewer", "runner"), PipelineService.method.putApprovalResult, table));
    expect(err.code).toBe("AccessDeniedException");
    expect(err.message).toBe('principal "p" is not allowed to call PutApprovalResult');
  });

  it("prefers the qualified Service.Method key", () => {
    expect(() => authorize(who("service"), ApprovalService.method.putApprovalResult, table)).not.toThrow();
    expect(() => authorize(who("service"), PipelineService.method.putApprovalResult, table)).toThrow(DomainError);
    expect(() => authorize(who("service"), "ApprovalService.PutApprovalResult", table)).not.toThrow();
  });

  it("denies a method missing from the table to everyone, admin included", () => {
    expect(thrown(() => authorize(who("admin"), PipelineService.method.deletePipeline, table)).code).toBe("AccessDeniedException");
  });
});
