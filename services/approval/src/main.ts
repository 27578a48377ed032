// Composition root of the approval service: the only file that reads the
// environment or touches the process (signals, exit code).
import { createLogger, runService } from "@sluice/service-kit";
import { loadApprovalConfig } from "./config.js";
import type { ApprovalConfig } from "./config.js";
import { startApprovalService } from "./service.js";

function readConfig(): ApprovalConfig | undefined {
  try {
    return loadApprovalConfig(process.env);
  } catch (err) {
    // No logger exists yet: the configuration names its level.
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
    return undefined;
  }
}

const config = readConfig();
if (config !== undefined) {
  const logger = createLogger({ service: "approval", level: config.logLevel });
  await runService("approval", logger, () => startApprovalService(config, { logger }), config.shutdownGraceMs);
}
