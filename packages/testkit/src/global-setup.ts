// vitest globalSetup (referenced from the root vitest.config.ts): starts nats-server, a MongoDB-compatible
// server and MinIO once per run and hands their settings to every test file via provide("servers").
// This is an entry point, so it reads the environment: NATS_URL, MONGO_URL and
// S3_ENDPOINT + S3_ACCESS_KEY + S3_SECRET_KEY point at existing servers instead; SLUICE_CACHE_DIR moves the
// binary cache.
import type { TestProject } from "vitest/node";
import { s3SettingsFromUrl, startServers, type S3Settings } from "./servers.js";
import type { ProvidedServers } from "./vitest-context.js";

function s3FromEnv(env: NodeJS.ProcessEnv): S3Settings | undefined {
  const endpoint = env["S3_ENDPOINT"];
  if (endpoint === undefined || endpoint === "") return undefined;
  const accessKey = env["S3_ACCESS_KEY"];
  const secretKey = env["S3_SECRET_KEY"];
  const missing = [accessKey ? undefined : "S3_ACCESS_KEY", secretKey ? undefined : "S3_SECRET_KEY"].filter(Boolean);
  if (missing.length > 0 || accessKey === undefined || secretKey === undefined) {
    throw new Error(`S3_ENDPOINT is set but ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not`);
  }
  return s3SettingsFromUrl(endpoint, accessKey, secretKey);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

/** Starts the shared servers and returns their teardown. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = process.env;
  const cacheDir = nonEmpty(env["SLUICE_CACHE_DIR"]);
  const servers = await startServers({
    natsUrl: nonEmpty(env["NATS_URL"]),
    mongoUrl: nonEmpty(env["MONGO_URL"]),
    s3: s3FromEnv(env),
    ...(cacheDir === undefined ? {} : { binary: { cacheDir } }),
  });
  const provided: ProvidedServers = { natsUrl: servers.natsUrl, mongoUrl: servers.mongoUrl, s3: servers.s3 };
  project.provide("servers", provided);
  return () => servers.stop();
}
