import { createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DEFAULT_MAX_DOWNLOAD_BYTES, extractZip } from "@sluice/artifacts";
import { isDomainError, objectSourceOf } from "@sluice/domain";
import { JobFailure } from "./provider.js";
import type { Provider } from "./provider.js";

/**
 * `Source`/`ObjectStore` (AWS's S3 source action): the zip stored as `S3ObjectKey` in `S3Bucket`
 * becomes the output artifact, as AWS's S3 source does.
 *
 * The runner holds no object-store credential: the job carries a presigned GET of the object
 * (`Job.source_object`), which the artifact service signs only for buckets SOURCE_BUCKETS lets the
 * pipeline read; when the job is pinned to a version (a VersionId from the source poller or from
 * StartPipelineExecution's sourceRevisions) the grant is for that version.
 *
 * Output variables (AWS's): ETag, VersionId ("" on an unversioned bucket). The revision is the
 * VersionId on a versioned bucket, else the ETag.
 */
export const objectStoreSourceProvider: Provider = async (ctx) => {
  const { job } = ctx;
  const { bucket, objectKey } = objectSourceOf(job.configuration);
  if (bucket === "") throw new JobFailure("ConfigurationError", "configuration.S3Bucket: is required");
  if (objectKey === "") throw new JobFailure("ConfigurationError", "configuration.S3ObjectKey: is required");
  const grant = job.sourceObject;
  if (grant === undefined || grant.url === "") {
    throw new JobFailure("SystemUnavailable", "the job carries no grant to read its source object (is the artifact service reachable?)");
  }
  const where = `s3://${bucket}/${objectKey}`;
  const pinned = job.sourceRevision.trim();
  const zipPath = path.join(ctx.ws.inputs, "source.zip");

  let res: Response;
  try {
    res = await fetch(grant.url, { signal: ctx.signal });
  } catch (err) {
    if (ctx.signal.aborted) throw new JobFailure("JobFailed", "the source download was stopped");
    throw new JobFailure("SystemUnavailable", `reading ${where} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!res.ok) {
    const body = await res.text().catch(() => "");
    const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? res.statusText;
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 404 || code === "NoSuchVersion" || (res.status === 400 && code === "InvalidArgument" && pinned !== "")) {
      const what = pinned === "" ? where : `version ${pinned} of ${where}`;
      throw new JobFailure("RevisionUnavailable", `${what} does not exist (${code})`);
    }
    if (res.status === 403) throw new JobFailure("PermissionError", `reading ${where} was refused (${code})`);
    throw new JobFailure(res.status >= 500 ? "SystemUnavailable" : "JobFailed", `reading ${where} failed: ${res.status} ${code}`);
  }
  const etag = unquote(res.headers.get("etag") ?? "");
  const rawVersion = res.headers.get("x-amz-version-id") ?? "";
  // S3 and MinIO name the single version of an unversioned object "null".
  const versionId = rawVersion === "null" ? "" : rawVersion;
  // A revision pinned on an unversioned bucket is the ETag the poller saw: the object must still be it.
  if (pinned !== "" && versionId === "" && pinned !== etag) {
    await res.body?.cancel().catch(() => undefined);
    throw new JobFailure("RevisionUnavailable", `${where} is no longer revision ${pinned}: its ETag is now ${etag} and the bucket keeps no versions`);
  }
  await saveBody(res, zipPath, where, ctx.signal);
  if (!(await looksLikeZip(zipPath))) {
    throw new JobFailure("ConfigurationError", `configuration.S3ObjectKey: ${where} is not a zip file; an ObjectStore source reads a zip, as AWS's S3 source does`);
  }
  try {
    const extracted = await extractZip(zipPath, ctx.ws.src);
    ctx.logger.debug("source object extracted", { bucket, key: objectKey, files: extracted.files, bytes: extracted.bytes });
  } catch (err) {
    if (isDomainError(err)) throw new JobFailure("ConfigurationError", `configuration.S3ObjectKey: ${where} is not a usable zip: ${err.message}`);
    throw err;
  }
  const lastModified = res.headers.get("last-modified");
  const created = lastModified === null || Number.isNaN(Date.parse(lastModified)) ? undefined : new Date(lastModified);
  const revisionId = versionId === "" ? etag : versionId;
  ctx.log?.write("system", `read ${where} (${versionId === "" ? `ETag ${etag}` : `version ${versionId}`})`);
  return {
    summary: where,
    externalExecutionId: revisionId,
    outputVariables: { ETag: etag, VersionId: versionId },
    revision: { revisionId, revisionSummary: where, ...(created === undefined ? {} : { created: timestampFromDate(created) }) },
    outputs: job.outputs.map((o) => ({ name: o.name, dir: ctx.ws.src, patterns: [] })),
  };
};

/** Streams the response into `file`, at most the runner's download limit. */
async function saveBody(res: Response, file: string, where: string, signal: AbortSignal): Promise<void> {
  const announced = Number(res.headers.get("content-length") ?? "0");
  if (announced > DEFAULT_MAX_DOWNLOAD_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw new JobFailure("JobFailed", `${where} has ${announced} bytes, more than the ${DEFAULT_MAX_DOWNLOAD_BYTES} a source may have`);
  }
  let received = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      if (received > DEFAULT_MAX_DOWNLOAD_BYTES) done(new JobFailure("JobFailed", `${where} is larger than ${DEFAULT_MAX_DOWNLOAD_BYTES} bytes`));
      else done(null, chunk);
    },
  });
  if (res.body === null) throw new JobFailure("JobFailed", `reading ${where} returned no body`);
  try {
    await pipeline(Readable.fromWeb(res.body), limit, createWriteStream(file), { signal });
  } catch (err) {
    if (err instanceof JobFailure) throw err;
    if (signal.aborted) throw new JobFailure("JobFailed", "the source download was stopped");
    throw new JobFailure("SystemUnavailable", `reading ${where} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A zip starts with a local file header, or is an empty archive (end of central directory only). */
async function looksLikeZip(file: string): Promise<boolean> {
  const handle = await open(file, "r");
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    if (bytesRead < 4) return false;
    return head.readUInt32LE(0) === 0x04034b50 || head.readUInt32LE(0) === 0x06054b50;
  } finally {
    await handle.close();
  }
}

function unquote(etag: string): string {
  return etag.replace(/^"(.*)"$/, "$1");
}
