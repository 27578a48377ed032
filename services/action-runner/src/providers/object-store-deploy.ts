import { readdir } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { Client } from "minio";
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
 * Unlike artifacts, which runners only touch through presigned grants, a deploy target is an
 * arbitrary bucket, so the runner holds an S3 credential for it (S3_ENDPOINT / S3_ACCESS_KEY /
 * S3_SECRET_KEY). A production deployment gives the runner a credential scoped to the deploy
 * buckets only (never the artifact store's), so a pipeline cannot overwrite other pipelines'
 * artifacts through a deploy action.
 */

/** Where ObjectStore deploy actions write, and the credential for it. */
export interface ObjectStoreTarget {
  readonly endPoint: string;
  readonly port: number;
  readonly useSSL: boolean;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly region: string;
}

/** Objects uploaded at the same time when extracting an artifact. */
const UPLOAD_CONCURRENCY = 4;

/**
 * Creates the provider; without a target every deploy job fails with a ConfigurationError.
 *
 * Each job gets its own S3 client over its own HTTP agent. The minio client takes no abort
 * signal, so stopping a deploy (deadline, cancel, shutdown) destroys the job's agent: every
 * request in flight fails at once, and the upload loop starts no further object.
 */
export function createObjectStoreDeployProvider(target: ObjectStoreTarget | undefined): Provider {
  const clientFor = (signal: AbortSignal): { s3: Client; close: () => void } => {
    if (target === undefined) {
      throw new JobFailure(
        "ConfigurationError",
        "this runner has no deploy target object store configured (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY)",
      );
    }
    const agent = target.useSSL ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    const onAbort = (): void => agent.destroy();
    signal.addEventListener("abort", onAbort, { once: true });
    const s3 = new Client({
      endPoint: target.endPoint,
      port: target.port,
      useSSL: target.useSSL,
      accessKey: target.accessKey,
      secretKey: target.secretKey,
      region: target.region,
      transportAgent: agent,
    });
    const close = (): void => {
      signal.removeEventListener("abort", onAbort);
      agent.destroy();
    };
    return { s3, close };
  };

  return async (ctx) => {
    const { job } = ctx;
    const bucket = requireConfig(job, "BucketName");
    const extract = booleanConfig(job, "Extract", true);
    const objectKey = configValue(job, "ObjectKey");
    const cacheControl = configValue(job, "CacheControl");
    const input = ctx.inputs[0];
    if (input === undefined) {
      throw new JobFailure("ConfigurationError", "inputArtifacts: the ObjectStore deploy action needs one input artifact");
    }
    if (!extract && objectKey === undefined) {
      throw new JobFailure("ConfigurationError", "configuration.ObjectKey: is required when Extract is \"false\"");
    }
    const { s3, close } = clientFor(ctx.signal);
    const meta = (contentType: string): Record<string, string> => ({
      "Content-Type": contentType,
      ...(cacheControl === undefined ? {} : { "Cache-Control": cacheControl }),
    });

    try {
      await ensureBucket(s3, bucket, target?.region ?? "us-east-1");
      if (!extract) {
        const key = normalizeKey(objectKey ?? "");
        await s3.fPutObject(bucket, key, input.zipPath, meta("application/zip"));
        ctx.logger.info("deployed artifact zip", { bucket, key });
        return { summary: `Deployed ${input.name} to s3://${bucket}/${key}`, externalExecutionId: job.jobId, outputs: [] };
      }

      const prefix = normalizeKey(objectKey ?? "");
      const files = await listFiles(input.dir);
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < files.length; i = next++) {
          throwIfAborted(ctx);
          const rel = files[i] as string;
          const key = prefix === "" ? rel : `${prefix}/${rel}`;
          await s3.fPutObject(bucket, key, path.join(input.dir, rel), meta(contentTypeOf(rel)));
          // A request that started just as the agent was destroyed may still have succeeded.
          throwIfAborted(ctx);
          ctx.logger.debug("deployed object", { bucket, key });
        }
      };
      await Promise.all(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, files.length) }, worker));
      const where = `s3://${bucket}/${prefix === "" ? "" : `${prefix}/`}`;
      ctx.logger.info("deployed artifact", { bucket, prefix, files: files.length });
      return { summary: `Deployed ${files.length} files of ${input.name} to ${where}`, externalExecutionId: job.jobId, outputs: [] };
    } catch (err) {
      if (err instanceof JobFailure) throw err;
      if (ctx.signal.aborted) throw new JobFailure("JobFailed", "deploy was stopped before it finished");
      const code = (err as { code?: unknown }).code;
      const message = err instanceof Error ? err.message : String(err);
      throw new JobFailure(
        code === "AccessDenied" ? "PermissionError" : "JobFailed",
        `deploy to bucket ${bucket} failed: ${message}`,
      );
    } finally {
      close();
    }
  };
}

async function ensureBucket(s3: Client, bucket: string, region: string): Promise<void> {
  if (await s3.bucketExists(bucket)) return;
  try {
    await s3.makeBucket(bucket, region);
  } catch (err) {
    // Another job may have created it between the check and the create.
    const code = (err as { code?: unknown }).code;
    if (code !== "BucketAlreadyOwnedByYou" && code !== "BucketAlreadyExists") throw err;
  }
}

/** Strips leading/trailing slashes and collapses repeated ones: "/site//v1/" → "site/v1". */
function normalizeKey(key: string): string {
  return key.split("/").filter((part) => part !== "").join("/");
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
