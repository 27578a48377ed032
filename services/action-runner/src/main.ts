// The composition root: the only file that reads the environment and touches the process.
import { runMain } from "@sluice/service-kit";
import { loadActionRunnerConfig } from "./config.js";
import { startActionRunner } from "./service.js";

await runMain({ service: "action-runner", env: process.env, loadConfig: loadActionRunnerConfig, start: startActionRunner });
