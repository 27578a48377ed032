import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildSpecOutputProblems, buildSpecSourceOf, commandsOutputVariables, parseBuildSpec } from "./buildspec.js";
import type { BuildSpec } from "./buildspec.js";
import { actionOf, configOf, edited } from "./test-fixtures.js";
import { validatePipeline } from "./validate.js";

const BASE = "configuration.BuildSpec";

function parsed(text: string): BuildSpec {
  const r = parseBuildSpec(text, BASE);
  if (!r.ok) throw new Error(`expected a valid buildspec, got ${JSON.stringify(r.violations)}`);
  return r.spec;
}

function violations(text: string): [string, string][] {
  const r = parseBuildSpec(text, BASE);
  return r.ok ? [] : r.violations.map((v) => [v.field, v.message]);
}

const FULL = `version: 0.2
env:
  shell: bash
  variables:
    NODE_ENV: production
    RETRIES: 3
  exported-variables:
    - VERSION
phases:
  install:
    on-failure: CONTINUE
    commands:
      - npm ci
  build:
    commands:
      - true
      - |
        npm run build
        npm test
    finally:
      - echo done
  post_build:
    on-failure: ABORT
    commands: [echo post]
artifacts:
  files:
    - "**/*"
  base-directory: ./dist/
  discard-paths: yes
  exclude-paths: "*.map"
  name: site
  secondary-artifacts:
    Reports:
      files: reports/*.xml
`;

