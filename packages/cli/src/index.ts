export { parseArgs, requireFlag, optionalFlag, UsageError } from "./args.js";
export type { ParsedArgs } from "./args.js";
export { runCommand, USAGE } from "./commands.js";
export { resolveConnection, readDevState, DEV_STATE_FILE } from "./connection.js";
export type { Connection, DevState } from "./connection.js";
export { renderPipelineState, renderExecution, renderSnapshot, renderEvent } from "./render.js";
export { parseVariables, parseSourceRevisions, parseCount } from "./options.js";
export { runWatch } from "./watch.js";
export type { WatchOutcome, WatchOutput } from "./watch.js";
