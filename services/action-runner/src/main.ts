// Composition root of the action-runner: the only file that reads the environment and
// touches the process. env → config → startActionRunner → runService (SIGTERM/SIGINT → stop).
import { createLogger, runService } from "@sluice/service-kit";
import { loadActionRunnerConfig } from "./config.js";
import type { ActionRunnerConfig } from "./config.js";
import { startActionRunner } from "./service.js";

function readConfig(): ActionRunnerConfig | undefined {
  try {
    return loadActionRunnerConfig(process.env);
  } catch (err) {
    // No logger exists yet (the configuration names its level): plain stderr, every bad variable listed.
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
    return undefined;
  }
}

const config = readConfig();
if (config !== undefined) {
  const logger = createLogger({ service: "action-runner", level: config.logLevel });
  await runService("action-runner", logger, () => startActionRunner(config, { logger }), config.shutdownGraceMs);
}
