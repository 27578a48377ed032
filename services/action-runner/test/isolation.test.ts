// Jobs against their sandbox: processes that try to outlive the job (setsid, double fork, nohup),
// a job running as another user that goes after root's files, and the per-job HOME and TMPDIR.
import { chmod, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { noopLogger } from "@sluice/domain";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveJobSandbox } from "../src/isolation.js";
import type { JobSandbox } from "../src/isolation.js";
import { createJobRunner } from "../src/job-runner.js";
import { createProviderTable } from "../src/providers/table.js";
import { chownTree } from "../src/workspace.js";
import { pathToFileURL } from "node:url";
import { BASE_ENV, commitAll, git, makeJob, tempDir } from "./helpers.js";

const NOBODY = 65534;

/** Host pids whose command line contains `marker` (zombies have an empty one). */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(marker)) found.push(Number(name));
  }
  return found;
}

/**
 * Commands that start three processes trying to escape the job — a `setsid` one, a double fork
 * and `nohup setsid` — each carrying `$MARK` in its command line, wait until all three are
 * visible, then record that in `$SEEN`. The shell counts with `case`, so no helper process
 * carries the marker itself.
 */
const ESCAPEES = [
  `setsid sh -c "sleep 1000; : $MARK" </dev/null >/dev/null 2>&1 &`,
  `( sh -c "sleep 1001; : $MARK" </dev/null >/dev/null 2>&1 & ) &`,
  `nohup setsid sh -c "sleep 1002; : $MARK" </dev/null >/dev/null 2>&1 &`,
  `until n=0; for f in /proc/[0-9]*/cmdline; do case "$(tr '\\0' ' ' < "$f" 2>/dev/null)" in *"$MARK"*) n=$((n+1));; esac; done; [ "$n" -ge 3 ]; do sleep 0.1; done`,
  `echo "$n" > "$SEEN"`,
];

