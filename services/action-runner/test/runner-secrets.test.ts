// A Commands job hunting for its runner's credentials. The runner is a real process started as in
// production (`node dist/main.js`: build first), with its token in its real environment or in a
// file; the job arrives through a real nats-server and reports what it found as output variables.
// Not from source through tsx: tsx starts an esbuild service process while loading main.ts, before
// the runner scrubs its environment, and that child keeps a copy of the runner's variables.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { connectBus } from "@sluice/bus";
import type { Bus, Consumer } from "@sluice/bus";
import { noopLogger } from "@sluice/domain";
import { JobResultSchema, JobSchema } from "@sluice/proto";
import type { JobResult } from "@sluice/proto";
import type {} from "@sluice/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { makeJob, tempDir } from "./helpers.js";

const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");
const NOBODY = "65534";

/**
 * The attack. `NEEDLE` (the runner's canary) and `OWN` (a canary of the job's own environment,
 * the positive control) are joined from halves inside the shell, never exported, so no process's
 * environment or command line holds them whole except where they really are. Matching is done
 * with `case`, so no helper process carries a needle in its argv either.
 */
const ATTACK = [
  'NEEDLE="${NEEDLE_A}${NEEDLE_B}"; OWN="${OWN_A}${OWN_B}"',
  'FOUND=""; OWN_FOUND=0; READABLE=0',
  'scan() { for f in "$@"; do c="$(tr "\\0" " " < "$f" 2>/dev/null)" || continue; READABLE=$((READABLE+1)); case "$c" in *"$NEEDLE"*) FOUND="$FOUND $f[$(tr "\\0" " " < "${f%/*}/cmdline" 2>/dev/null | cut -c1-100)]";; esac; case "$c" in *"$OWN"*) OWN_FOUND=$((OWN_FOUND+1));; esac; done; }',
  'scan "/proc/$PPID/environ" "/proc/$PPID/cmdline" /proc/[0-9]*/environ /proc/[0-9]*/cmdline',
  // The runner's configuration files: the token file and everything next to it.
  'scan $(find "$CONFIG_DIR" -type f 2>/dev/null)',
  // The job's own environment must not hold it either.
  'case "$(env)" in *"$NEEDLE"*) FOUND="$FOUND env";; esac',
  // Root may take the namespace's /proc away to reach the host's; anyone else is refused.
  'if umount /proc 2>/dev/null; then UNMOUNTED=yes; scan /proc/[0-9]*/environ /proc/[0-9]*/cmdline; else UNMOUNTED=no; fi',
  'FOUND="${FOUND# }"; : "${FOUND:=none}"',
];

interface RunnerProcess {
  readonly proc: ChildProcess;
  output(): string;
}

