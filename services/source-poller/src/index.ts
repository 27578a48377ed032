export { loadSourcePollerConfig } from "./config.js";
export type { SourcePollerConfig } from "./config.js";
export { startSourcePoller } from "./service.js";
export type { SourcePoller } from "./service.js";
