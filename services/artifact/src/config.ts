import { z } from "zod";
import { parseTokenTable } from "@sluice/grpc";
import type { TokenEntry } from "@sluice/grpc";
import { commonConfig, commonEnv, grpcTlsEnv, loadConfig, positiveInt } from "@sluice/service-kit";
import type { CommonConfig } from "@sluice/service-kit";
import { parseDeployBuckets } from "./deploy-buckets.js";
import type { DeployBuckets } from "./deploy-buckets.js";
import { MAX_PRESIGN_SECONDS } from "./object-store.js";
import type { S3Settings } from "./object-store.js";

/**
 * The artifact service's environment, one comment per variable. It keeps no
 * bus connection, so NATS_URL and SLUICE_BUS_PREFIX are not read.
 */
export const artifactEnv = z.object({
  MONGO_URL: commonEnv.MONGO_URL,
  /** Database of the artifact metadata. */
  MONGO_DB: z.string().min(1).default("sluice_artifacts"),
  GRPC_HOST: commonEnv.GRPC_HOST,
  GRPC_PORT: commonEnv.GRPC_PORT,
  ...grpcTlsEnv,
  SLUICE_AUTH_TOKENS: commonEnv.SLUICE_AUTH_TOKENS.transform(tokenTable),
  OTEL_EXPORTER_OTLP_ENDPOINT: commonEnv.OTEL_EXPORTER_OTLP_ENDPOINT,
  LOG_LEVEL: commonEnv.LOG_LEVEL,
  SHUTDOWN_GRACE_MS: commonEnv.SHUTDOWN_GRACE_MS,
  /** The object store, e.g. `http://127.0.0.1:9000` (scheme://host[:port]). */
  S3_ENDPOINT: z.string().transform(s3Endpoint),
  S3_ACCESS_KEY: z.string().min(1),
  S3_SECRET_KEY: z.string().min(1),
  /** Region used to sign URLs and create buckets. */
  S3_REGION: z.string().min(1).default("us-east-1"),
  /** Lifetime of presigned URLs in seconds (S3 allows at most 7 days). */
  GRANT_TTL_SECONDS: positiveInt()
    .refine((n) => n <= MAX_PRESIGN_SECONDS, { message: `must be at most ${MAX_PRESIGN_SECONDS} (7 days)` })
    .default(900),
  /**
   * Buckets ObjectStore deploy actions may write, per pipeline: `<pipeline|*>=<bucket|prefix*>[+…],…`,
   * e.g. `site=www-example-com,*=preview-*`. Unset or empty: no deploy bucket is allowed.
   */
  DEPLOY_BUCKETS: z.string().default("").transform(deployBuckets),
  /**
   * Buckets ObjectStore source actions may read, per pipeline, in DEPLOY_BUCKETS' syntax, e.g.
   * `app=app-sources,*=shared-src-*`. Unset or empty: no source bucket is allowed.
   */
  SOURCE_BUCKETS: z.string().default("").transform(deployBuckets),
});

/** The resolved configuration `startArtifactService` takes. */
export interface ArtifactConfig extends Omit<CommonConfig<readonly TokenEntry[]>, "natsUrl" | "busPrefix"> {
  mongoDb: string;
  s3: S3Settings;
  grantTtlSeconds: number;
  deployBuckets: DeployBuckets;
  sourceBuckets: DeployBuckets;
}

/** Parses the environment; throws a ConfigError naming every bad variable. */
export function loadArtifactConfig(env: Record<string, string | undefined>): ArtifactConfig {
  const e = loadConfig(artifactEnv, env);
  return {
    ...commonConfig(e),
    mongoDb: e.MONGO_DB,
    s3: { ...e.S3_ENDPOINT, accessKey: e.S3_ACCESS_KEY, secretKey: e.S3_SECRET_KEY, region: e.S3_REGION },
    grantTtlSeconds: e.GRANT_TTL_SECONDS,
    deployBuckets: e.DEPLOY_BUCKETS,
    sourceBuckets: e.SOURCE_BUCKETS,
  };
}

function tokenTable(spec: string, ctx: z.RefinementCtx): TokenEntry[] {
  try {
    return parseTokenTable(spec);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
    return z.NEVER;
  }
}

function deployBuckets(spec: string, ctx: z.RefinementCtx): DeployBuckets {
  try {
    return parseDeployBuckets(spec);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
    return z.NEVER;
  }
}

/** `http(s)://host[:port]` → the minio client's endPoint/port/useSSL. */
function s3Endpoint(value: string, ctx: z.RefinementCtx): { endPoint: string; port: number; useSSL: boolean } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: "custom", message: `"${value}" is not a URL (e.g. http://127.0.0.1:9000)` });
    return z.NEVER;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    ctx.addIssue({ code: "custom", message: "must use http or https" });
    return z.NEVER;
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.username !== "") {
    ctx.addIssue({ code: "custom", message: "must be scheme://host[:port] without path, query or credentials" });
    return z.NEVER;
  }
  const useSSL = url.protocol === "https:";
  // URL keeps IPv6 hosts in brackets; the minio client wants them bare.
  const endPoint = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return { endPoint, port: url.port === "" ? (useSSL ? 443 : 80) : Number(url.port), useSSL };
}
