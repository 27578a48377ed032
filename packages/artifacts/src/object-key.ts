/**
 * Rules for deploy targets, checked after variable resolution by the runner and again by the
 * artifact service before it signs anything: a value such as `#{SourceVariables.BranchName}`
 * is only known then, and a key must never navigate (`..`) or smuggle control characters.
 */

import { BUCKET_NAME_PATTERN } from "@sluice/domain";

/** S3's limit for an object key, in UTF-8 bytes. */
export const MAX_OBJECT_KEY_BYTES = 1024;

const IPV4_LIKE = /^\d{1,3}(\.\d{1,3}){3}$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why `bucket` is not an S3 bucket name, or undefined when it is one. */
export function bucketNameProblem(bucket: string): string | undefined {
  if (bucket === "") return "is required";
  if (!BUCKET_NAME_PATTERN.test(bucket) || bucket.includes("..") || bucket.includes(".-") || bucket.includes("-.")) {
    return `"${clip(bucket)}" is not an S3 bucket name (3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit, no "..")`;
  }
  if (IPV4_LIKE.test(bucket)) return `"${bucket}" is not an S3 bucket name (it looks like an IP address)`;
  return undefined;
}

/**
 * Why `key` is not an acceptable object key (or key prefix when `prefix`), or undefined.
 * Refused: a leading `/`, empty, `.` or `..` segments, control characters (NUL included) and
 * more than 1024 bytes. A prefix may be empty (the bucket root) and may end with one `/`.
 */
export function objectKeyProblem(key: string, opts: { prefix: boolean }): string | undefined {
  if (key === "") return opts.prefix ? undefined : "is required";
  if (CONTROL.test(key)) return "must not contain control characters";
  if (Buffer.byteLength(key, "utf8") > MAX_OBJECT_KEY_BYTES) return `must be at most ${MAX_OBJECT_KEY_BYTES} bytes`;
  if (key.startsWith("/")) return `"${clip(key)}" must not start with "/"`;
  const body = opts.prefix && key.endsWith("/") ? key.slice(0, -1) : key;
  for (const segment of body.split("/")) {
    if (segment === "..") return `"${clip(key)}" must not contain a ".." segment`;
    if (segment === ".") return `"${clip(key)}" must not contain a "." segment`;
    if (segment === "") return `"${clip(key)}" must not contain an empty segment ("//" or a trailing "/")`;
  }
  return undefined;
}

/** The prefix without its optional trailing `/` ("" for the bucket root). */
export function trimPrefix(prefix: string): string {
  return prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
}

function clip(value: string): string {
  return value.length > 120 ? `${value.slice(0, 120)}...` : value;
}
