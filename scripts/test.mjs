// `npm test`: installs what is missing, builds, checks types and lint, runs the whole
// suite against real servers, and ends with the line `N passed, N failed`.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { build, ensureDependencies, ensureServers, root, run } from "./lib.mjs";

ensureDependencies();
ensureServers();
build();

const checks = run("npx", ["turbo", "run", "typecheck", "lint", "--output-logs=errors-only"]);
if (checks !== 0) console.error("sluice: typecheck or lint failed (see above)");

const report = join(root, "test-results.json");
rmSync(report, { force: true });
const extra = process.argv.slice(2);
const vitest = run("npx", ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...extra]);

let passed = 0;
let failed = 0;
try {
  const r = JSON.parse(readFileSync(report, "utf8"));
  passed = r.numPassedTests;
  failed = r.numFailedTests;
  // A file that fails to load, or whose setup hook fails (its tests then count as skipped), has no
  // failed test counted: count the file as a failure.
  failed += r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
} catch {
  failed += 1;
}
if (checks !== 0) failed += 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(vitest !== 0 || checks !== 0 || failed > 0 ? 1 : 0);