describe("job isolation", () => {
  let root: { dir: string; remove: () => Promise<void> };
  let workspaces: string;
  let pidNamespace: JobSandbox;
  let asNobody: JobSandbox;

  beforeAll(async () => {
    root = await tempDir("sluice-isolation-test-");
    workspaces = path.join(root.dir, "workspaces");
    await mkdir(workspaces);
    // Job users must be able to reach their workspace (WORKSPACE_ROOT defaults to /tmp).
    await chmod(root.dir, 0o711);
    await chmod(workspaces, 0o711);
    pidNamespace = await resolveJobSandbox({ isolation: "pid-namespace", logger: noopLogger });
    asNobody = await resolveJobSandbox({ isolation: "pid-namespace", uid: NOBODY, logger: noopLogger });
  });
  afterAll(async () => {
    await root.remove();
  });

  const runner = (sandbox: JobSandbox) =>
    createJobRunner({
      logger: noopLogger,
      runnerId: "isolation-test",
      workspaceRoot: workspaces,
      providers: createProviderTable({}),
      commitArtifact: () => Promise.resolve(),
      baseEnv: BASE_ENV,
      sandbox,
    });

  /** A job running {@link ESCAPEES} then `tail`, with a unique marker and SEEN file. */
  function escapeJob(name: string, tail: string[], init: Parameters<typeof makeJob>[0] = {}) {
    const mark = `sluice-escapee-${name}-${Math.random().toString(36).slice(2)}`;
    const seen = path.join(root.dir, `${name}.seen`);
    const job = makeJob({
      commands: [...ESCAPEES, ...tail],
      environmentVariables: [
        { name: "MARK", value: mark, type: "PLAINTEXT" },
        { name: "SEEN", value: seen, type: "PLAINTEXT" },
      ],
      ...init,
    });
    return { job, mark, seen };
  }

  it("kills setsid, double-forked and nohup processes when the job times out", async () => {
    const { job, mark, seen } = escapeJob("timeout", ["sleep 100"], { deadline: timestampFromDate(new Date(Date.now() + 4000)) });
    const result = await runner(pidNamespace).run(job, new AbortController().signal);
    expect(result.errorDetails?.code).toBe("JobTimedOut");
    // The three escapees were running before the deadline …
    expect(await readFile(seen, "utf8")).toBe("3\n");
    // … and none is left once the run is over.
    expect(await processesWith(mark)).toEqual([]);
  });

  it("kills them when the orchestrator cancels the job", async () => {
    const { job, mark, seen } = escapeJob("cancel", ["sleep 100"]);
    const cancel = new AbortController();
    const running = runner(pidNamespace).run(job, new AbortController().signal, cancel.signal);
    await expect.poll(() => readFile(seen, "utf8").catch(() => ""), { timeout: 20_000 }).toBe("3\n");
    expect((await processesWith(mark)).length).toBe(3);
    cancel.abort(new Error("execution abandoned"));
    const result = await running;
    expect(result.errorDetails?.code).toBe("JobCancelled");
    expect(await processesWith(mark)).toEqual([]);
  });

  it("kills them when the job ends on its own", async () => {
    const { job, mark, seen } = escapeJob("end", ["echo finished"]);
    const result = await runner(pidNamespace).run(job, new AbortController().signal);
    expect(result.status).toBe("Succeeded");
    expect(await readFile(seen, "utf8")).toBe("3\n");
    expect(await processesWith(mark)).toEqual([]);
  });

  it("hides the runner: the job's /proc lists only its own processes", async () => {
    const job = makeJob({
      commands: ['PIDS="$(ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " ")"', 'PARENT="$PPID"', 'ME="$$"'],
      outputVariables: ["PIDS", "PARENT", "ME"],
    });
    const result = await runner(pidNamespace).run(job, new AbortController().signal);
    expect(result.status).toBe("Succeeded");
    // The job's shell is the namespace's init; its parent (the runner's unshare) is outside.
    expect(result.outputVariables).toMatchObject({ ME: "1", PARENT: "0" });
    expect(result.outputVariables["PIDS"]?.split(" ").filter((p) => p !== "").map(Number).every((pid) => pid < 20)).toBe(true);
    expect(result.outputVariables["PIDS"]).not.toContain(String(process.pid));
  });

  it("gives every job its own HOME and TMPDIR inside its workspace, removed afterwards", async () => {
    const job = makeJob({
      commands: ['echo x > "$HOME/.netrc"', 'echo y > "$TMPDIR/scratch"', 'H="$HOME"', 'T="$TMPDIR"', 'W="$SLUICE_WORKSPACE"'],
      outputVariables: ["H", "T", "W"],
    });
    const result = await runner(pidNamespace).run(job, new AbortController().signal);
    expect(result.status).toBe("Succeeded");
    const { H: home = "", T: tmp = "", W: src = "" } = result.outputVariables;
    const jobRoot = path.dirname(src);
    expect(path.dirname(jobRoot)).toBe(workspaces);
    expect([home, tmp]).toEqual([path.join(jobRoot, "home"), path.join(jobRoot, "tmp")]);
    expect(home).not.toBe(process.env["HOME"]);
    expect(await readdir(workspaces)).not.toContain(path.basename(jobRoot));
  });

  it("runs the Git source as the job's user too, into a workspace it owns", async () => {
    const repo = path.join(root.dir, "repo");
    await mkdir(repo);
    git(repo, ["init", "-q", "-b", "trunk"]);
    await writeFile(path.join(repo, "README.md"), "hello\n");
    const commit = commitAll(repo, "Initial import", "2024-05-01T12:00:00Z", "2024-05-01T12:05:00Z");
    // Git refuses a local repository owned by another user ("dubious ownership"): a file:// source
    // for jobs running as NOBODY must belong to NOBODY. Remote repositories are not affected.
    await chownTree(repo, NOBODY, NOBODY);
    const job = makeJob({
      actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
      configuration: { RepositoryUrl: pathToFileURL(repo).href, BranchName: "trunk" },
    });
    const result = await runner(asNobody).run(job, new AbortController().signal);
    expect(result.status, result.errorDetails?.message).toBe("Succeeded");
    expect(result.outputVariables["CommitId"]).toBe(commit);
  });

  it("runs a job as another user that can read no root-only file, not even through the runner", async () => {
    const secretFile = path.join(root.dir, "runner.env");
    await writeFile(secretFile, "LEAK=runner-secret-canary\0", { mode: 0o600 });
    const job = makeJob({
      commands: [
        'WHO="$(id -u):$(id -g)"',
        `READ="$(cat ${secretFile} 2>/dev/null || echo denied)"`,
        'UNMOUNT="$(umount /proc 2>/dev/null && echo unmounted || echo refused)"',
        'echo ok > "$SLUICE_WORKSPACE/written"',
        'OWN="$(stat -c %u "$SLUICE_WORKSPACE/written")"',
        // The runner reads the final environment from this file as root after the job: point it
        // at the root-only file and ask for LEAK as an output variable.
        `ln -sf ${secretFile} "$SLUICE_ENV_FILE"`,
      ],
      outputVariables: ["WHO", "READ", "UNMOUNT", "OWN", "LEAK"],
    });
    const result = await runner(asNobody).run(job, new AbortController().signal);
    expect(result.status).toBe("Succeeded");
    // Redirected final environment: removed before the runner reads it, so no variable at all.
    expect(result.outputVariables).toEqual({});
    expect(JSON.stringify(result, (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value))).not.toContain("runner-secret-canary");

    // Without the redirect, the job's own findings come back.
    const probe = makeJob({ commands: job.commands.slice(0, 5), outputVariables: ["WHO", "READ", "UNMOUNT", "OWN"] });
    const seen = await runner(asNobody).run(probe, new AbortController().signal);
    expect(seen.status).toBe("Succeeded");
    expect(seen.outputVariables).toEqual({ WHO: `${NOBODY}:${NOBODY}`, READ: "denied", UNMOUNT: "refused", OWN: String(NOBODY) });
  });
});
