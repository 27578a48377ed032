import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

/** A lowercase hex SHA-256 digest (64 characters). */
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;

/** Streams a file through SHA-256; resolves with the lowercase hex digest. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** True when `value` is a lowercase hex SHA-256 digest. */
export function isSha256Hex(value: string): boolean {
  return SHA256_HEX_PATTERN.test(value);
}