describe("runner secrets out of a job's reach", () => {
  const { natsUrl } = inject("servers");
  const prefix = `arsec${Date.now().toString(36)}`;
  let root: { dir: string; remove: () => Promise<void> };
  let bus: Bus;
  let resultsConsumer: Consumer;
  const results: JobResult[] = [];
  const runners: RunnerProcess[] = [];

  beforeAll(async () => {
    root = await tempDir("sluice-runner-secrets-");
    await chmod(root.dir, 0o711);
    bus = await connectBus({ servers: natsUrl, name: "runner-secrets-test", logger: noopLogger, prefix });
    await bus.ensureStreams();
    resultsConsumer = await bus.consume({
      stream: bus.streams.results,
      durable: "runner-secrets-test-results",
      filterSubject: bus.subjects.streamFilter("results"),
      schema: JobResultSchema,
      handler: (result) => {
        // Started reports (status InProgress) say a runner took a delivery; these tests count outcomes.
        if (result.status === "InProgress") return Promise.resolve();
        results.push(result);
        return Promise.resolve();
      },
    });
  });

  afterAll(async () => {
    for (const r of runners) {
      if (r.proc.exitCode === null) {
        const exited = new Promise((resolve) => r.proc.once("exit", resolve));
        r.proc.kill("SIGTERM");
        await exited;
      }
    }
    await resultsConsumer?.stop();
    await bus?.close();
    await root?.remove();
  });

  /** Starts `node dist/main.js` with `env` and waits until it says it started. */
  async function startRunner(pool: string, env: Record<string, string>): Promise<RunnerProcess> {
    let output = "";
    const proc = spawn(process.execPath, ["services/action-runner/dist/main.js"], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        NATS_URL: natsUrl,
        SLUICE_BUS_PREFIX: prefix,
        ARTIFACT_ADDR: "127.0.0.1:1",
        RUNNER_ID: `secrets-${pool}`,
        RUNNER_POOLS: pool,
        WORKSPACE_ROOT: path.join(root.dir, `ws-${pool}`),
        LOG_LEVEL: "info",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const runner = { proc, output: () => output };
    runners.push(runner);
    await expect
      .poll(
        () => {
          if (proc.exitCode !== null) throw new Error(`runner exited:\n${output}`);
          return output.includes("action-runner started");
        },
        { timeout: 60_000, interval: 100 },
      )
      .toBe(true);
    await mkdir(path.join(root.dir, `ws-${pool}`), { recursive: true });
    await chmod(path.join(root.dir, `ws-${pool}`), 0o711);
    return runner;
  }

  /** Runs the attack as a Commands job in `pool`; resolves with its findings. */
  async function attack(pool: string, needle: string, configDir: string): Promise<Record<string, string>> {
    const own = `own-${randomBytes(8).toString("hex")}`;
    const half = (s: string) => [s.slice(0, 6), s.slice(6)] as const;
    const [needleA, needleB] = half(needle);
    const [ownA, ownB] = half(own);
    const job = makeJob({
      pipelineName: "secrets",
      commands: ATTACK,
      outputVariables: ["FOUND", "OWN_FOUND", "READABLE", "UNMOUNTED"],
      environmentVariables: [
        { name: "NEEDLE_A", value: needleA, type: "PLAINTEXT" },
        { name: "NEEDLE_B", value: needleB, type: "PLAINTEXT" },
        { name: "OWN_A", value: ownA, type: "PLAINTEXT" },
        { name: "OWN_B", value: ownB, type: "PLAINTEXT" },
        // Exported whole: the job's own /proc/self/environ must be found by the scan.
        { name: "OWN_WHOLE", value: own, type: "PLAINTEXT" },
        { name: "CONFIG_DIR", value: configDir, type: "PLAINTEXT" },
      ],
    });
    await bus.publish(bus.subjects.jobSubject(pool, "Build", "Commands"), JobSchema, job, { msgId: job.jobId });
    await expect.poll(() => results.find((r) => r.jobId === job.jobId)?.status, { timeout: 60_000 }).toBeDefined();
    const result = results.find((r) => r.jobId === job.jobId);
    expect(result?.status, result?.summary).toBe("Succeeded");
    return { ...result?.outputVariables };
  }

  /** The canary must not be in the runner's /proc/<pid>/environ as the host sees it either. */
  async function hostEnviron(runner: RunnerProcess): Promise<string> {
    return (await readFile(`/proc/${runner.proc.pid}/environ`, "utf8")).replaceAll("\0", "\n");
  }

  it("root job, PID namespace: token in the runner's environment is neither visible nor left in its environ", async () => {
    const token = `tok-${randomBytes(16).toString("hex")}`;
    const extra = `key-${randomBytes(12).toString("hex")}`;
    const configDir = path.join(root.dir, "conf-a");
    await mkdir(configDir);
    const runner = await startRunner("seca", { SLUICE_SERVICE_TOKEN: token, DEPLOY_API_KEY: extra });
    expect(runner.output()).toContain('"mode":"pid-namespace"');
    for (const needle of [token, extra]) {
      const found = await attack("seca", needle, configDir);
      // The scan worked (it found the job's own canary) and saw the host's /proc after umount …
      expect(Number(found["OWN_FOUND"])).toBeGreaterThan(0);
      expect(found["UNMOUNTED"]).toBe("yes");
      expect(Number(found["READABLE"])).toBeGreaterThan(10);
      // … and found no credential anywhere.
      expect(found["FOUND"]).toBe("none");
    }
    const environ = await hostEnviron(runner);
    expect(environ).not.toContain(token);
    expect(environ).not.toContain(extra);
    expect(environ).toContain(`SLUICE_SERVICE_TOKEN=${"*".repeat(token.length)}`);
  });

  it("root job, process groups: /proc/$PPID/environ is the runner's own, and holds no secret", async () => {
    const token = `tok-${randomBytes(16).toString("hex")}`;
    const configDir = path.join(root.dir, "conf-b");
    await mkdir(configDir);
    await startRunner("secb", { SLUICE_SERVICE_TOKEN: token, RUNNER_JOB_ISOLATION: "process-group" });
    const found = await attack("secb", token, configDir);
    expect(Number(found["OWN_FOUND"])).toBeGreaterThan(0);
    expect(Number(found["READABLE"])).toBeGreaterThan(10);
    expect(found["FOUND"]).toBe("none");
  });

  it("job as another user: token file, runner environ and host /proc all out of reach", async () => {
    const token = `tok-${randomBytes(16).toString("hex")}`;
    const configDir = path.join(root.dir, "conf-c");
    await mkdir(configDir, { mode: 0o755 });
    const tokenFile = path.join(configDir, "runner-token");
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    const runner = await startRunner("secc", { SLUICE_SERVICE_TOKEN_FILE: tokenFile, RUNNER_JOB_UID: NOBODY });
    expect(runner.output()).toContain(`"uid":${NOBODY}`);
    const found = await attack("secc", token, configDir);
    expect(Number(found["OWN_FOUND"])).toBeGreaterThan(0);
    expect(found["UNMOUNTED"]).toBe("no");
    expect(found["FOUND"]).toBe("none");
    expect(await hostEnviron(runner)).not.toContain(token);
  });
});
