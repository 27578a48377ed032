#!/usr/bin/env node
// Finds or builds the server binaries Sluice's tests and `npm start` run: nats-server, FerretDB (when no
// `mongod` is on PATH) and MinIO. Plain Node, no dependencies, so `npm test` / `npm start` can run it before
// anything TypeScript is compiled; src/binaries.ts imports the same functions so the pins and the build
// recipe live in one place (../servers.json).
//
// Usage: node packages/testkit/scripts/ensure-servers.mjs [--json] [nats-server|ferretdb|minio|mongo ...]
//   no names = every server the environment does not already provide (NATS_URL, MONGO_URL, S3_ENDPOINT
//   skip theirs); "mongo" = mongod from PATH, else FerretDB. --json prints {name: path} on stdout.
// Env: SLUICE_CACHE_DIR (default ~/.cache/sluice; binaries go to <dir>/bin/<name>-<version>/<name>).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PINS_FILE = fileURLToPath(new URL("../servers.json", import.meta.url));

/** Names of the binaries this script can build. */
export const SERVER_NAMES = Object.freeze(["nats-server", "ferretdb", "minio"]);

// A lock older than this is abandoned even if its pid looks alive (pid reuse); minio builds take minutes.
const STALE_LOCK_MS = 2 * 60 * 60 * 1000;
const LOCK_POLL_MS = 1000;
const CHECK_TIMEOUT_MS = 30_000;

/** Reads and validates servers.json. */
export function loadPins() {
  const raw = JSON.parse(fs.readFileSync(PINS_FILE, "utf8"));
  const pins = {};
  for (const name of SERVER_NAMES) {
    const pin = raw[name];
    if (pin === null || typeof pin !== "object") throw new Error(`servers.json: missing entry "${name}"`);
    for (const field of ["module", "version", "package"]) {
      if (typeof pin[field] !== "string") throw new Error(`servers.json: ${name}.${field} must be a string`);
    }
    if (!Array.isArray(pin.check) || !pin.check.every((a) => typeof a === "string")) {
      throw new Error(`servers.json: ${name}.check must be an array of strings`);
    }
    const files = pin.files ?? {};
    if (typeof files !== "object" || Object.values(files).some((v) => typeof v !== "string")) {
      throw new Error(`servers.json: ${name}.files must map paths to strings`);
    }
    pins[name] = { module: pin.module, version: pin.version, package: pin.package, check: pin.check, files };
  }
  return pins;
}

/** Default cache root (`~/.cache/sluice`); binaries live under `<root>/bin`. */
export function defaultCacheRoot() {
  return path.join(os.homedir(), ".cache", "sluice");
}

/** Where the pinned build of `name` lives inside `cacheRoot`. */
export function cachedBinaryPath(name, cacheRoot = defaultCacheRoot()) {
  const pin = loadPins()[name];
  if (pin === undefined) throw new Error(`unknown server binary "${name}"`);
  return path.join(cacheRoot, "bin", `${name}-${pin.version}`, name);
}

function isExecutableFile(file) {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `command` on a PATH-style string, or undefined. */
export function findOnPath(command, searchPath = process.env.PATH ?? "") {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === "") continue;
    const candidate = path.join(dir, command);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

const stderrLog = (line) => {
  process.stderr.write(`[sluice servers] ${line}\n`);
};

/**
 * Returns a runnable `name` binary: `explicitPath` if given, else the first on `searchPath`, else the pinned
 * build in the cache, building it (under a lock shared by concurrent processes) when missing or broken.
 */
export async function ensureServerBinary(name, opts = {}) {
  const log = opts.log ?? stderrLog;
  if (opts.explicitPath !== undefined) {
    if (!isExecutableFile(opts.explicitPath)) throw new Error(`${name}: ${opts.explicitPath} is not an executable file`);
    return opts.explicitPath;
  }
  const onPath = findOnPath(name, opts.searchPath);
  if (onPath !== undefined) return onPath;
  const pins = loadPins();
  const pin = pins[name];
  if (pin === undefined) throw new Error(`unknown server binary "${name}" (expected one of ${SERVER_NAMES.join(", ")})`);
  const target = cachedBinaryPath(name, opts.cacheRoot ?? defaultCacheRoot());
  if (hasStamp(target, pin)) return target;
  await withLock(`${target}.lock`, log, name, async () => {
    // Another process may have finished while we waited for the lock.
    if (hasStamp(target, pin)) return;
    if (isExecutableFile(target)) {
      if (passesCheck(target, pin)) {
        writeStamp(target, pin);
        return;
      }
      log(`${target} does not run (${pin.check.join(" ")} failed); rebuilding`);
      await fsp.rm(target, { force: true });
    }
    await build(name, pin, target, log, opts.goBinary);
    if (!passesCheck(target, pin)) throw new Error(`${name}: freshly built ${target} fails \`${pin.check.join(" ")}\``);
    writeStamp(target, pin);
  });
  return target;
}

/** mongod from PATH when present (a real MongoDB), else the FerretDB build (`explicitPath` = a FerretDB binary). */
export async function ensureMongoBinary(opts = {}) {
  if (opts.explicitPath !== undefined) return { kind: "ferretdb", path: await ensureServerBinary("ferretdb", opts) };
  const mongod = findOnPath("mongod", opts.searchPath);
  if (mongod !== undefined) return { kind: "mongod", path: mongod };
  return { kind: "ferretdb", path: await ensureServerBinary("ferretdb", opts) };
}

// The stamp records that this exact pin was built and ran once, so later lookups skip running the binary.
function stampPath(target) {
  return path.join(path.dirname(target), ".verified");
}

function stampText(pin) {
  return `${pin.module}@${pin.version} ${JSON.stringify(pin.files)}\n`;
}

function hasStamp(target, pin) {
  try {
    return isExecutableFile(target) && fs.readFileSync(stampPath(target), "utf8") === stampText(pin);
  } catch {
    return false;
  }
}

function writeStamp(target, pin) {
  fs.writeFileSync(stampPath(target), stampText(pin));
}

function passesCheck(target, pin) {
  const r = spawnSync(target, pin.check, { stdio: "ignore", timeout: CHECK_TIMEOUT_MS });
  return r.status === 0;
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

async function lockIsStale(lockFile) {
  let st;
  let text;
  try {
    st = await fsp.stat(lockFile);
    text = await fsp.readFile(lockFile, "utf8");
  } catch {
    return false; // gone already: the next open attempt decides
  }
  if (Date.now() - st.mtimeMs > STALE_LOCK_MS) return true;
  try {
    const owner = JSON.parse(text);
    return owner.host === os.hostname() && typeof owner.pid === "number" && !pidAlive(owner.pid);
  } catch {
    // Written but not yet filled in by its owner: only age makes it stale.
    return Date.now() - st.mtimeMs > 60_000;
  }
}

async function withLock(lockFile, log, name, fn) {
  await fsp.mkdir(path.dirname(lockFile), { recursive: true });
  let announced = false;
  for (;;) {
    let handle;
    try {
      handle = await fsp.open(lockFile, "wx");
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
      if (await lockIsStale(lockFile)) {
        log(`removing stale lock ${lockFile}`);
        await fsp.rm(lockFile, { force: true });
        continue;
      }
      if (!announced) {
        log(`waiting for another process to finish building ${name} (${lockFile})`);
        announced = true;
      }
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
      continue;
    }
    try {
      await handle.writeFile(JSON.stringify({ pid: process.pid, host: os.hostname(), started: new Date().toISOString() }));
      await handle.close();
      return await fn();
    } finally {
      await fsp.rm(lockFile, { force: true });
    }
  }
}

function run(cmd, args, opts, log, prefix) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const forward = (chunk) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      for (const line of text.split("\n")) if (line.trim() !== "") log(`${prefix}: ${line}`);
    };
    const out = [];
    child.stdout.on("data", (c) => out.push(c));
    child.stderr.on("data", forward);
    child.on("error", (err) =>
      reject(err.code === "ENOENT" ? new Error(`${cmd} not found: Go is needed to build ${prefix}`) : err),
    );
    child.on("close", (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new Error(`${cmd} ${args.join(" ")} exited with ${code ?? signal}\n${tail}`));
    });
  });
}

