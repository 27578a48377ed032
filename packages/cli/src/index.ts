export { parseArgs, requireFlag, optionalFlag, UsageError } from "./args.js";
export type { ParsedArgs } from "./args.js";
export { runCommand, USAGE } from "./commands.js";
export { resolveConnection, readDevState, DEV_STATE_FILE } from "./connection.js";
export type { Connection, DevState } from "./connection.js";
export { runDev } from "./dev.js";
export type { DevOptions } from "./dev.js";
export { ensureExampleRepo, examplePipelineJson, EXAMPLE_PIPELINE, EXAMPLE_BUCKET } from "./example.js";
export { renderPipelineState, renderExecution } from "./render.js";
