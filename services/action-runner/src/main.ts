// The composition root: the only file that reads the environment and touches the process.
import { runMain } from "@sluice/service-kit";
import { loadActionRunnerConfig, secretVariableNames } from "./config.js";
import { scrubEnviron } from "./environ-scrub.js";
import { startActionRunner } from "./service.js";

// Jobs must not find the runner's credentials in /proc/<runner pid>/environ: once the
// configuration holds them, they are overwritten in the process's own environment block.
let scrubError: string | undefined;
const loadAndScrub = (env: Record<string, string | undefined>): ReturnType<typeof loadActionRunnerConfig> => {
  const config = loadActionRunnerConfig(env);
  try {
    scrubEnviron(secretVariableNames(env));
  } catch (err) {
    scrubError = err instanceof Error ? err.message : String(err);
  }
  return config;
};

await runMain({
  service: "action-runner",
  env: process.env,
  loadConfig: loadAndScrub,
  start: (config, deps) => {
    if (scrubError !== undefined) deps.logger.warn("could not scrub credentials from the runner's environment block", { err: scrubError });
    return startActionRunner(config, deps);
  },
});