describe("parseBuildSpec", () => {
  it("reads every supported key of a version 0.2 buildspec, scalars as text", () => {
    const spec = parsed(FULL);
    expect(spec.variables).toEqual([
      { name: "NODE_ENV", value: "production" },
      { name: "RETRIES", value: "3" },
    ]);
    expect(spec.exportedVariables).toEqual(["VERSION"]);
    expect(spec.phases.install).toEqual({ commands: ["npm ci"], finally: [], onFailure: "CONTINUE" });
    // `- true` is the shell's true command, not a boolean.
    expect(spec.phases.build).toEqual({ commands: ["true", "npm run build\nnpm test\n"], finally: ["echo done"] });
    expect(spec.phases.post_build).toEqual({ commands: ["echo post"], finally: [], onFailure: "ABORT" });
    expect(spec.phases.pre_build).toBeUndefined();
    expect(spec.artifacts).toEqual({ files: ["**/*"], baseDirectory: "dist", discardPaths: true, excludePaths: ["*.map"] });
    expect(spec.secondaryArtifacts).toEqual({ Reports: { files: ["reports/*.xml"], baseDirectory: "", discardPaths: false, excludePaths: [] } });
  });

  it("reads JSON as well as YAML", () => {
    const spec = parsed('{"version": 0.2, "phases": {"build": {"commands": ["echo \\"hi\\""]}}}');
    expect(spec.phases.build?.commands).toEqual(['echo "hi"']);
  });

  it("names the path of an unknown key: a misspelt phase is refused, not skipped", () => {
    expect(violations("version: 0.2\nphases:\n  biuld:\n    commands: [make]\n")).toEqual([
      [`${BASE}.phases.biuld`, "is not a phase; phases are install, pre_build, build, post_build"],
    ]);
    expect(violations("version: 0.2\nfases: {}\nphases:\n  build:\n    commands: [make]\n    on-fail: CONTINUE\n")).toEqual([
      [`${BASE}.fases`, "is not a buildspec key here; expected version, env, phases, artifacts"],
      [`${BASE}.phases.build.on-fail`, "is not a buildspec key here; expected commands, finally, on-failure"],
    ]);
  });

  it("says why a CodeBuild key Sluice cannot honour is refused", () => {
    expect(
      violations("version: 0.2\ncache:\n  paths: [x]\nenv:\n  secrets-manager: {A: b}\nphases:\n  install:\n    runtime-versions: {nodejs: 20}\n    commands: [x]\n"),
    ).toEqual([
      [`${BASE}.cache`, "is not supported: Sluice keeps no build cache between runs"],
      [`${BASE}.env.secrets-manager`, "is not supported: Sluice has no secrets manager; use the action's environmentVariables with type SECRET"],
      [`${BASE}.phases.install.runtime-versions`, "is not supported: Sluice runs commands on the runner's own tools and cannot select runtime versions"],
    ]);
  });

  it("checks version, phases, commands, on-failure and the environment field by field", () => {
    expect(violations("phases:\n  build:\n    commands: []\n")).toEqual([
      [`${BASE}.version`, "is required: write version: 0.2"],
      [`${BASE}.phases.build.commands`, "lists no commands"],
    ]);
    expect(violations("version: 0.1\nphases: {}\n")).toEqual([
      [`${BASE}.version`, "Sluice runs version 0.2 buildspecs only (0.1 ran each command in a shell of its own)"],
      [`${BASE}.phases`, "is empty: give at least one of install, pre_build, build, post_build"],
    ]);
    expect(
      violations(
        "version: 0.2\nenv:\n  shell: sh\n  variables:\n    1X: a\n    SLUICE_X: b\n    OK: [a]\n  exported-variables: [A, A, a-b]\nphases:\n  build:\n    on-failure: RETRY\n    finally: done\n    commands: ['', {a: b}]\n",
      ),
    ).toEqual([
      [`${BASE}.env.shell`, 'Sluice runs commands with bash only, got "sh"'],
      [`${BASE}.env.variables.1X`.replace(".1X", '["1X"]'), '"1X" must be a shell variable name (1-128 characters of A-Z a-z 0-9 _, not starting with a digit)'],
      [`${BASE}.env.variables.SLUICE_X`, '"SLUICE_X": names starting with SLUICE_ are reserved for the runner'],
      [`${BASE}.env.variables.OK`, "must be a text value, got a list"],
      [`${BASE}.env.exported-variables[1]`, '"A" is listed twice'],
      [`${BASE}.env.exported-variables[2]`, '"a-b" must be a shell variable name (1-128 characters of A-Z a-z 0-9 _, not starting with a digit)'],
      [`${BASE}.phases.build.commands[0]`, "is empty"],
      [`${BASE}.phases.build.commands[1]`, "must be a shell command, got a mapping"],
      [`${BASE}.phases.build.finally`, 'must be a list of shell commands, got "done"'],
      [`${BASE}.phases.build.on-failure`, 'must be ABORT or CONTINUE, got "RETRY"'],
    ]);
  });

  it("keeps artifact paths inside the source directory", () => {
    expect(
      violations("version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  files: [/etc/passwd, '../x', 'a\\b']\n  base-directory: ../up\n  discard-paths: maybe\n"),
    ).toEqual([
      [`${BASE}.artifacts.files[0]`, '"/etc/passwd" must be relative to the source directory'],
      [`${BASE}.artifacts.files[1]`, '"../x" must not contain ".."'],
      [`${BASE}.artifacts.files[2]`, '"a\\\\b": use "/" as the separator'],
      [`${BASE}.artifacts.base-directory`, '"../up" must not contain ".."'],
      [`${BASE}.artifacts.discard-paths`, 'must be yes or no, got "maybe"'],
    ]);
    expect(violations("version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  base-directory: dist\n")).toEqual([
      [`${BASE}.artifacts.files`, "is required: list the globs of the files to store (e.g. **/*)"],
    ]);
  });

  it("reports YAML syntax errors, duplicate keys and alias bombs with their place", () => {
    const [syntax] = violations("version: 0.2\nphases:\n  build:\n    commands: [make\n");
    expect(syntax?.[0]).toBe(BASE);
    expect(syntax?.[1]).toMatch(/^is not valid YAML: .* at line \d+, column \d+$/);
    const [duplicate] = violations("version: 0.2\nversion: 0.2\nphases: {build: {commands: [x]}}\n");
    expect(duplicate?.[1]).toMatch(/^is not valid YAML: .*unique.* at line 2, column 1$/i);
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(", ")}]`)].join("\n");
    const [refused] = violations(bomb);
    expect(refused?.[0]).toBe(BASE);
    expect(refused?.[1]).toMatch(/^cannot be read: .*alias/i);
  });

  it("never throws, and any unknown top-level key is named by its path (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const r = parseBuildSpec(text, BASE);
        if (!r.ok) for (const v of r.violations) expect(v.field.startsWith(BASE)).toBe(true);
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z_-]{0,20}$/), (key) => {
        fc.pre(!["version", "env", "phases", "artifacts", "run-as", "proxy", "batch", "reports", "cache"].includes(key));
        const r = parseBuildSpec(`version: 0.2\n${key}: x\nphases:\n  build:\n    commands: [make]\n`, BASE);
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.violations.map((v) => v.field)).toEqual([`${BASE}.${key}`]);
      }),
    );
  });

  it("gives back every command of a JSON buildspec byte for byte (property)", () => {
    const command = fc.string({ minLength: 1, maxLength: 40 }).filter((c) => c.trim() !== "" && !c.includes("\0"));
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 5 }), fc.array(command, { maxLength: 3 }), (commands, finallyCommands) => {
        const build = finallyCommands.length === 0 ? { commands } : { commands, finally: finallyCommands };
        const spec = parsed(JSON.stringify({ version: "0.2", phases: { build } }));
        expect(spec.phases.build?.commands).toEqual(commands);
        expect(spec.phases.build?.finally).toEqual(finallyCommands);
      }),
    );
  });
});

describe("buildSpecSourceOf", () => {
  it("reads one line as a file path and several lines or a JSON object as an inline buildspec", () => {
    expect(buildSpecSourceOf(" ci/buildspec.yml ")).toEqual({ kind: "file", path: "ci/buildspec.yml" });
    expect(buildSpecSourceOf("version: 0.2\nphases: {}")).toEqual({ kind: "inline", text: "version: 0.2\nphases: {}" });
    expect(buildSpecSourceOf('{"version":"0.2"}')).toEqual({ kind: "inline", text: '{"version":"0.2"}' });
  });
});

describe("buildSpecOutputProblems", () => {
  const spec = (artifacts: string): BuildSpec => parsed(`version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n${artifacts}`);

  it("maps the primary block to the first output artifact and secondary ones by name", () => {
    const s = spec("  files: [dist/**]\n  secondary-artifacts:\n    Docs:\n      files: [docs/**]\n");
    expect(buildSpecOutputProblems(s, [{ name: "Site", files: [] }, { name: "Docs", files: [] }], BASE, "outputArtifacts")).toEqual([]);
  });

  it("names a secondary artifact the action does not declare, and files given twice", () => {
    const s = spec("  files: [dist/**]\n  secondary-artifacts:\n    Site:\n      files: [x]\n    Dcos:\n      files: [docs/**]\n");
    expect(buildSpecOutputProblems(s, [{ name: "Site", files: ["dist/**"] }, { name: "Docs", files: [] }], BASE, "outputArtifacts")).toEqual([
      { field: `${BASE}.artifacts.secondary-artifacts.Site`, message: '"Site" is the primary output artifact, already given by artifacts.files' },
      { field: `${BASE}.artifacts.secondary-artifacts.Dcos`, message: "names no output artifact of the action; it declares Site, Docs" },
      { field: "outputArtifacts[0].files", message: "give the files either here or in the buildspec's artifacts, not both" },
    ]);
    expect(buildSpecOutputProblems(spec("  files: [x]\n"), [], BASE, "outputArtifacts")).toEqual([
      { field: `${BASE}.artifacts`, message: "the action declares no output artifact to store them in" },
    ]);
  });
});

describe("inline buildspecs in a pipeline", () => {
  const INLINE = "version: 0.2\nenv:\n  exported-variables: [VERSION, DIGEST]\nphases:\n  build:\n    commands:\n      - make\n";

  it("are validated with the pipeline, errors naming the field under configuration.BuildSpec", () => {
    const violations = validatePipeline(
      edited((j) => {
        const build = actionOf(j, 1, 0);
        delete build.commands;
        build.configuration = { BuildSpec: "version: 0.2\nphases:\n  biuld:\n    commands: [make]\n" };
      }),
    );
    expect(violations).toEqual([
      { field: "pipeline.stages[1].actions[0].configuration.BuildSpec.phases.biuld", message: "is not a phase; phases are install, pre_build, build, post_build" },
    ]);
  });

  it("are exclusive with the commands list and configuration.Commands, and take no variables", () => {
    const violations = validatePipeline(
      edited((j) => {
        const build = actionOf(j, 1, 0);
        build.configuration = { BuildSpec: "buildspec.yml", Commands: "make" };
        const test = actionOf(j, 1, 1);
        delete test.commands;
        test.configuration = { BuildSpec: "version: 0.2\nphases:\n  build:\n    commands: ['echo #{BuildVariables.VERSION}']\n" };
      }),
    );
    expect(violations).toEqual([
      { field: "pipeline.stages[1].actions[0].configuration.BuildSpec", message: "give either the commands list or a BuildSpec, not both" },
      { field: "pipeline.stages[1].actions[0].configuration.BuildSpec", message: "give either configuration.Commands or a BuildSpec, not both" },
      {
        field: "pipeline.stages[1].actions[1].configuration.BuildSpec",
        message:
          "cannot use variables: a buildspec's commands reach the shell as text; set an environment variable of the action to the #{…} reference and use $NAME in the commands",
      },
    ]);
  });

  it("export their variables to later actions; a file buildspec's are known only when it runs", () => {
    expect(commandsOutputVariables(["VERSION"], { BuildSpec: INLINE })).toEqual(["VERSION", "DIGEST"]);
    expect(commandsOutputVariables([], { BuildSpec: "buildspec.yml" })).toBeUndefined();
    const valid = (spec: string) =>
      validatePipeline(
        edited((j) => {
          const build = actionOf(j, 1, 0);
          delete build.commands;
          build.outputArtifacts = [{ name: "BuildOut" }];
          build.configuration = { BuildSpec: spec };
          configOf(j, 2, 0)["CustomData"] = "Release #{BuildVariables.DIGEST}?";
        }),
      );
    expect(valid(INLINE)).toEqual([]);
    expect(valid("ci/buildspec.yml")).toEqual([]);
    expect(valid(INLINE.replace(", DIGEST", ""))).toEqual([
      { field: "pipeline.stages[2].actions[0].configuration.CustomData", message: '"#{BuildVariables.DIGEST}": action "Compile" in stage "Build" produces VERSION, not "DIGEST"' },
    ]);
  });

  it("a CodeBuild action runs with a BuildSpec instead of commands", () => {
    const violations = validatePipeline(
      edited((j) => {
        const test = actionOf(j, 1, 1);
        test.actionTypeId = { category: "Test", owner: "AWS", provider: "CodeBuild", version: "1" };
        delete test.commands;
        test.configuration = { ProjectName: "unit-tests", BuildSpec: "ci/test.yml" };
      }),
    );
    expect(violations).toEqual([]);
  });
});
