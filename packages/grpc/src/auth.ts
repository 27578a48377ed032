import { createHash, timingSafeEqual } from "node:crypto";
import type { DescMethod } from "@bufbuild/protobuf";
import { DomainError } from "@sluice/domain";

/** The roles a principal can hold; see SPEC "Roles / permissions". */
export const ROLES = ["viewer", "operator", "approver", "admin", "runner", "service"] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: the name from the token table and the roles it grants. */
export interface Principal {
  readonly id: string;
  readonly roles: readonly Role[];
}

/**
 * Turns the raw `authorization` header of a call into a principal, or throws
 * `DomainError("UnauthenticatedException")`.
 */
export interface Authenticator {
  authenticate(authorization: string | undefined): Principal;
}

/** One entry of the token table. */
export interface TokenEntry {
  readonly token: string;
  readonly principal: string;
  readonly roles: readonly Role[];
}

/**
 * Which roles may call each method. Keys are method names as in the .proto
 * (`CreatePipeline`), or `Service.Method` (`ApprovalService.PutApprovalResult`)
 * where one server exposes the same method name in two services; the qualified
 * key is looked up first. `admin` passes every listed method; a method with no
 * key is denied to everyone.
 */
export type PermissionTable = Readonly<Record<string, readonly Role[]>>;

/** Type guard for role names. */
export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/**
 * An authenticator over a static token table. Only SHA-256 digests of the
 * tokens are kept, and every digest is compared in constant time (without
 * stopping at the first match), so neither memory dumps nor response timing
 * reveal a token.
 */
export function createTokenAuthenticator(tokens: readonly TokenEntry[]): Authenticator {
  const entries = tokens.map((t, i) => {
    if (t.token.length === 0) throw new DomainError("ValidationException", `token entry ${i} (principal "${t.principal}"): token is empty`, [{ field: `tokens[${i}].token`, message: "must not be empty" }]);
    if (t.principal.length === 0) throw new DomainError("ValidationException", `token entry ${i}: principal is empty`, [{ field: `tokens[${i}].principal`, message: "must not be empty" }]);
    return { digest: sha256(t.token), principal: { id: t.principal, roles: [...t.roles] } satisfies Principal };
  });
  return {
    authenticate(authorization) {
      const token = bearerToken(authorization);
      const digest = sha256(token);
      let found: Principal | undefined;
      for (const entry of entries) {
        if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.principal;
      }
      if (found === undefined) throw new DomainError("UnauthenticatedException", "invalid token");
      return found;
    },
  };
}

/** The token of an `authorization: Bearer <token>` header (scheme case-insensitive). */
function bearerToken(authorization: string | undefined): string {
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  const token = match?.[1];
  if (token === undefined) throw new DomainError("UnauthenticatedException", "missing bearer token");
  return token;
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/**
 * Parses a token table written as `<principal>=<role>+<role>:<token>,...`
 * (the SLUICE_AUTH_TOKENS format), e.g. `alice=admin:s3cret,ci=operator+viewer:t0k`.
 * Errors name the entry by position and principal but never echo the token.
 */
export function parseTokenTable(spec: string): TokenEntry[] {
  const result: TokenEntry[] = [];
  const seen = new Set<string>();
  const parts = spec.split(",").map((p) => p.trim());
  parts.forEach((part, i) => {
    if (part.length === 0) {
      if (parts.length === 1) throw tableError(i, "the token table is empty");
      throw tableError(i, "entry is empty");
    }
    const eq = part.indexOf("=");
    const colon = part.indexOf(":", eq + 1);
    if (eq <= 0 || colon < 0) throw tableError(i, 'expected "<principal>=<role>+<role>:<token>"');
    const principal = part.slice(0, eq).trim();
    const rolesText = part.slice(eq + 1, colon).trim();
    const token = part.slice(colon + 1).trim();
    const where = `principal "${principal}"`;
    if (rolesText.length === 0) throw tableError(i, `${where} has no roles`);
    const roles: Role[] = [];
    for (const r of rolesText.split("+").map((s) => s.trim())) {
      if (!isRole(r)) throw tableError(i, `${where} has unknown role "${r}" (known: ${ROLES.join(", ")})`);
      if (!roles.includes(r)) roles.push(r);
    }
    if (token.length === 0) throw tableError(i, `${where} has an empty token`);
    if (/\s/.test(token)) throw tableError(i, `${where} has a token containing whitespace`);
    const digest = sha256(token).toString("hex");
    if (seen.has(digest)) throw tableError(i, `${where} reuses the token of an earlier entry`);
    seen.add(digest);
    result.push({ principal, roles, token });
  });
  return result;
}

function tableError(index: number, message: string): DomainError {
  const field = `tokens[${index}]`;
  return new DomainError("ValidationException", `token table entry ${index}: ${message}`, [{ field, message }]);
}

/**
 * Throws `DomainError("AccessDeniedException")` unless the principal holds a
 * role the table grants for the method (or `admin`); methods missing from the
 * table are denied to everyone. A string method is a table key
 * (`CreatePipeline` or `Service.Method`).
 */
export function authorize(principal: Principal, method: DescMethod | string, table: PermissionTable): void {
  // Fail closed: a method nobody listed is denied even to admin, so a
  // forgotten table entry shows up at once instead of being open by accident.
  const allowed = allowedRoles(method, table);
  if (allowed !== undefined && principal.roles.some((r) => r === "admin" || allowed.includes(r))) return;
  const name = typeof method === "string" ? method : method.name;
  throw new DomainError("AccessDeniedException", `principal "${principal.id}" is not allowed to call ${name}`);
}

/** The roles the table grants for a method: qualified key first, then the bare method name. */
function allowedRoles(method: DescMethod | string, table: PermissionTable): readonly Role[] | undefined {
  const keys = typeof method === "string" ? keysOfString(method) : [`${method.parent.name}.${method.name}`, method.name];
  for (const key of keys) {
    if (Object.hasOwn(table, key)) return table[key];
  }
  return undefined;
}

function keysOfString(method: string): string[] {
  const dot = method.lastIndexOf(".");
  return dot < 0 ? [method] : [method, method.slice(dot + 1)];
}
