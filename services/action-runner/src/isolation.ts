import { AsyncLocalStorage } from "node:async_hooks";
import { spawn } from "node:child_process";
import { lstat, readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "@sluice/domain";
import { chownTree } from "./workspace.js";
import type { Workspace } from "./workspace.js";

/**
 * How a job's processes are kept apart from the runner and from each other.
 *
 * - `pid-namespace`: every job process starts under `unshare --pid --fork --kill-child
 *   --mount-proc`. The job gets its own PID namespace and its own `/proc`, so the runner (and
 *   every other process on the host) is invisible to it, and when the namespace's first process
 *   ends the kernel kills everything left inside — `setsid`, double forks and `nohup` included.
 * - `process-group`: the fallback where namespaces are not permitted (no root, no
 *   CAP_SYS_ADMIN). The job runs in its own process group, which a timeout or stop kills; a
 *   process that leaves the group with `setsid` survives.
 *
 * With a job uid the job's first process also goes through `setpriv --reuid --regid
 * --clear-groups --no-new-privs`: no capabilities, so it can neither read the runner's
 * `/proc/<pid>/environ` or memory, nor root-only files, nor undo its `/proc` mount, nor regain
 * root through a setuid program.
 */
export type JobIsolationMode = "pid-namespace" | "process-group";

/** What `RUNNER_JOB_ISOLATION` asks for; `auto` takes a PID namespace when the probe succeeds. */
export type JobIsolationSetting = JobIsolationMode | "auto";

/** The sandbox every child process of a job starts in. */
export interface JobSandbox {
  readonly mode: JobIsolationMode;
  /** Job processes run under this uid (and `gid`); undefined: the runner's own. */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
}

/** The prefix that puts a program into a fresh PID namespace with its own `/proc`. */
export const PID_NAMESPACE_ARGV: readonly string[] = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--"];

/** `argv` wrapped for `sandbox`: PID namespace outermost (it needs root), then the uid switch. */
export function sandboxArgv(argv: readonly string[], sandbox: JobSandbox): string[] {
  const prefix: string[] = [];
  if (sandbox.mode === "pid-namespace") prefix.push(...PID_NAMESPACE_ARGV);
  if (sandbox.uid !== undefined) {
    const gid = sandbox.gid ?? sandbox.uid;
    prefix.push("setpriv", "--reuid", String(sandbox.uid), "--regid", String(gid), "--clear-groups", "--no-new-privs", "--");
  }
  return [...prefix, ...argv];
}

/**
 * Runs `argv` and resolves with whether it exited 0 within 10 s. Used once at startup to learn
 * what this host permits; never throws.
 */
function probe(argv: readonly string[]): Promise<{ ok: boolean; detail: string }> {
  const [command, ...args] = argv;
  if (command === undefined) return Promise.resolve({ ok: false, detail: "empty argv" });
  return new Promise((resolve) => {
    let stderr = "";
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" } });
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      if (stderr.length < 2000) stderr += chunk;
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: err.message });
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, detail: code === 0 ? "" : stderr.trim() || `exit ${code ?? signal ?? "?"}` });
    });
  });
}

/** Options of {@link resolveJobSandbox}. */
export interface ResolveJobSandboxOptions {
  readonly isolation: JobIsolationSetting;
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  readonly logger: Logger;
}

/**
 * Decides the sandbox once at startup by trying it. Throws (the runner refuses to start) when
 * `pid-namespace` was required and is not permitted, or when a job uid is configured that this
 * runner cannot switch to: running such jobs as the runner's own user would silently give them
 * the runner's secrets. A job uid needs the PID namespace too, so that no job process outlives
 * the job and races the runner over the files the job leaves behind.
 */
