#!/usr/bin/env node
// `npm start` runs this: the local cluster and the example pipeline until Ctrl-C. The sluice command
// itself stays free of the testkit, which starts the servers here.
import { fileURLToPath } from "node:url";
import { runDev } from "./dev.js";

const stopSignal = new Promise<void>((resolve) => {
  for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, () => resolve());
});

runDev({
  repoRoot: fileURLToPath(new URL("../../..", import.meta.url)),
  cwd: process.cwd(),
  env: process.env,
  print: (line) => console.log(line),
  stopSignal,
}).then(
  () => (process.exitCode = 0),
  (err: unknown) => {
    console.error("sluice-dev:", err);
    process.exitCode = 1;
  },
);
