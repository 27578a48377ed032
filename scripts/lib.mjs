// Shared by start.mjs and test.mjs: make a fresh clone runnable with nothing but Node, npm and Go.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";

export const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1", ...opts.env } });
  return r.status ?? 1;
}

export function must(cmd, args, opts) {
  const code = run(cmd, args, opts);
  if (code !== 0) {
    console.error(`sluice: '${cmd} ${args.join(" ")}' failed with exit code ${code}`);
    process.exit(code);
  }
}

/** Installs npm dependencies when node_modules is missing or older than the lockfile. */
export function ensureDependencies() {
  const marker = join(root, "node_modules", ".package-lock.json");
  const lock = join(root, "package-lock.json");
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  console.error("sluice: installing npm dependencies (npm ci)…");
  must("npm", ["ci", "--no-audit", "--no-fund"]);
}

/** Builds nats-server, FerretDB and MinIO once into ~/.cache/sluice when they are not on PATH. */
export function ensureServers() {
  must("node", [join(root, "packages/testkit/scripts/ensure-servers.mjs")]);
}

export function build() {
  must("npx", ["turbo", "run", "build", "--output-logs=errors-only"]);
}
