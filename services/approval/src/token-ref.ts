import { createHash } from "node:crypto";

/**
 * What logs say instead of an approval token: the first 12 hex digits of its
 * SHA-256. Enough to follow one approval through the logs, useless to answer
 * it (a token is a bearer credential for PutApprovalResult).
 */
export function tokenRef(token: string): string {
  return `sha256:${createHash("sha256").update(token).digest("hex").slice(0, 12)}`;
}
