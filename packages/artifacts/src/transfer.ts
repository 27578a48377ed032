import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DomainError } from "@sluice/domain";
import { isSha256Hex } from "./checksum.js";

/**
 * An HTTP transfer that failed: the server answered with a non-success status or the connection broke.
 * `retryable` is true for network errors, timeouts, 408, 429 and 5xx; an expired or wrong grant (403) is not.
 * Messages never contain the URL's query string (a presigned URL is a bearer credential).
 */
export class TransferError extends Error {
  override readonly name = "TransferError";
  constructor(
    message: string,
    /** HTTP status, when the server answered. */
    readonly statusCode: number | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** Options of {@link uploadFile} and {@link downloadFile}. */
export interface TransferOptions {
  /** Aborts the transfer. */
  signal?: AbortSignal;
  /** Fails when the connection is idle this long. @default 60000 */
  idleTimeoutMs?: number;
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions extends TransferOptions {
  /**
   * Fails (and deletes the file) as soon as the response announces, or more bytes than this arrive:
   * callers pass the artifact's recorded size, so a grant to a bigger object cannot fill the disk.
   * @default DEFAULT_MAX_DOWNLOAD_BYTES
   */
  maxBytes?: number;
}

/** Options of {@link putFile}. */
export interface PutOptions extends TransferOptions {
  /** Extra request headers (Content-Type, Cache-Control, …); Content-Length is set from the file. */
  headers?: Record<string, string>;
}

/** The most {@link downloadFile} accepts when the caller names no limit (5 GiB, S3's single-PUT limit). */
export const DEFAULT_MAX_DOWNLOAD_BYTES = 5 * 1024 ** 3;

const DEFAULT_IDLE_MS = 60_000;

function describe(method: string, u: URL): string {
  return `${method} ${u.protocol}//${u.host}${u.pathname}`;
}

function parseUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DomainError("ValidationException", "url: not a valid URL", [{ field: "url", message: "not a valid URL" }]);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    const message = `expected http or https, got ${u.protocol}`;
    throw new DomainError("ValidationException", `url: ${message}`, [{ field: "url", message }]);
  }
  return u;
}

function checkSha(field: string, value: string): void {
  if (!isSha256Hex(value)) {
    const message = "must be 64 lowercase hex characters";
    throw new DomainError("ValidationException", `${field}: ${message}`, [{ field, message }]);
  }
}

function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

async function statusError(what: string, res: IncomingMessage): Promise<TransferError> {
  // S3 explains failures in a small XML body; its <Code> is worth keeping, the rest is not.
  let body = "";
  try {
    for await (const chunk of res) {
      body += (chunk as Buffer).toString("utf8");
      if (body.length > 4096) break;
    }
  } catch {
    // the reason is the status
  }
  res.destroy();
  const code = /<Code>([^<]{1,100})<\/Code>/.exec(body)?.[1];
  const status = res.statusCode ?? 0;
  return new TransferError(`${what}: HTTP ${status}${code === undefined ? "" : ` (${code})`}`, status, retryableStatus(status));
}

function networkError(what: string, err: unknown): Error {
  if (err instanceof TransferError || err instanceof DomainError) return err;
  const e = err as NodeJS.ErrnoException;
  // A local file system failure (no space, no permission) is reported as it is.
  if (e.path !== undefined && e.syscall !== undefined) return e;
  if (e.name === "AbortError") return new TransferError(`${what}: aborted`, undefined, false);
  return new TransferError(`${what}: ${e.code ?? e.message}`, undefined, true);
}

function start(u: URL, method: string, headers: Record<string, string | number>, opts: TransferOptions): ClientRequest {
  const request = u.protocol === "https:" ? httpsRequest : httpRequest;
  const req = request(u, { method, headers, ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
  req.setTimeout(opts.idleTimeoutMs ?? DEFAULT_IDLE_MS, () => {
    req.destroy(new TransferError(`${describe(method, u)}: idle for ${opts.idleTimeoutMs ?? DEFAULT_IDLE_MS} ms`, undefined, true));
  });
  return req;
}

function write(req: ClientRequest, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = req.write(chunk, (err) => {
      if (err) reject(err);
      else if (ok) resolve();
    });
    if (!ok) req.once("drain", resolve);
  });
}

/**
 * Streams `path` to `url` with an HTTP PUT (a presigned S3 URL) and a Content-Length. The file is hashed
 * while it is sent and the last chunk is held back until the digest is known: if the file does not hash to
 * `sha256` (or changes size meanwhile) the request is aborted before it completes, so the object is never
 * stored, and `DomainError("ArtifactIntegrityException")` is thrown. Other failures throw {@link TransferError}.
 */
export async function uploadFile(url: string, path: string, sha256: string, opts: TransferOptions = {}): Promise<void> {
  const u = parseUrl(url);
  checkSha("sha256", sha256);
  const size = (await stat(path)).size;
  const what = describe("PUT", u);
  const req = start(u, "PUT", { "Content-Length": size, "Content-Type": "application/zip" }, opts);
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once("response", resolve);
    req.once("error", reject);
  });
  response.catch(() => undefined); // observed below; this only keeps an early failure from going unhandled

  const hash = createHash("sha256");
  let sent = 0;
  let pending: Buffer | undefined;
  try {
    for await (const chunk of createReadStream(path)) {
      const buf = chunk as Buffer;
      hash.update(buf);
      sent += buf.length;
      if (pending !== undefined) await write(req, pending);
      pending = buf;
    }
  } catch (err) {
    req.destroy();
    // The server may have answered (say 403) and closed while we were still sending.
    const res = await response.catch(() => undefined);
    if (res !== undefined && (res.statusCode ?? 0) >= 300) throw await statusError(what, res);
    throw networkError(what, err);
  }
  const actual = hash.digest("hex");
  if (actual !== sha256 || sent !== size) {
    req.destroy();
    const message =
      sent !== size
        ? `${path} changed size while uploading (${size} → ${sent} bytes)`
        : `${path} has sha256 ${actual}, expected ${sha256}`;
    throw new DomainError("ArtifactIntegrityException", message, [{ field: "sha256", message }]);
  }
  req.end(pending);
  let res: IncomingMessage;
  try {
    res = await response;
  } catch (err) {
    throw networkError(what, err);
  }
  if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) throw await statusError(what, res);
  res.resume();
}

