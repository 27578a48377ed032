// Composition root of the artifact service: the only file that reads the
// environment or touches the process (signals, exit code).
import { createLogger, runService } from "@sluice/service-kit";
import { loadArtifactConfig } from "./config.js";
import type { ArtifactConfig } from "./config.js";
import { startArtifactService } from "./service.js";

function readConfig(): ArtifactConfig | undefined {
  try {
    return loadArtifactConfig(process.env);
  } catch (err) {
    // No logger exists yet: the configuration names its level.
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
    return undefined;
  }
}

const config = readConfig();
if (config !== undefined) {
  const logger = createLogger({ service: "artifact", level: config.logLevel });
  await runService("artifact", logger, () => startArtifactService(config, { logger }), config.shutdownGraceMs);
}
