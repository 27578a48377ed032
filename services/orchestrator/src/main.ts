import { ConfigError, createLogger, runService } from "@sluice/service-kit";
import { loadOrchestratorConfig } from "./config.js";
import type { OrchestratorConfig } from "./config.js";
import { startOrchestrator } from "./service.js";

// The composition root: the only place that reads the environment and handles signals.
let config: OrchestratorConfig | undefined;
try {
  config = loadOrchestratorConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  // Every bad variable, by name, without a stack trace in the way.
  console.error(`orchestrator: ${err.message}`);
  process.exitCode = 1;
}
if (config !== undefined) {
  const ready = config;
  const logger = createLogger({ service: "orchestrator", level: ready.logLevel });
  await runService("orchestrator", logger, () => startOrchestrator(ready, { logger }), ready.shutdownGraceMs);
}
