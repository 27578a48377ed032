// Types what the global setup provides, so `inject("servers")` is typed in every test file whose program
// includes @sluice/testkit (importing anything from it, or `import type {} from "@sluice/testkit"`).
import type { S3Settings } from "./servers.js";
// Pulls vitest's types into the program so the augmentation below has a module to merge into.
import type {} from "vitest";

/** The servers every test file reaches through `inject("servers")`. */
export interface ProvidedServers {
  natsUrl: string;
  mongoUrl: string;
  s3: S3Settings;
}

declare module "vitest" {
  export interface ProvidedContext {
    servers: ProvidedServers;
  }
}
