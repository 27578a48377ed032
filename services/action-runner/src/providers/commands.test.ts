import { readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { MAX_SUMMARY_CHARS, resolveScript } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeJob, providerContext, tempDir } from "../../test/helpers.js";
import { isProcessAlive } from "../process.js";
import { commandsProvider } from "./commands.js";
import { JobFailure } from "./provider.js";

describe("Commands provider", () => {
  let root: { dir: string; remove: () => Promise<void> };

  beforeAll(async () => {
    root = await tempDir("sluice-commands-test-");
  });
  afterAll(async () => {
    await root.remove();
  });

  async function run(init: Parameters<typeof makeJob>[0], opts: { signal?: AbortSignal; logger?: Logger } = {}) {
    const { ctx, ws } = await providerContext(makeJob(init), { root: root.dir, ...opts });
    const withLogger = opts.logger === undefined ? ctx : { ...ctx, logger: opts.logger };
    try {
      const outcome = await commandsProvider(withLogger).catch((err: unknown) => err);
      return { outcome, files: (await readdir(ws.src)).sort() };
    } finally {
      await ws.remove();
    }
  }

  it("runs the commands in the workspace as one script and succeeds on exit code 0", async () => {
    const { outcome, files } = await run({
      commands: ["mkdir -p dist", 'echo "built" > dist/out.txt', "cd dist", "test -f out.txt", 'X=1; [ "$X" = 1 ]'],
      outputs: [{ name: "BuildOutput", artifactId: "a/BuildOutput" }],
      outputArtifacts: [{ name: "BuildOutput", files: ["dist/**"] }],
    });
    expect(outcome).not.toBeInstanceOf(Error);
    const ok = outcome as Awaited<ReturnType<typeof commandsProvider>>;
    expect(ok.summary).toContain("succeeded");
    expect(ok.outputs).toHaveLength(1);
    expect(ok.outputs[0]?.name).toBe("BuildOutput");
    expect(ok.outputs[0]?.patterns).toEqual(["dist/**"]);
    expect(files).toEqual(["dist"]);
  });

  it("stops at the first failing command and fails with the exit code and the last output lines", async () => {
    const { outcome } = await run({
      commands: ["echo step-one", "echo to-stderr >&2", "exit 7", "echo never-printed"],
    });
    expect(outcome).toBeInstanceOf(JobFailure);
    const failure = outcome as JobFailure;
    expect(failure.code).toBe("JobFailed");
    expect(failure.message).toBe("Commands failed with exit code 7: to-stderr");
    expect(failure.summary).toContain("step-one");
    expect(failure.summary).toContain("to-stderr");
    expect(failure.summary).not.toContain("never-printed");
  });

  it("fails a pipeline whose first stage fails (pipefail), like CodeBuild", async () => {
    const { outcome } = await run({ commands: ["false | cat", "echo after"] });
    expect(outcome).toBeInstanceOf(JobFailure);
    expect((outcome as JobFailure).message).toContain("exit code 1");
    expect((outcome as JobFailure).summary ?? "").not.toContain("after");
  });

  it("keeps the failure summary within the limit, keeping the end of the output", async () => {
    const { outcome } = await run({ commands: ["for i in $(seq 1 500); do echo line-$i-padding-padding-padding; done", "exit 3"] });
    const failure = outcome as JobFailure;
    expect(failure.summary?.length).toBeLessThanOrEqual(MAX_SUMMARY_CHARS);
    expect(failure.summary).toContain("line-500-");
    expect(failure.summary).not.toContain("line-300-");
  });

  it("passes environment variables to the script without ever executing their values", async () => {
    const marker = path.join(root.dir, "injected-marker");
    const hostile = `$(touch ${marker}); touch ${marker}; \`touch ${marker}\` '"\n touch ${marker}`;
    const { outcome, read } = await readBack({
      commands: ['printf "%s" "$PLAIN" > plain.txt', 'printf "%s" "$HOSTILE" > hostile.txt', "echo $HOSTILE > unquoted.txt"],
      environmentVariables: [
        { name: "PLAIN", value: "hello world", type: "PLAINTEXT" },
        { name: "HOSTILE", value: hostile, type: "PLAINTEXT" },
      ],
    });
    expect(outcome).not.toBeInstanceOf(Error);
    expect(read["plain.txt"]).toBe("hello world");
    // The value arrives byte for byte, and nothing in it ran — not even when expanded unquoted.
    expect(read["hostile.txt"]).toBe(hostile);
    expect(read["unquoted.txt"]).toContain("$(touch");
    await expect(readFile(marker)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("runs a script whose #{…} references the domain bound: a hostile commit message is echoed, never run", async () => {
    const marker = path.join(root.dir, "ref-marker");
    const message = `$(touch ${marker}) \`touch ${marker}\` "; touch ${marker}; " '; touch ${marker}; '`;
    const ref = "#{SourceVariables.CommitMessage}";
    const script = resolveScript(
      [`printf '%s\\n' "${ref}" > dq.txt`, `printf '%s\\n' '${ref}' > sq.txt`, `printf '%s\\n' "$(printf %s '${ref}')" > sub.txt`, "cat > doc.txt <<EOF", ref, "EOF", `echo ${ref} > bare.txt`],
      "exec-1",
      { SourceVariables: { CommitMessage: message } },
    );
    if (!script.ok) throw new Error("the domain refused the script");
    const { outcome, read } = await readBack({ commands: script.pieces, environmentVariables: script.environment });
    expect(outcome).not.toBeInstanceOf(Error);
    for (const file of ["dq.txt", "sq.txt", "sub.txt", "doc.txt"]) expect(read[file]).toBe(`${message}\n`);
    expect(read["bare.txt"]).toContain(`$(touch ${marker})`);
    await expect(readFile(marker)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("rejects an environment variable name that is not a shell identifier", async () => {
    const { outcome } = await run({
      commands: ["true"],
      environmentVariables: [{ name: "BAD;touch x", value: "v", type: "PLAINTEXT" }],
    });
    expect(outcome).toBeInstanceOf(JobFailure);
    expect((outcome as JobFailure).code).toBe("ConfigurationError");
    expect((outcome as JobFailure).message).toContain("environmentVariables[0].name");
  });

  it("exports the declared output variables from the shell's final environment", async () => {
    const { outcome } = await run({
      commands: ['export VERSION="1.2.3"', 'NOT_EXPORTED="multi\nline"', "UNDECLARED=x", "export ALSO_UNDECLARED=y"],
      outputVariables: ["VERSION", "NOT_EXPORTED", "NEVER_SET"],
    });
    expect(outcome).not.toBeInstanceOf(Error);
    const ok = outcome as Awaited<ReturnType<typeof commandsProvider>>;
    expect(ok.outputVariables).toEqual({ VERSION: "1.2.3", NOT_EXPORTED: "multi\nline" });
  });

  it("takes the commands from configuration.Commands when job.commands is empty", async () => {
    const { outcome, read } = await readBack({ configuration: { Commands: "echo one > a.txt\necho two >> a.txt" } });
    expect(outcome).not.toBeInstanceOf(Error);
    expect(read["a.txt"]).toBe("one\ntwo\n");
  });

  it("masks secret variable values in logged output and in the failure summary", async () => {
    const lines: string[] = [];
    const logger: Logger = {
      debug: (_msg, fields) => lines.push(String(fields?.["line"])),
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
      child: () => logger,
    };
    const { outcome } = await run(
      {
        commands: ['echo "token is $TOKEN"', "exit 1"],
        environmentVariables: [{ name: "TOKEN", value: "hunter2-secret", type: "SECRETS_MANAGER" }],
      },
      { logger },
    );
    expect(lines).toContain("token is ***");
    expect(lines.join("\n")).not.toContain("hunter2-secret");
    expect((outcome as JobFailure).summary).toContain("token is ***");
    expect((outcome as JobFailure).summary).not.toContain("hunter2-secret");
  });

  it("masks a secret in exported output variables, so the result on the bus never carries it", async () => {
    const { outcome } = await run({
      commands: ['export LEAKED="prefix-$TOKEN"', 'export PLAIN="nothing secret"'],
      environmentVariables: [{ name: "TOKEN", value: "hunter2-secret", type: "SECRET" }],
      outputVariables: ["LEAKED", "PLAIN"],
    });
    expect(outcome).not.toBeInstanceOf(Error);
    const vars = (outcome as Awaited<ReturnType<typeof commandsProvider>>).outputVariables;
    expect(vars?.["PLAIN"]).toBe("nothing secret");
    expect(vars?.["LEAKED"]).toBe("prefix-****");
  });

  it("kills the whole process group when aborted, background processes included", async () => {
    const controller = new AbortController();
    const pidFile = (name: string) => path.join(root.dir, name);
    const running = run(
      {
        commands: [`sleep 100 & echo $! > ${pidFile("bg.pid")}`, `echo $$ > ${pidFile("sh.pid")}`, "sleep 100"],
      },
      { signal: controller.signal },
    );
    const readPid = async (name: string) => Number((await readFile(pidFile(name), "utf8")).trim());
    await expect.poll(() => readPid("sh.pid").catch(() => 0), { timeout: 10_000 }).toBeGreaterThan(0);
    const bg = await readPid("bg.pid");
    const sh = await readPid("sh.pid");
    expect(await isProcessAlive(bg)).toBe(true);
    controller.abort();
    const { outcome } = await running;
    expect(outcome).toBeInstanceOf(JobFailure);
    await expect.poll(() => isProcessAlive(bg), { timeout: 10_000 }).toBe(false);
    await expect.poll(() => isProcessAlive(sh), { timeout: 10_000 }).toBe(false);
  });

  it("fails with a configuration error when there are no commands", async () => {
    const { outcome } = await run({ commands: [] });
    expect(outcome).toBeInstanceOf(JobFailure);
    expect((outcome as JobFailure).code).toBe("ConfigurationError");
  });

  /** Runs and returns the contents of every top-level file the commands wrote. */
  async function readBack(init: Parameters<typeof makeJob>[0]) {
    const { ctx, ws } = await providerContext(makeJob(init), { root: root.dir });
    try {
      const outcome = await commandsProvider(ctx).catch((err: unknown) => err);
      const read: Record<string, string> = {};
      for (const name of await readdir(ws.src)) read[name] = await readFile(path.join(ws.src, name), "utf8");
      return { outcome, read };
    } finally {
      await ws.remove();
    }
  }

  it("writes user files only into the workspace source dir, never the runner's own files", async () => {
    const { ctx, ws } = await providerContext(makeJob({ commands: ["touch mine.txt"] }), { root: root.dir });
    try {
      await writeFile(path.join(ws.src, "input.txt"), "from input\n");
      await commandsProvider(ctx);
      expect((await readdir(ws.src)).sort()).toEqual(["input.txt", "mine.txt"]);
    } finally {
      await ws.remove();
    }
  });
});
