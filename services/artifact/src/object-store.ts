import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { Client } from "minio";

/** How to reach the S3-compatible object store (MinIO by default). */
export interface S3Settings {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  /** @default "us-east-1" */
  region?: string;
}

/** A presigned request for one key and one method. The URL is a bearer credential: never log it. */
export interface PresignedGrant {
  url: string;
  method: "GET" | "PUT";
  bucket: string;
  key: string;
  expiresAt: Date;
}

/** What the artifact service needs from the object store; it never moves bytes itself. */
export interface ObjectStore {
  /** Creates the bucket the first time it is seen; later calls are answered from memory. */
  ensureBucket(bucket: string): Promise<void>;
  /** `versionId`: a GET of that version of the object (versioned buckets). */
  presign(method: "GET" | "PUT", bucket: string, key: string, ttlSeconds: number, now: Date, versionId?: string): Promise<PresignedGrant>;
  /** The object's size, or undefined when there is no such object. */
  sizeOf(bucket: string, key: string): Promise<number | undefined>;
  /**
   * Reads the object and hashes it: its hex SHA-256 and the bytes read, or undefined when there
   * is no such object. Stops reading past `maxBytes` (returning what was counted so far), so an
   * object swapped for a huge one costs at most that much.
   */
  digestOf(bucket: string, key: string, maxBytes: number): Promise<{ sha256: string; sizeBytes: number } | undefined>;
}

/** S3's upper bound for a presigned URL's lifetime (SigV4: 7 days). */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/** An ObjectStore over the `minio` client. */
export function createObjectStore(settings: S3Settings): ObjectStore {
  const region = settings.region ?? "us-east-1";
  // A fixed region keeps presigning offline: without it the client asks the
  // server for each bucket's location before signing.
  const client = new Client({
    endPoint: settings.endPoint,
    port: settings.port,
    useSSL: settings.useSSL,
    accessKey: settings.accessKey,
    secretKey: settings.secretKey,
    region,
  });
  // One promise per bucket: concurrent first uses share a single creation; a
  // failed creation is forgotten so the next call tries again.
  const buckets = new Map<string, Promise<void>>();

  async function createBucket(bucket: string): Promise<void> {
    if (await client.bucketExists(bucket)) return;
    try {
      await client.makeBucket(bucket, region);
    } catch (err) {
      // Another replica (or an earlier run) created it between the two calls.
      if (s3Code(err) !== "BucketAlreadyOwnedByYou") throw err;
    }
  }

  return {
    ensureBucket(bucket) {
      let pending = buckets.get(bucket);
      if (pending === undefined) {
        pending = createBucket(bucket);
        buckets.set(bucket, pending);
        void pending.catch(() => buckets.delete(bucket));
      }
      return pending;
    },

    async presign(method, bucket, key, ttlSeconds, now, versionId) {
      const seconds = Math.min(Math.max(1, Math.floor(ttlSeconds)), MAX_PRESIGN_SECONDS);
      const params = versionId === undefined || versionId === "" ? {} : { versionId };
      const url = await client.presignedUrl(method, bucket, key, seconds, params, now);
      return { url, method, bucket, key, expiresAt: new Date(now.getTime() + seconds * 1000) };
    },

    async sizeOf(bucket, key) {
      try {
        const stat = await client.statObject(bucket, key);
        return stat.size;
      } catch (err) {
        const code = s3Code(err);
        if (code === "NotFound" || code === "NoSuchKey" || code === "NoSuchBucket") return undefined;
        throw err;
      }
    },

    async digestOf(bucket, key, maxBytes) {
      let stream: Readable;
      try {
        stream = await client.getObject(bucket, key);
      } catch (err) {
        const code = s3Code(err);
        if (code === "NotFound" || code === "NoSuchKey" || code === "NoSuchBucket") return undefined;
        throw err;
      }
      const hash = createHash("sha256");
      let sizeBytes = 0;
      try {
        for await (const chunk of stream) {
          const buf = chunk as Buffer;
          sizeBytes += buf.length;
          if (sizeBytes > maxBytes) break;
          hash.update(buf);
        }
      } finally {
        stream.destroy();
      }
      return { sha256: hash.digest("hex"), sizeBytes };
    },
  };
}

function s3Code(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = err.code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}
