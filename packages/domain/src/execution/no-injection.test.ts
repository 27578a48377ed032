// Attack: a commit message that is shell code, referenced from a Commands
// action's script, must reach the runner as an environment variable only.

import { describe, expect, it } from "vitest";
import { Sim, actionSpec, commandsRule, pipelineSpec, sourceSpec } from "./testing.js";

const HOSTILE = '$(touch /tmp/pwned) `id` "; touch /tmp/pwned; " \'; touch /tmp/pwned; \'';
const MSG = "#{SourceVariables.CommitMessage}";

function pipeline(build: Parameters<typeof actionSpec>[1]) {
  return pipelineSpec([
    ["Source", [sourceSpec("Src", "SourceOutput", { namespace: "SourceVariables" })]],
    ["Build", [actionSpec("Compile", build)]],
  ]);
}

describe("no injection through Commands text", () => {
  it("sends a referenced commit message as SLUICE_REF_n in every quoting context, never in the script", () => {
    const sim = new Sim(pipeline({ commands: [`echo ${MSG}`, `echo "${MSG}"`, `echo '${MSG}'`, `echo "$(printf %s '${MSG}')"`, "cat <<EOF", MSG, "EOF"] }));
    sim.start("e1");
    sim.succeed("Src", undefined, { outputVariables: { CommitMessage: HOSTILE } });
    const job = sim.job("Compile");
    expect(job.commands).toEqual([
      "echo ${SLUICE_REF_1}",
      'echo "${SLUICE_REF_1}"',
      `echo ''"\${SLUICE_REF_1}"''`,
      `echo "$(printf %s ''"\${SLUICE_REF_1}"'')"`,
      "cat <<EOF",
      "${SLUICE_REF_1}",
      "EOF",
    ]);
    expect(job.commands.join("\n")).not.toContain("touch");
    expect(job.environmentVariables).toContainEqual({ name: "SLUICE_REF_1", value: HOSTILE, type: "PLAINTEXT" });
  });

  it("does the same for configuration.Commands, while resolvedConfiguration still shows the pasted text", () => {
    const sim = new Sim(pipeline({ commands: [], configuration: { Commands: `echo "${MSG}"\necho done` } }));
    sim.start("e1");
    sim.succeed("Src", undefined, { outputVariables: { CommitMessage: HOSTILE } });
    const job = sim.job("Compile");
    expect(job.configuration["Commands"]).toBe('echo "${SLUICE_REF_1}"\necho done');
    expect(job.environmentVariables).toEqual([{ name: "SLUICE_REF_1", value: HOSTILE, type: "PLAINTEXT" }]);
    expect(sim.exec("e1").stages[1]?.actions[0]?.resolvedConfiguration).toEqual({ Commands: `echo "${HOSTILE}"\necho done` });
  });

  it("fails the action naming the command when the reference sits where no variable can stand in", () => {
    const sim = new Sim(pipeline({ commands: ["echo ok", "cat <<'EOF'", MSG, "EOF"] }));
    sim.start("e1");
    const d = sim.succeed("Src", undefined, { outputVariables: { CommitMessage: HOSTILE } });
    expect(d.commands.filter((c) => c.type === "DispatchJob")).toEqual([]);
    const run = sim.exec("e1").stages[1]?.actions[0];
    expect(run?.status).toBe("Failed");
    expect(run?.errorDetails?.code).toBe("ConfigurationError");
    expect(run?.errorDetails?.message).toMatch(/^commands\[2\]: variable #\{SourceVariables\.CommitMessage\} is inside a heredoc with a quoted delimiter/);
  });

  it("fails the action naming the command when a reference in commands cannot be resolved", () => {
    const sim = new Sim(pipeline({ commands: ["echo ok", "echo #{SourceVariables.Nope}"] }));
    sim.start("e1");
    sim.succeed("Src", undefined, { outputVariables: { CommitMessage: "m" } });
    expect(sim.exec("e1").stages[1]?.actions[0]?.errorDetails?.message).toMatch(/^commands\[1\]: variable #\{SourceVariables\.Nope\} cannot be resolved/);
  });

  it("binds Commands rules of stage conditions the same way", () => {
    const spec = pipeline({ commands: ["true"] });
    const stage = spec.stages[1];
    if (stage === undefined) throw new Error("no stage");
    stage.beforeEntry = { conditions: [{ rules: [commandsRule("Gate", { commands: [`test "${MSG}" != '${MSG}'`] })] }] };
    const sim = new Sim(spec);
    sim.start("e1");
    sim.succeed("Src", undefined, { outputVariables: { CommitMessage: HOSTILE } });
    const job = sim.job("Gate");
    expect(job.commands).toEqual([`test "\${SLUICE_REF_1}" != ''"\${SLUICE_REF_1}"''`]);
    expect(job.environmentVariables).toEqual([{ name: "SLUICE_REF_1", value: HOSTILE, type: "PLAINTEXT" }]);
  });
});
