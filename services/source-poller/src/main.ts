import { createLogger, runService } from "@sluice/service-kit";
import { loadSourcePollerConfig } from "./config.js";
import { startSourcePoller } from "./service.js";

const config = loadSourcePollerConfig(process.env);
const logger = createLogger({ service: "source-poller", level: config.logLevel });
await runService("source-poller", logger, () => startSourcePoller(config, { logger }), config.shutdownGraceMs);
