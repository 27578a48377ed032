import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * GitHub's `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw body with the secret.
 * Constant-time: the comparison never stops at the first differing byte.
 */
export function verifyGithubSignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (header === undefined || !header.startsWith("sha256=")) return false;
  return hexDigestEquals(header.slice("sha256=".length), hmacSha256(secret, body));
}

/** Gitea's and Forgejo's `X-Gitea-Signature`: the hex HMAC-SHA256 of the raw body, no prefix. */
export function verifyGiteaSignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (header === undefined) return false;
  return hexDigestEquals(header, hmacSha256(secret, body));
}

/**
 * GitLab's `X-Gitlab-Token`, a shared token sent as is. Both sides are hashed first so the
 * comparison takes the same time whatever the length of the guess.
 */
export function sharedTokenEquals(expected: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(sha256(expected), sha256(presented));
}

/** `sha256=<hex>` for a body; what a sender (and the tests) put in `X-Hub-Signature-256`. */
export function githubSignature(secret: string, body: Buffer | string): string {
  return `sha256=${hmacSha256(secret, Buffer.from(body)).toString("hex")}`;
}

function hexDigestEquals(hex: string, digest: Buffer): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return false;
  return timingSafeEqual(Buffer.from(hex, "hex"), digest);
}

function hmacSha256(secret: string, body: Buffer): Buffer {
  return createHmac("sha256", secret).update(body).digest();
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
