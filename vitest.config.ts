import { defaultServerConditions, defineConfig } from "vitest/config";

// One process runs every package's tests; workspace packages resolve to their
// TypeScript sources through the "@sluice/source" export condition.
export default defineConfig({
  ssr: { resolve: { conditions: ["@sluice/source", ...defaultServerConditions] } },
  resolve: { conditions: ["@sluice/source"] },
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts", "services/*/src/**/*.test.ts", "services/*/test/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["./packages/testkit/src/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});
