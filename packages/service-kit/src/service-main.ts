import type { Logger } from "@sluice/domain";
import { isDevMode } from "./config.js";
import type { LogLevel } from "./config.js";
import type { StoppableService } from "./lifecycle.js";
import { runService } from "./lifecycle.js";
import { createLogger } from "./logger.js";
import { startTelemetry } from "./telemetry.js";

/** What every service's configuration carries for its composition root. */
export interface MainConfig {
  readonly logLevel: LogLevel;
  readonly shutdownGraceMs: number;
  readonly otlpEndpoint?: string | undefined;
}

/** Options of `runMain`. */
export interface MainOptions<C extends MainConfig> {
  /** Service name for logs, traces and error messages. */
  readonly service: string;
  /** The process environment, passed in by main.ts. */
  readonly env: Record<string, string | undefined>;
  /** Parses the environment; throws listing every bad variable. */
  readonly loadConfig: (env: Record<string, string | undefined>) => C;
  readonly start: (config: C, deps: { logger: Logger }) => Promise<StoppableService>;
}

/**
 * The whole of a service's `main.ts`: env → config (a bad one exits 1 naming every
 * variable, no stack trace), logger, telemetry, run until SIGTERM/SIGINT, then flush
 * telemetry last so the shutdown's own spans are exported.
 */
export async function runMain<C extends MainConfig>(o: MainOptions<C>): Promise<void> {
  let config: C;
  try {
    config = o.loadConfig(o.env);
  } catch (err) {
    process.stderr.write(`${o.service}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
    return;
  }
  const logger = createLogger({ service: o.service, level: config.logLevel });
  if (isDevMode(o.env)) {
    // Loud on purpose: a deployment that kept the dev flag accepts guessable tokens.
    logger.warn("SLUICE_DEV_MODE=true: DEV MODE, weak and well-known tokens are accepted. Never use this outside a laptop.", { devMode: true });
  }
  const telemetry = await startTelemetry({ serviceName: o.service, otlpEndpoint: config.otlpEndpoint, logger });
  await runService(o.service, logger, () => o.start(config, { logger }), config.shutdownGraceMs);
  await telemetry.shutdown();
}
