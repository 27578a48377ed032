// The composition root: the only file that reads the environment and touches the process.
import { runMain } from "@sluice/service-kit";
import { loadSourcePollerConfig } from "./config.js";
import { startSourcePoller } from "./service.js";

await runMain({ service: "source-poller", env: process.env, loadConfig: loadSourcePollerConfig, start: startSourcePoller });
