// The composition root: the only file that reads the environment and touches the process.
import { runMain } from "@sluice/service-kit";
import { loadOrchestratorConfig } from "./config.js";
import { startOrchestrator } from "./service.js";

await runMain({ service: "orchestrator", env: process.env, loadConfig: loadOrchestratorConfig, start: startOrchestrator });
