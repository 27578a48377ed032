// `npm run bench`: prints the orchestration overhead per action next to the
// messaging and database floors beneath it, then runners' jobs/s and dispatch → start latency,
// then commit → first action via webhook and via polling and the source poller's CPU (see test/bench/).
import { build, ensureDependencies, ensureServers, must } from "./lib.mjs";

ensureDependencies();
ensureServers();
build();
must("npx", ["tsx", "--conditions=@sluice/source", "test/bench/orchestration-overhead.ts"]);
must("npx", ["tsx", "--conditions=@sluice/source", "test/bench/runner-throughput.ts"]);
must("npx", ["tsx", "--conditions=@sluice/source", "test/bench/trigger-latency.ts"]);
