import { defineConfig } from "vitest/config";

// Vite's default server conditions minus "module": with it, CommonJS OpenTelemetry packages
// require() @opentelemetry/api's bundler-only ESM build and fail to load.
const serverConditions = ["node", "development|production"];

// One process runs every package's tests; workspace packages resolve to their
// TypeScript sources through the "@sluice/source" export condition.
export default defineConfig({
  ssr: { resolve: { conditions: ["@sluice/source", ...serverConditions] } },
  resolve: { conditions: ["@sluice/source"] },
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts", "services/*/src/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["./packages/testkit/src/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
    // Tests make git commits; CI machines may have no git identity configured.
    env: {
      GIT_AUTHOR_NAME: "Sluice Test",
      GIT_AUTHOR_EMAIL: "test@sluice.invalid",
      GIT_COMMITTER_NAME: "Sluice Test",
      GIT_COMMITTER_EMAIL: "test@sluice.invalid",
    },
  },
});
