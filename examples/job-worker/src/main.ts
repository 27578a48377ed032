// Runs the example worker until SIGINT or SIGTERM:
//   SLUICE_ADDR=127.0.0.1:<port> SLUICE_TOKEN=<runner token> \
//   JOB_CATEGORY=Deploy JOB_PROVIDER=ExampleRollout JOB_VERSION=1 npm start -w @sluice/example-job-worker
import { createJobClient } from "@sluice/client";
import { runWorker } from "./worker.js";

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
};

const client = createJobClient({ address: env("SLUICE_ADDR"), token: env("SLUICE_TOKEN"), deadlineMs: 15_000 });
const actionType = { category: env("JOB_CATEGORY", "Deploy"), provider: env("JOB_PROVIDER", "ExampleRollout"), version: env("JOB_VERSION", "1") };
const stop = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => stop.abort());

console.log(`polling for ${actionType.category}/Custom/${actionType.provider}/${actionType.version} jobs`);
await runWorker(client, actionType, stop.signal, { log: (line) => console.log(line) });
client.close();
