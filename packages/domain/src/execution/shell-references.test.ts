import { describe, expect, it } from "vitest";
import { bindShellReferences } from "./shell-references.js";
import { resolveScript } from "./variables.js";

const MSG = "#{SourceVariables.CommitMessage}";

function bound(...pieces: string[]): string[] {
  const r = bindShellReferences(pieces);
  if (!r.ok) throw new Error(`refused: ${r.message}`);
  return r.pieces;
}

function refusal(...pieces: string[]): { piece: number; message: string } {
  const r = bindShellReferences(pieces);
  if (r.ok) throw new Error(`bound: ${JSON.stringify(r.pieces)}`);
  return { piece: r.piece, message: r.message };
}

describe("bindShellReferences", () => {
  it("turns references outside quotes and inside double quotes into ${SLUICE_REF_n}", () => {
    expect(bound(`echo ${MSG}`, `echo "msg: ${MSG}!"`, `x=${MSG}y`)).toEqual([
      "echo ${SLUICE_REF_1}",
      'echo "msg: ${SLUICE_REF_1}!"',
      "x=${SLUICE_REF_1}y",
    ]);
  });

  it("closes and reopens single quotes around the expansion", () => {
    expect(bound(`echo 'a ${MSG} b'`)).toEqual([`echo 'a '"\${SLUICE_REF_1}"' b'`]);
    expect(bound(`echo '\\${MSG}'`)).toEqual([`echo '\\'"\${SLUICE_REF_1}"''`]);
  });

  it("names each distinct reference once, in order of appearance", () => {
    const r = bindShellReferences([`echo #{a.x} #{b.y}`, `echo #{a.x} #{codepipeline.PipelineExecutionId}`]);
    expect(r).toEqual({
      ok: true,
      pieces: ["echo ${SLUICE_REF_1} ${SLUICE_REF_2}", "echo ${SLUICE_REF_1} ${SLUICE_REF_3}"],
      references: [
        { reference: "#{a.x}", envName: "SLUICE_REF_1", piece: 0 },
        { reference: "#{b.y}", envName: "SLUICE_REF_2", piece: 0 },
        { reference: "#{codepipeline.PipelineExecutionId}", envName: "SLUICE_REF_3", piece: 1 },
      ],
    });
  });

  it("follows quotes nested in $(…) inside double quotes, and unquoted heredoc bodies", () => {
    expect(bound(`echo "$(printf '%s' '${MSG}') and ${MSG}"`)).toEqual([
      `echo "$(printf '%s' ''"\${SLUICE_REF_1}"'') and \${SLUICE_REF_1}"`,
    ]);
    expect(bound("cat <<EOF", `it's "${MSG}"`, "EOF", `echo '${MSG}'`)).toEqual([
      "cat <<EOF",
      `it's "\${SLUICE_REF_1}"`,
      "EOF",
      `echo ''"\${SLUICE_REF_1}"''`,
    ]);
    expect(bound("cat <<-END; echo '$(x)'", `\t${MSG}`, "\tEND")).toEqual(["cat <<-END; echo '$(x)'", "\t${SLUICE_REF_1}", "\tEND"]);
  });

  it("leaves references inside comments alone (they need no value)", () => {
    const r = bindShellReferences([`# deploys ${MSG}`, `echo hi # ${MSG}`, `echo a#${MSG}`]);
    expect(r.ok && r.pieces).toEqual([`# deploys ${MSG}`, `echo hi # ${MSG}`, "echo a#${SLUICE_REF_1}"]);
  });

  it("keeps parenthesised case patterns inside $(…) from closing it", () => {
    expect(bound(`x="$(case a in a) echo '${MSG}';; esac)"`)).toEqual([`x="$(case a in a) echo ''"\${SLUICE_REF_1}"'';; esac)"`]);
  });

  it("leaves text that is not a reference untouched", () => {
    expect(bound("echo '#{x}' \"#{a.}\" ${HOME} $(date) `id` # done")).toEqual(["echo '#{x}' \"#{a.}\" ${HOME} $(date) `id` # done"]);
  });

  it.each([
    ["a quoted heredoc", ["cat <<'EOF'", `${MSG}`, "EOF"], 1, "heredoc with a quoted delimiter"],
    ["a heredoc quoted with a backslash", ["cat <<\\EOF", "ok", `${MSG}`, "EOF"], 2, "heredoc with a quoted delimiter"],
    ["$'…'", ["echo ok", `echo $'a\\n${MSG}'`], 1, "inside $'…'"],
    ["backquotes", [`echo \`echo ${MSG}\``], 0, "backquotes"],
    ["${…}", [`echo \${X:-${MSG}}`], 0, "inside ${…}"],
    ["$((…))", [`echo $(( ${MSG} + 1 ))`], 0, "arithmetic"],
    ["((…))", [`(( ${MSG} > 1 ))`], 0, "arithmetic"],
    ["$((…)) around $(…)", [`echo $(( $(echo "${MSG}") ))`], 0, "arithmetic"],
    ["a $ before it", [`echo $${MSG}`], 0, "follows a $"],
    ["a backslash before it", [`echo "\\${MSG}"`], 0, "follows a backslash"],
  ])("refuses a reference in %s, naming the piece", (_what, pieces, piece, why) => {
    const r = refusal(...pieces);
    expect(r.piece).toBe(piece);
    expect(r.message).toContain(MSG);
    expect(r.message).toContain(why);
  });

  it("knows where quoted heredocs, $'…' and backquotes end", () => {
    expect(bound("cat <<'EOF'", "$(x) '", "EOF", `echo ${MSG}`)).toEqual(["cat <<'EOF'", "$(x) '", "EOF", "echo ${SLUICE_REF_1}"]);
    expect(bound(`echo $'it\\'s' \`a\\\`b\` '${MSG}'`)).toEqual([`echo $'it\\'s' \`a\\\`b\` ''"\${SLUICE_REF_1}"''`]);
    expect(bound(`echo $((1 << 2)) $[3] "${MSG}"`)).toEqual([`echo $((1 << 2)) $[3] "\${SLUICE_REF_1}"`]);
  });
});

describe("resolveScript", () => {
  const vars = { SourceVariables: { CommitMessage: '$(touch /tmp/pwned) `id` "; touch x; "' } };

  it("puts values only in the environment, never in the script", () => {
    const r = resolveScript([`echo ${MSG} "${MSG}" '${MSG}'`, "echo #{codepipeline.PipelineExecutionId}"], "exec-1", vars);
    expect(r).toEqual({
      ok: true,
      pieces: [`echo \${SLUICE_REF_1} "\${SLUICE_REF_1}" ''"\${SLUICE_REF_1}"''`, "echo ${SLUICE_REF_2}"],
      environment: [
        { name: "SLUICE_REF_1", value: vars.SourceVariables.CommitMessage, type: "PLAINTEXT" },
        { name: "SLUICE_REF_2", value: "exec-1", type: "PLAINTEXT" },
      ],
    });
    if (r.ok) expect(r.pieces.join("\n")).not.toContain("touch");
  });

  it("reports an unresolvable reference with the piece it is in", () => {
    expect(resolveScript(["echo ok", "echo #{Build.Missing}"], "e", vars)).toEqual({ ok: false, piece: 1, reference: "#{Build.Missing}" });
  });
});
