import { DomainError, MAX_NEXT_TOKEN_LENGTH } from "@sluice/domain";

/** An opaque page token: base64url of a small JSON cursor. */
export function encodeToken(cursor: object): string {
  return Buffer.from(JSON.stringify(cursor), "utf8").toString("base64url");
}

/**
 * Decodes a token made by `encodeToken`; anything else (not base64url, not
 * JSON, wrong shape) is InvalidNextTokenException naming `field`.
 */
export function decodeToken<T>(token: string, field: string, isCursor: (value: unknown) => value is T): T {
  const bad = (): DomainError =>
    new DomainError("InvalidNextTokenException", `${field}: not a token returned by this API`, [{ field, message: "not a token returned by this API" }]);
  if (token.length > MAX_NEXT_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!isCursor(value)) throw bad();
  return value;
}