async function makeWritable(dir) {
  await fsp.chmod(dir, 0o755);
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await makeWritable(p);
    else if (entry.isFile()) await fsp.chmod(p, 0o644);
  }
}

async function build(name, pin, target, log, goBinary = findOnPath("go") ?? "go") {
  const dir = path.dirname(target);
  const started = Date.now();
  const spec = `${pin.module}${pin.package === "" ? "" : `/${pin.package}`}@${pin.version}`;
  log(`building ${name} from ${spec} (first run only; this can take several minutes)`);
  // Build into a scratch directory and rename, so an interrupted build never leaves a half-written binary.
  const scratch = await fsp.mkdtemp(path.join(dir, ".build-"));
  const ldflags = "-ldflags=-s -w";
  try {
    if (Object.keys(pin.files).length === 0) {
      await run(goBinary, ["install", "-trimpath", ldflags, spec], { env: { ...process.env, GOBIN: scratch } }, log, name);
    } else {
      // The recipe needs extra files in the module tree: copy the module source out of the read-only
      // module cache, add them, and build there (the module path stays the upstream one).
      const info = JSON.parse(await run(goBinary, ["mod", "download", "-json", `${pin.module}@${pin.version}`], {}, log, name));
      if (typeof info.Dir !== "string") throw new Error(`${name}: go mod download returned no Dir (${info.Error ?? "?"})`);
      const src = path.join(scratch, "src");
      await fsp.cp(info.Dir, src, { recursive: true });
      await makeWritable(src);
      for (const [rel, content] of Object.entries(pin.files)) {
        await fsp.mkdir(path.dirname(path.join(src, rel)), { recursive: true });
        await fsp.writeFile(path.join(src, rel), content);
      }
      const pkg = pin.package === "" ? "." : `./${pin.package}`;
      await run(goBinary, ["build", "-trimpath", "-buildvcs=false", ldflags, "-o", path.join(scratch, name), pkg], { cwd: src }, log, name);
    }
    await fsp.rename(path.join(scratch, name), target);
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true });
  }
  log(`built ${target} in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function main(argv, env) {
  const json = argv.includes("--json");
  let names = argv.filter((a) => a !== "--json");
  if (names.length === 0) {
    names = [];
    if (!env.NATS_URL) names.push("nats-server");
    if (!env.MONGO_URL) names.push("mongo");
    if (!env.S3_ENDPOINT) names.push("minio");
  }
  const opts = { cacheRoot: env.SLUICE_CACHE_DIR || defaultCacheRoot(), searchPath: env.PATH ?? "" };
  const result = {};
  // One at a time: the builds are CPU-heavy and the machine may be shared.
  for (const name of names) {
    if (name === "mongo") {
      const mongo = await ensureMongoBinary(opts);
      result[mongo.kind] = mongo.path;
    } else if (SERVER_NAMES.includes(name)) {
      result[name] = await ensureServerBinary(name, opts);
    } else {
      throw new Error(`unknown server "${name}" (expected ${[...SERVER_NAMES, "mongo"].join(", ")})`);
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else for (const [name, p] of Object.entries(result)) stderrLog(`${name}: ${p}`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2), process.env).catch((err) => {
    process.stderr.write(`[sluice servers] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