/**
 * Streams `path` to `url` with an HTTP PUT (a presigned S3 URL) and the given headers, for files
 * that are not artifacts (deploy targets): no checksum, the object store's answer decides.
 * Failures throw {@link TransferError} (or the file system error).
 */
export async function putFile(url: string, path: string, opts: PutOptions = {}): Promise<void> {
  const u = parseUrl(url);
  const size = (await stat(path)).size;
  const what = describe("PUT", u);
  const req = start(u, "PUT", { ...opts.headers, "Content-Length": size }, opts);
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once("response", resolve);
    req.once("error", reject);
  });
  response.catch(() => undefined); // observed below
  let res: IncomingMessage;
  try {
    await pipeline(createReadStream(path), req);
    res = await response;
  } catch (err) {
    req.destroy();
    const answered = await response.catch(() => undefined);
    if (answered !== undefined && (answered.statusCode ?? 0) >= 300) throw await statusError(what, answered);
    throw networkError(what, err);
  }
  if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) throw await statusError(what, res);
  res.resume();
}

/**
 * Streams `url` (HTTP GET, a presigned S3 URL) into `dest`, hashing on the way. When the body does not hash
 * to `expectedSha256`, `dest` is deleted and `DomainError("ArtifactIntegrityException")` is thrown; any
 * other failure also deletes `dest` and throws {@link TransferError} (or the file system error).
 */
export async function downloadFile(
  url: string,
  dest: string,
  expectedSha256: string,
  opts: DownloadOptions = {},
): Promise<void> {
  const u = parseUrl(url);
  checkSha("expectedSha256", expectedSha256);
  const what = describe("GET", u);
  const req = start(u, "GET", {}, opts);
  let res: IncomingMessage;
  try {
    res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.once("response", resolve);
      req.once("error", reject);
      req.end();
    });
  } catch (err) {
    throw networkError(what, err);
  }
  if (res.statusCode !== 200) throw await statusError(what, res);

  const hash = createHash("sha256");
  let received = 0;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES;
  const announced = res.headers["content-length"];
  if (announced !== undefined && Number(announced) > maxBytes) {
    res.destroy();
    throw new TransferError(`${what}: the object has ${announced} bytes, more than the ${maxBytes} expected`, 200, false);
  }
  const measure = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      if (received > maxBytes) {
        done(new TransferError(`${what}: more than the ${maxBytes} bytes expected`, 200, false));
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(res, measure, createWriteStream(dest));
    const declared = res.headers["content-length"];
    if (declared !== undefined && Number(declared) !== received) {
      throw new TransferError(`${what}: body ended after ${received} of ${declared} bytes`, 200, true);
    }
  } catch (err) {
    await rm(dest, { force: true });
    throw networkError(what, err);
  }
  const actual = hash.digest("hex");
  if (actual !== expectedSha256) {
    await rm(dest, { force: true });
    const message = `downloaded ${received} bytes with sha256 ${actual}, expected ${expectedSha256}`;
    throw new DomainError("ArtifactIntegrityException", message, [{ field: "sha256", message }]);
  }
}
