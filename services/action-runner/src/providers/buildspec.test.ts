import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Logger } from "@sluice/domain";
import type { JobSchema } from "@sluice/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeJob, providerContext, tempDir } from "../../test/helpers.js";
import { commandsProvider } from "./commands.js";
import { JobFailure } from "./provider.js";
import type { ProviderOutcome } from "./provider.js";

describe("Commands provider with a buildspec", () => {
  let root: { dir: string; remove: () => Promise<void> };

  beforeAll(async () => {
    root = await tempDir("sluice-buildspec-test-");
  });
  afterAll(async () => {
    await root.remove();
  });

  interface Run {
    outcome: ProviderOutcome | JobFailure;
    lines: string[];
    /** Files of each output's directory (relative, sorted), read before the workspace is removed. */
    outputFiles: Record<string, string[]>;
    /** Contents of files in the workspace after the run. */
    read: (file: string) => Promise<string>;
  }

  async function run(buildSpec: string, init: MessageInitShape<typeof JobSchema> = {}, files: Record<string, string> = {}): Promise<Run> {
    const job = makeJob({ ...init, configuration: { BuildSpec: buildSpec, ...init.configuration } });
    const { ctx, ws } = await providerContext(job, { root: root.dir });
    const lines: string[] = [];
    const logger: Logger = {
      debug: (_msg, fields) => {
        const line = fields?.["line"];
        if (typeof line === "string") lines.push(line);
      },
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
      child: () => logger,
    };
    for (const [file, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(ws.src, file)), { recursive: true });
      await writeFile(path.join(ws.src, file), text);
    }
    const outcome = await commandsProvider({ ...ctx, logger }).catch((err: unknown) => {
      if (err instanceof JobFailure) return err;
      throw err;
    });
    const outputFiles: Record<string, string[]> = {};
    const contents = new Map<string, string>();
    if (!(outcome instanceof JobFailure)) {
      for (const o of outcome.outputs) outputFiles[o.name] = (await listAll(o.dir)).sort();
    }
    for (const name of await listAll(ws.src)) contents.set(name, await readFile(path.join(ws.src, name), "utf8"));
    await ws.remove();
    return { outcome, lines, outputFiles, read: (file) => Promise.resolve(contents.get(file) ?? "<missing>") };
  }

  function ok(r: Run): ProviderOutcome {
    if (r.outcome instanceof JobFailure) throw new Error(`expected success, got ${r.outcome.message}\n${r.outcome.summary ?? ""}`);
    return r.outcome;
  }

  function failed(r: Run): JobFailure {
    if (!(r.outcome instanceof JobFailure)) throw new Error("expected a failure");
    return r.outcome;
  }

  /** The runner's `[Container]` lines, without the command output in between. */
  const container = (r: Run): string[] => r.lines.filter((l) => l.startsWith("[Container]"));

  it("runs the phases in order in one shell: cd, variables and background processes carry over", async () => {
    const r = await run(
      [
        "version: 0.2",
        "phases:",
        "  post_build:",
        "    commands: [echo post >> order.txt]",
        "  install:",
        "    commands:",
        "      - echo install >> order.txt",
        "      - mkdir -p sub && cd sub",
        "      - COUNT=1",
        "      - (sleep 30 & echo $! > ../bg.pid)",
        "  pre_build:",
        "    commands: ['echo pre >> ../order.txt; COUNT=$((COUNT+1))']",
        "  build:",
        "    commands:",
        "      - echo \"build $COUNT $(basename $PWD)\" >> ../order.txt",
        "      - kill -0 $(cat ../bg.pid)",
        "      - cd ..",
      ].join("\n"),
    );
    const outcome = ok(r);
    expect(await r.read("order.txt")).toBe("install\npre\nbuild 2 sub\npost\n");
    expect(outcome.summary).toBe("Buildspec succeeded: INSTALL, PRE_BUILD, BUILD, POST_BUILD (9 commands)");
    expect(container(r).slice(0, 3)).toEqual(["[Container] Entering phase INSTALL", "[Container] Running command echo install >> order.txt", "[Container] Running command mkdir -p sub && cd sub"]);
    expect(container(r).filter((l) => /phase/i.test(l))).toEqual([
      "[Container] Entering phase INSTALL",
      "[Container] Phase complete: INSTALL State: SUCCEEDED",
      "[Container] Entering phase PRE_BUILD",
      "[Container] Phase complete: PRE_BUILD State: SUCCEEDED",
      "[Container] Entering phase BUILD",
      "[Container] Phase complete: BUILD State: SUCCEEDED",
      "[Container] Entering phase POST_BUILD",
      "[Container] Phase complete: POST_BUILD State: SUCCEEDED",
    ]);
  });

  it("a failed build still runs its finally and post_build, then fails naming the phase and the command", async () => {
    const r = await run(
      "version: 0.2\nphases:\n  build:\n    commands:\n      - echo one >> log.txt\n      - |\n        echo two >> log.txt\n        false\n        echo never >> log.txt\n      - echo skipped >> log.txt\n    finally:\n      - echo finally >> log.txt\n  post_build:\n    commands: [echo post >> log.txt]\n",
    );
    const failure = failed(r);
    expect(await r.read("log.txt")).toBe("one\ntwo\nfinally\npost\n");
    expect(failure.code).toBe("JobFailed");
    expect(failure.message).toBe('Buildspec phase BUILD failed: command "echo two >> log.txt\\nfalse\\necho never >> log.txt" exited with status 1');
    expect(failure.summary).toContain("[Container] Phase complete: BUILD State: FAILED");
    expect(container(r)).toContain("[Container] Phase complete: POST_BUILD State: SUCCEEDED");
  });

  it("a failed install or pre_build ends the build after its finally; on-failure CONTINUE goes on, ABORT stops even after build", async () => {
    const spec = (install: string, build: string) =>
      `version: 0.2\nphases:\n  install:\n${install}    commands:\n      - echo install >> log.txt\n      - 'exit_code_3() { return 3; }'\n      - exit_code_3\n    finally: [echo install-finally >> log.txt]\n  pre_build:\n    commands: [echo pre >> log.txt]\n  build:\n${build}    commands: [echo build >> log.txt, 'false']\n  post_build:\n    commands: [echo post >> log.txt]\n`;
    const aborted = await run(spec("", ""));
    expect(await aborted.read("log.txt")).toBe("install\ninstall-finally\n");
    expect(failed(aborted).message).toBe('Buildspec phase INSTALL failed: command "exit_code_3" exited with status 3');

    const continued = await run(spec("    on-failure: CONTINUE\n", "    on-failure: ABORT\n"));
    expect(await continued.read("log.txt")).toBe("install\ninstall-finally\npre\nbuild\n");
    // The first failed phase is reported even though the build went on.
    expect(failed(continued).message).toBe('Buildspec phase INSTALL failed: command "exit_code_3" exited with status 3');
    expect(container(continued)).toContain("[Container] Phase complete: BUILD State: FAILED");
    expect(container(continued).some((l) => l.includes("POST_BUILD"))).toBe(false);
  });

  it("a failing finally command fails its phase; exit in a command ends the shell at once", async () => {
    const fin = await run("version: 0.2\nphases:\n  build:\n    commands: [echo b >> log.txt]\n    finally: ['false', echo never >> log.txt]\n");
    expect(failed(fin).message).toBe('Buildspec phase BUILD failed (in finally): command "false" exited with status 1');
    expect(await fin.read("log.txt")).toBe("b\n");

    const exited = await run("version: 0.2\nphases:\n  build:\n    commands: [exit 4, echo never >> log.txt]\n    finally: [echo never >> log.txt]\n  post_build:\n    commands: [echo never >> log.txt]\n");
    expect(failed(exited).message).toBe('Buildspec phase BUILD failed: command "exit 4" exited with status 4');
    expect(await exited.read("log.txt")).toBe("<missing>");
    expect(container(exited)).toContain("[Container] Command exited the shell with status 4; nothing after it runs");
  });

  it("passes env.variables and the action's variables as environment, never as script text", async () => {
    const marker = path.join(root.dir, "buildspec-injected");
    const hostile = `$(touch ${marker}) \`touch ${marker}\` "; touch ${marker}`;
    const r = await run(
      `version: 0.2\nenv:\n  variables:\n    HOSTILE: ${JSON.stringify(hostile)}\n    MODE: from-buildspec\n    KEPT: kept\nphases:\n  build:\n    commands:\n      - printf '%s|%s|%s' "$HOSTILE" "$MODE" "$KEPT" > env.txt\n      - echo $HOSTILE > unquoted.txt\n`,
      { environmentVariables: [{ name: "MODE", value: "from-action", type: "PLAINTEXT" }] },
    );
    ok(r);
    expect(await r.read("env.txt")).toBe(`${hostile}|from-action|kept`);
    expect(await r.read("unquoted.txt")).toContain(`$(touch ${marker})`);
    await expect(readFile(marker)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("turns exported-variables and declared outputVariables into output variables, values as the build left them", async () => {
    const r = await run(
      "version: 0.2\nenv:\n  exported-variables: [VERSION, NEVER_SET]\nphases:\n  pre_build:\n    commands: [VERSION=0.9]\n  build:\n    commands: ['VERSION=\"1.2.$((1+2))\"', 'export DECLARED=yes']\n",
      { outputVariables: ["DECLARED"] },
    );
    expect(ok(r).outputVariables).toEqual({ VERSION: "1.2.3", DECLARED: "yes" });
  });

  it("stores artifacts from base-directory, with discard-paths and exclude-paths, and secondary artifacts by output name", async () => {
    const r = await run(
      [
        "version: 0.2",
        "phases:",
        "  build:",
        "    commands:",
        "      - mkdir -p dist/js dist/css reports/unit",
        "      - echo a > dist/js/app.js; echo m > dist/js/app.js.map; echo c > dist/css/site.css; echo r > reports/unit/junit.xml",
        "artifacts:",
        "  files: ['**/*']",
        "  base-directory: dist",
        "  discard-paths: yes",
        "  exclude-paths: ['**/*.map']",
        "  secondary-artifacts:",
        "    Reports:",
        "      files: [reports]",
        "    Whole:",
        "      base-directory: dist",
        "      files: ['js/*']",
      ].join("\n"),
      {
        outputs: [
          { name: "Site", artifactId: "a/Site" },
          { name: "Reports", artifactId: "a/Reports" },
          { name: "Whole", artifactId: "a/Whole" },
          { name: "Plain", artifactId: "a/Plain" },
        ],
        outputArtifacts: [{ name: "Site" }, { name: "Reports" }, { name: "Whole" }, { name: "Plain", files: ["reports/**"] }],
      },
    );
    const outcome = ok(r);
    expect(r.outputFiles["Site"]).toEqual(["app.js", "site.css"]);
    expect(outcome.outputs.find((o) => o.name === "Reports")?.patterns).toEqual(["reports"]);
    // No staging without discard/exclude: the runner zips base-directory with the globs.
    const whole = outcome.outputs.find((o) => o.name === "Whole");
    expect(path.basename(whole?.dir ?? "")).toBe("dist");
    expect(whole?.patterns).toEqual(["js/*"]);
    expect(outcome.outputs.find((o) => o.name === "Plain")?.patterns).toEqual(["reports/**"]);
  });

  it("fails when discard-paths would store two files under one name, or base-directory is not a directory of the build", async () => {
    const clash = await run("version: 0.2\nphases:\n  build:\n    commands: ['mkdir -p a b; echo 1 > a/x; echo 2 > b/x']\nartifacts:\n  files: ['**/*']\n  discard-paths: yes\n", {
      outputs: [{ name: "Out", artifactId: "a/Out" }],
      outputArtifacts: [{ name: "Out" }],
    });
    expect(failed(clash).message).toBe('configuration.BuildSpec: artifacts.discard-paths: "a/x" and "b/x" would both be stored as "x"');
    const link = await run("version: 0.2\nphases:\n  build:\n    commands: ['ln -s / escape']\nartifacts:\n  files: ['**/*']\n  base-directory: escape\n", {
      outputs: [{ name: "Out", artifactId: "a/Out" }],
      outputArtifacts: [{ name: "Out" }],
    });
    expect(failed(link).message).toBe('configuration.BuildSpec: artifacts.base-directory: "escape" is not a directory of the build');
  });

  it("reads a buildspec file of the primary input, failing with the file and the field when it is invalid", async () => {
    const good = await run("ci/buildspec.yml", {}, { "ci/buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands: [echo from-file > out.txt]\n" });
    ok(good);
    expect(await good.read("out.txt")).toBe("from-file\n");

    const typo = await run("ci/buildspec.yml", {}, { "ci/buildspec.yml": "version: 0.2\nphases:\n  biuld:\n    commands: [make]\n  build:\n    on-failure: RETRY\n    commands: [make]\n" });
    const failure = failed(typo);
    expect(failure.code).toBe("ConfigurationError");
    expect(failure.message).toBe('BuildSpec file "ci/buildspec.yml": phases.biuld: is not a phase; phases are install, pre_build, build, post_build');
    expect(failure.summary).toContain('BuildSpec file "ci/buildspec.yml": phases.build.on-failure: must be ABORT or CONTINUE, got "RETRY"');

    const missing = await run("buildspec.yml");
    expect(failed(missing).message).toBe('BuildSpec file "buildspec.yml": not found in the primary input artifact');
    const secondary = await run("b.yml", { outputArtifacts: [{ name: "Out" }] }, { "b.yml": "version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  secondary-artifacts:\n    Other:\n      files: [x]\n" });
    expect(failed(secondary).message).toBe('BuildSpec file "b.yml": artifacts.secondary-artifacts.Other: names no output artifact of the action; it declares Out');
  });
});

async function listAll(dir: string, rel = ""): Promise<string[]> {
  const entries = await readdir(rel === "" ? dir : path.join(dir, rel), { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const child = rel === "" ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await listAll(dir, child)));
    else if (e.isFile()) out.push(child);
  }
  return out;
}
