import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { guardJobSpawn } from "./isolation.js";

/**
 * Child processes of a job. Every process runs in its own process group
 * (`detached: true`), so a timeout or shutdown kills the whole tree the job started —
 * background jobs (`sleep 100 &`) included — with one `kill(-pgid)`. Arguments are
 * argv arrays: nothing here ever goes through a shell's parser except the
 * user's own script file handed to `bash`.
 *
 * Inside a job (see `runInJobSandbox`) every process is also started in the job's sandbox: its
 * own PID namespace, where killing the namespace's first process kills everything the job
 * started (setsid included), and optionally another uid.
 */

/** Options of {@link runProcess}. */
export interface RunProcessOptions {
  readonly cwd: string;
  /** The complete environment of the child (nothing is inherited from the runner). */
  readonly env: Readonly<Record<string, string>>;
  /** Aborting kills the process group: SIGTERM, then SIGKILL after `killGraceMs`. */
  readonly signal: AbortSignal;
  /** Called for every output line (without the newline), already split and length-capped. */
  readonly onLine?: (stream: "stdout" | "stderr", line: string) => void;
  /** Time between SIGTERM and SIGKILL when aborted (default 2000 ms). */
  readonly killGraceMs?: number;
  /** Also collect stdout verbatim into `ProcessOutcome.stdout` (capped at {@link MAX_CAPTURE_CHARS}). */
  readonly captureStdout?: boolean;
}

/** How a child process ended. */
export interface ProcessOutcome {
  /** Exit code, or null when the process was ended by a signal. */
  readonly exitCode: number | null;
  readonly exitSignal: NodeJS.Signals | null;
  /** True when the run was cut short by `signal`. */
  readonly aborted: boolean;
  /** The collected stdout when `captureStdout` was set, else "". */
  readonly stdout: string;
}

/** Most stdout characters kept by `captureStdout`. */
const MAX_CAPTURE_CHARS = 1024 * 1024;

/** Longest line passed to `onLine`; longer output is split so one huge line cannot exhaust memory. */
const MAX_LINE_CHARS = 8192;

/**
 * Runs `argv[0]` with `argv.slice(1)` in its own process group and waits for it to exit.
 * After the exit the whole group is killed as well, so processes the job left behind in
 * the background do not outlive it. Rejects only when the program cannot be started.
 */
export async function runProcess(argv: readonly string[], opts: RunProcessOptions): Promise<ProcessOutcome> {
  if (argv[0] === undefined) throw new Error("argv: must name a program");
  const guard = await guardJobSpawn(argv);
  if (guard === undefined) return spawnAndWait(argv, opts);
  try {
    return await spawnAndWait(guard.argv, opts);
  } finally {
    await guard.after();
  }
}

function spawnAndWait(argv: readonly string[], opts: RunProcessOptions): Promise<ProcessOutcome> {
  const [command, ...args] = argv;
  if (command === undefined) {
    return Promise.reject(new Error("argv: must name a program"));
  }
  return new Promise<ProcessOutcome>((resolve, reject) => {
    if (opts.signal.aborted) {
      resolve({ exitCode: null, exitSignal: null, aborted: true, stdout: "" });
      return;
    }
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...opts.env },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stdout = lineSplitter((line) => opts.onLine?.("stdout", line));
    const stderr = lineSplitter((line) => opts.onLine?.("stderr", line));
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    let captured = "";
    child.stdout.on("data", (chunk: string) => {
      if (opts.captureStdout === true && captured.length < MAX_CAPTURE_CHARS) {
        captured += chunk.slice(0, MAX_CAPTURE_CHARS - captured.length);
      }
      stdout.push(chunk);
    });
    child.stderr.on("data", (chunk: string) => stderr.push(chunk));

    const onAbort = (): void => {
      aborted = true;
      killGroup(child.pid, "SIGTERM");
      killTimer = setTimeout(() => killGroup(child.pid, "SIGKILL"), opts.killGraceMs ?? 2000);
      killTimer.unref();
    };
    opts.signal.addEventListener("abort", onAbort, { once: true });

    child.once("error", (err) => {
      opts.signal.removeEventListener("abort", onAbort);
      if (killTimer !== undefined) clearTimeout(killTimer);
      reject(err);
    });
    // "exit" rather than "close": a grandchild that escaped the group could hold the pipes
    // open forever. The group is killed right away, then the pipes get a moment to drain.
    child.once("exit", (code, sig) => {
      opts.signal.removeEventListener("abort", onAbort);
      if (killTimer !== undefined) clearTimeout(killTimer);
      killGroup(child.pid, "SIGKILL");
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        stdout.flush();
        stderr.flush();
        child.stdout.destroy();
        child.stderr.destroy();
        resolve({ exitCode: code, exitSignal: sig, aborted, stdout: captured });
      };
      const drained = Promise.all([streamClosed(child.stdout), streamClosed(child.stderr)]);
      const timer = setTimeout(finish, 1000);
      timer.unref();
      void drained.then(() => {
        clearTimeout(timer);
        finish();
      });
    });
  });
}

/**
 * Sends `sig` to the process group led by `pid`. Never throws: a group that is already gone
 * (ESRCH) is the normal case after an exit, and this runs inside event handlers where a
 * throw would crash the runner.
 */
function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone, or not ours to signal: nothing left to do either way.
  }
}

/**
 * True while `pid` is a live process. A zombie (exited, not yet reaped by its parent —
 * common for orphans in containers whose init does not reap) counts as dead.
 */
export async function isProcessAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Field 3 (after the parenthesised command name) is the state letter.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    // No procfs (or the process vanished between the two checks): trust kill(0).
    return true;
  }
}

function streamClosed(stream: NodeJS.ReadableStream & { closed?: boolean }): Promise<void> {
  if (stream.closed === true) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once("close", () => resolve());
  });
}

interface LineSplitter {
  push(chunk: string): void;
  flush(): void;
}

function lineSplitter(emit: (line: string) => void): LineSplitter {
  let buffer = "";
  return {
    push(chunk) {
      buffer += chunk;
      let newline = buffer.indexOf("\n");
      while (newline !== -1) {
        emitCapped(buffer.slice(0, newline).replace(/\r$/, ""));
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf("\n");
      }
      while (buffer.length > MAX_LINE_CHARS) {
        emit(buffer.slice(0, MAX_LINE_CHARS));
        buffer = buffer.slice(MAX_LINE_CHARS);
      }
    },
    flush() {
      if (buffer !== "") emitCapped(buffer);
      buffer = "";
    },
  };
  function emitCapped(line: string): void {
    for (let i = 0; i < line.length || i === 0; i += MAX_LINE_CHARS) {
      emit(line.slice(i, i + MAX_LINE_CHARS));
    }
  }
}