export async function resolveJobSandbox(opts: ResolveJobSandboxOptions): Promise<JobSandbox> {
  const { logger } = opts;
  let mode: JobIsolationMode = "process-group";
  if (opts.isolation !== "process-group") {
    // `$$` is 1 only inside a fresh PID namespace; the new /proc must list no runner.
    const pidns = await probe([...PID_NAMESPACE_ARGV, "sh", "-c", 'test "$$" = 1 && test ! -e /proc/2']);
    if (pidns.ok) {
      mode = "pid-namespace";
    } else if (opts.isolation === "pid-namespace") {
      throw new Error(`RUNNER_JOB_ISOLATION: pid-namespace is not permitted on this host (${pidns.detail})`);
    } else {
      logger.warn("PID namespaces are not permitted here; jobs run in process groups, and a job process that calls setsid can outlive its job", {
        detail: pidns.detail,
      });
    }
  }
  if (opts.uid === undefined) {
    if (process.getuid?.() === 0) {
      logger.warn("jobs run as root: they can read the runner's files and memory; set RUNNER_JOB_UID to run them as another user");
    }
    return { mode };
  }
  if (mode !== "pid-namespace") {
    throw new Error("RUNNER_JOB_UID: running jobs as another user needs a PID namespace (RUNNER_JOB_ISOLATION auto or pid-namespace, as root)");
  }
  const sandbox: JobSandbox = { mode, uid: opts.uid, gid: opts.gid ?? opts.uid };
  const switched = await probe(sandboxArgv(["true"], sandbox));
  if (!switched.ok) {
    throw new Error(`RUNNER_JOB_UID: cannot run jobs as uid ${opts.uid} (${switched.detail})`);
  }
  logger.info("jobs run in their own PID namespace as another user", { uid: sandbox.uid, gid: sandbox.gid });
  return sandbox;
}

interface JobScope {
  readonly sandbox: JobSandbox;
  readonly ws: Workspace;
  /** Set once the workspace belongs to the job's uid; chowned before the job's first process only. */
  owned: boolean;
}

const jobScope = new AsyncLocalStorage<JobScope>();

/**
 * Runs `fn` (a provider) so that every child process it starts with `runProcess` runs in
 * `sandbox`. Carried by AsyncLocalStorage rather than by the providers, so no provider can
 * start a job process outside the sandbox by forgetting an option.
 */
export function runInJobSandbox<T>(sandbox: JobSandbox, ws: Workspace, fn: () => Promise<T>): Promise<T> {
  return jobScope.run({ sandbox, ws, owned: false }, fn);
}

/** The hooks `runProcess` calls around a job's child process; undefined outside a job. */
export interface SpawnGuard {
  readonly argv: readonly string[];
  /** Called after the process (and, in a PID namespace, everything it started) has ended. */
  after(): Promise<void>;
}

/**
 * Prepares one child process of the current job: hands the workspace to the job's uid before
 * the job's first process (no job code has run yet, so nothing in the tree can be a trap), and
 * returns the wrapped argv. Outside {@link runInJobSandbox} returns undefined.
 */
export async function guardJobSpawn(argv: readonly string[]): Promise<SpawnGuard | undefined> {
  const scope = jobScope.getStore();
  if (scope === undefined) return undefined;
  const { sandbox, ws } = scope;
  const { uid } = sandbox;
  if (uid !== undefined && !scope.owned) {
    await chownTree(ws.root, uid, sandbox.gid ?? uid);
    scope.owned = true;
  }
  return {
    argv: sandboxArgv(argv, sandbox),
    after: () => (uid === undefined ? Promise.resolve() : disarmRunDir(ws.run)),
  };
}

/**
 * The runner reads files the job wrote into `run/` (the final environment) with root's rights.
 * A job running as another user could leave a symlink or a hard link there pointing at a file
 * only root may read; every job process is dead by now (PID namespace), so removing anything
 * that is not a plain, singly linked file cannot be raced.
 */
async function disarmRunDir(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    const st = await lstat(file).catch(() => undefined);
    if (st !== undefined && (!st.isFile() || st.nlink > 1)) await rm(file, { recursive: true, force: true });
  }
}
