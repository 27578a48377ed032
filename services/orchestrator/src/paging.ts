import { DomainError } from "@sluice/domain";

/** AWS caps pagination tokens at 2048 characters. */
const MAX_TOKEN_CHARS = 2048;

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
  if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!isCursor(value)) throw bad();
  return value;
}
