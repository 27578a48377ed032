import { readdir } from "node:fs/promises";
import path from "node:path";
import { TransferError, bucketNameProblem, objectKeyProblem, putFile, trimPrefix } from "@sluice/artifacts";
import { GrpcStatus, isRpcError } from "@sluice/grpc";
import type { Grant } from "@sluice/proto";
import { JobFailure, booleanConfig, configValue, requireConfig } from "./provider.js";
import type { Provider, ProviderContext } from "./provider.js";

/**
 * `Deploy`/`ObjectStore` (AWS's S3 deploy action): puts the input artifact into a bucket.
 *
 * Configuration: `BucketName` (required); `Extract` (default "true"): when true every file of
 * the artifact is written under the prefix `ObjectKey` (optional), when false the artifact's
 * zip itself is written as `ObjectKey` (then required); `CacheControl` (optional) is set on
 * every object written.
 *
 * The runner holds no object-store credential. It asks the artifact service for one presigned
 * PUT per object (ArtifactService.IssueDeployGrants), which signs only inside the allowance the
 * orchestrator recorded for this job when it published it: this bucket, this key or prefix,
 * until the job's deadline, and only for pipelines DEPLOY_BUCKETS allows to write the bucket.
 */

/** Presigned PUTs for `keys` of one deploy job (ArtifactService.IssueDeployGrants with the runner's token). */
export type DeployGranter = (
  request: { readonly actionExecutionId: string; readonly bucket: string; readonly keys: readonly string[] },
  signal: AbortSignal,
) => Promise<readonly Grant[]>;

/** Objects uploaded at the same time when extracting an artifact. */
const UPLOAD_CONCURRENCY = 4;
/** Keys per grant request: asked just before their uploads, so no grant waits long enough to expire. */
const GRANT_BATCH = 100;

/** Creates the provider; without a granter (no artifact service) every deploy job fails with a ConfigurationError. */
export function createObjectStoreDeployProvider(granter: DeployGranter | undefined): Provider {
  return async (ctx) => {
    const { job } = ctx;
    const bucket = requireConfig(job, "BucketName");
    const extract = booleanConfig(job, "Extract", true);
    const objectKey = configValue(job, "ObjectKey");
    const cacheControl = configValue(job, "CacheControl");
    const input = ctx.inputs[0];
    // Checked here, after variable resolution, and again by the artifact service before it signs.
    const bucketProblem = bucketNameProblem(bucket);
    if (bucketProblem !== undefined) throw new JobFailure("ConfigurationError", `configuration.BucketName: ${bucketProblem}`);
    if (!extract && objectKey === undefined) {
      throw new JobFailure("ConfigurationError", "configuration.ObjectKey: is required when Extract is \"false\"");
    }
    const keyProblem = objectKeyProblem(objectKey ?? "", { prefix: extract });
    if (keyProblem !== undefined) throw new JobFailure("ConfigurationError", `configuration.ObjectKey: ${keyProblem}`);
    if (input === undefined) {
      throw new JobFailure("ConfigurationError", "inputArtifacts: the ObjectStore deploy action needs one input artifact");
    }
    if (granter === undefined) {
      throw new JobFailure("ConfigurationError", "this runner has no artifact service to issue deploy grants (ARTIFACT_ADDR)");
    }
    const headers = (contentType: string): Record<string, string> => ({
      "Content-Type": contentType,
      ...(cacheControl === undefined ? {} : { "Cache-Control": cacheControl }),
    });
    const upload = async (uploads: readonly { key: string; file: string }[]): Promise<void> => {
      for (let start = 0; start < uploads.length; start += GRANT_BATCH) {
        throwIfAborted(ctx);
        const batch = uploads.slice(start, start + GRANT_BATCH);
        const grants = await requestGrants(granter, { actionExecutionId: job.actionExecutionId, bucket, keys: batch.map((u) => u.key) }, ctx.signal);
        let next = 0;
        const worker = async (): Promise<void> => {
          for (let i = next++; i < batch.length; i = next++) {
            throwIfAborted(ctx);
            const { key, file } = batch[i] as { key: string; file: string };
            const grant = grants[i];
            if (grant?.key !== key || grant.bucket !== bucket) {
              throw new JobFailure("SystemUnavailable", `the artifact service returned no deploy grant for ${key}`);
            }
            await putFile(grant.url, file, { signal: ctx.signal, headers: headers(extract ? contentTypeOf(key) : "application/zip") });
            // A request that started just as the job was stopped may still have succeeded.
            throwIfAborted(ctx);
            ctx.logger.debug("deployed object", { bucket, key });
            ctx.log?.write("system", `deployed s3://${bucket}/${key}`);
          }
        };
        await Promise.all(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, batch.length) }, worker));
      }
    };

    try {
      if (!extract) {
        const key = objectKey ?? "";
        await upload([{ key, file: input.zipPath }]);
        ctx.logger.info("deployed artifact zip", { bucket, key });
        return { summary: `Deployed ${input.name} to s3://${bucket}/${key}`, externalExecutionId: job.jobId, outputs: [] };
      }

      const prefix = trimPrefix(objectKey ?? "");
      const files = await listFiles(input.dir);
      const uploads = files.map((rel, i) => {
        const key = prefix === "" ? rel : `${prefix}/${rel}`;
        const problem = objectKeyProblem(key, { prefix: false });
        if (problem !== undefined) throw new JobFailure("ConfigurationError", `inputArtifacts[0] file ${i}: object key ${problem}`);
        return { key, file: path.join(input.dir, rel) };
      });
      await upload(uploads);
      const where = `s3://${bucket}/${prefix === "" ? "" : `${prefix}/`}`;
      ctx.logger.info("deployed artifact", { bucket, prefix, files: files.length });
      return { summary: `Deployed ${files.length} files of ${input.name} to ${where}`, externalExecutionId: job.jobId, outputs: [] };
    } catch (err) {
      if (err instanceof JobFailure) throw err;
      if (ctx.signal.aborted) throw new JobFailure("JobFailed", "deploy was stopped before it finished");
      const message = err instanceof Error ? err.message : String(err);
      const denied = err instanceof TransferError && err.statusCode === 403;
      throw new JobFailure(denied ? "PermissionError" : "JobFailed", `deploy to bucket ${bucket} failed: ${message}`);
    }
  };
}

/** Asks for grants, turning the artifact service's refusals into the job's failure. */
async function requestGrants(
  granter: DeployGranter,
  request: { actionExecutionId: string; bucket: string; keys: readonly string[] },
  signal: AbortSignal,
): Promise<readonly Grant[]> {
  try {
    return await granter(request, signal);
  } catch (err) {
    if (signal.aborted) throw new JobFailure("JobFailed", "deploy was stopped before it finished");
    if (!isRpcError(err)) throw err;
    const code =
      err.code === GrpcStatus.PERMISSION_DENIED
        ? "PermissionError"
        : err.code === GrpcStatus.INVALID_ARGUMENT
          ? "ConfigurationError"
          : "SystemUnavailable";
    throw new JobFailure(code, `deploy grants for bucket ${request.bucket} refused: ${err.message}`);
  }
}

/** Regular files under `dir`, as sorted POSIX paths relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join("/"));
  return files.sort();
}

function throwIfAborted(ctx: ProviderContext): void {
  if (ctx.signal.aborted) throw new JobFailure("JobFailed", "deploy was stopped before it finished");
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".xml": "application/xml",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".wasm": "application/wasm",
  ".pdf": "application/pdf",
  ".zip": "application/zip",
};

/** The Content-Type for a file name, as a static web host would serve it. */
export function contentTypeOf(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream";
}
