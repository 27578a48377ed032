import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync, type WriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** How long `stop()` waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5_000;

// Every child still running. A synchronous 'exit' hook kills them so a test run that ends abruptly
// (uncaught error, process.exit) does not leave servers holding ports and temp dirs.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Reserves a free loopback TCP port for a server started later in another process. The port is
 * drawn at random BELOW the kernel's ephemeral range: a port that `listen(0)` (the in-process
 * services of other tests) or an outgoing connection could be handed in the moment between this
 * check and the child's bind would make the child fail with EADDRINUSE, or worse, let a health
 * check reach some other test's server on that port.
 */
export async function freePort(): Promise<number> {
  const [low, high] = reservablePorts();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (await canBind(port)) return port;
  }
  throw new Error(`no free loopback port found in ${low}-${high}`);
}

/** Ports [low, high] outside the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range). */
function reservablePorts(): [number, number] {
  let ephemeralLow = 32_768;
  try {
    const [first] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    if (first !== undefined && Number.isInteger(Number(first))) ephemeralLow = Number(first);
  } catch {
    // No procfs: Linux's default range.
  }
  const high = Math.max(ephemeralLow - 1, 10_024);
  return [Math.max(10_000, high - 15_000), high];
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** A fresh temp directory named after its purpose. */
export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `sluice-${prefix}-`));
}

/** A spawned child whose output is kept (tail) and/or written to a log file. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** Settles with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** The last few KiB of stdout+stderr, for error messages. */
  outputTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@link launch}. */
export interface LaunchOptions {
  env: Record<string, string>;
  cwd?: string;
  /** Append stdout+stderr to this file as well. */
  logFile?: string;
}

const TAIL_BYTES = 8 * 1024;

/** Spawns `bin args`, tracking it so it dies with this process. */
export function launch(name: string, bin: string, args: readonly string[], opts: LaunchOptions): ManagedProcess {
  installExitHook();
  const child = spawn(bin, args, {
    env: opts.env,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    stdio: ["ignore", "pipe", "pipe"],
    detached: false,
  });
  live.add(child);
  let tail = "";
  let log: WriteStream | undefined;
  if (opts.logFile !== undefined) log = createWriteStream(opts.logFile, { flags: "a" });
  const onData = (chunk: Buffer): void => {
    tail = (tail + chunk.toString("utf8")).slice(-TAIL_BYTES);
    log?.write(chunk);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let exitedFlag = false;
  const exited = new Promise<number | string>((resolve) => {
    // 'close' (not 'exit') so the last output is captured before anyone reads the tail.
    child.on("close", (code, signal) => {
      exitedFlag = true;
      live.delete(child);
      log?.end();
      resolve(code ?? signal ?? "unknown");
    });
    child.on("error", (err) => {
      tail += `\nspawn error: ${err.message}`;
      if (child.pid === undefined) {
        exitedFlag = true;
        live.delete(child);
        log?.end();
        resolve("spawn-error");
      }
    });
  });
  let stopping: Promise<void> | undefined;
  return {
    name,
    pid: child.pid,
    exited,
    hasExited: () => exitedFlag,
    outputTail: () => tail,
    stop(graceMs = STOP_GRACE_MS) {
      stopping ??= (async () => {
        if (exitedFlag) return;
        child.kill("SIGTERM");
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), graceMs);
        });
        const outcome = await Promise.race([exited, deadline]);
        clearTimeout(timer);
        if (outcome === "timeout") {
          child.kill("SIGKILL");
          await exited;
        }
      })();
      return stopping;
    },
  };
}

/**
 * Polls `probe` until it returns true, failing early when `proc` exits and after `timeoutMs`.
 * Probe errors count as "not yet".
 */
export async function waitUntilReady(
  proc: ManagedProcess,
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  for (let delay = 25; ; delay = Math.min(delay * 2, 250)) {
    if (proc.hasExited()) {
      throw new Error(`${what} exited before becoming ready (${String(await proc.exited)}):\n${proc.outputTail()}`);
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not ready after ${timeoutMs} ms${lastError ? ` (${lastError})` : ""}:\n${proc.outputTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** Removes a temp dir, tolerating one that is already gone. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
