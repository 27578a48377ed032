// Properties of the shell-reference rewrite, checked by running real bash:
// with safe values it prints exactly what pasting the values into the text
// would print, and with hostile values it prints them literally and runs none.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { bindShellReferences } from "./shell-references.js";

const KEYS = ["k0", "k1", "k2"] as const;
const refOf = (k: number): string => `#{ns.${KEYS[k] ?? "k0"}}`;

/** A script piece, and how to print it with the values pasted in (`text`) or as bash reads it (`literal`). */
interface Part {
  /** The script text, references as `#{ns.kN}`. */
  script: string;
  /** What the word prints for the given values, when it is fully quoted (undefined: depends on splitting). */
  literal?: (values: readonly string[]) => string;
}

const refIndex = fc.integer({ min: 0, max: KEYS.length - 1 });
const text = (chars: string, maxLength = 5): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...chars.split("")), { maxLength }).map((a) => a.join(""));

// Inside single quotes anything but ' is literal; inside double quotes and
// heredoc bodies, anything but " \ $ ` is.
const SQ_TEXT = "ab $\"`(){};|&<>#*\\";
const DQ_TEXT = "ab '(){};|&<>#*";

/** Pieces of a quoted string: literal text and references. */
const quotedBody = (chars: string): fc.Arbitrary<({ t: string } | { r: number })[]> =>
  fc.array(fc.oneof(text(chars).map((t) => ({ t })), refIndex.map((r) => ({ r }))), { maxLength: 4 });

const bodyScript = (parts: readonly ({ t: string } | { r: number })[]): string => parts.map((p) => ("t" in p ? p.t : refOf(p.r))).join("");
const bodyLiteral = (parts: readonly ({ t: string } | { r: number })[], values: readonly string[]): string =>
  parts.map((p) => ("t" in p ? p.t : (values[p.r] ?? ""))).join("");

const sqWord: fc.Arbitrary<Part> = quotedBody(SQ_TEXT).map((b) => ({ script: `'${bodyScript(b)}'`, literal: (v) => bodyLiteral(b, v) }));
const dqWord: fc.Arbitrary<Part> = quotedBody(DQ_TEXT).map((b) => ({ script: `"${bodyScript(b)}"`, literal: (v) => bodyLiteral(b, v) }));
const bareRef: fc.Arbitrary<Part> = refIndex.map((r) => ({ script: refOf(r) }));
// Never empty: an empty unquoted word is no word at all.
const plain: fc.Arbitrary<Part> = text("abc019_", 4).map((t) => (t === "" ? "a" : t)).map((t) => ({ script: t, literal: () => t }));
/** A quoted word inside $(…) inside double quotes: quoting resets inside the substitution. */
const substituted: fc.Arbitrary<Part> = fc.oneof(sqWord, dqWord).map((w) => ({
  script: `"$(printf %s ${w.script})"`,
  // $(…) drops trailing newlines.
  ...(w.literal === undefined ? {} : { literal: (v: readonly string[]) => (w.literal?.(v) ?? "").replace(/\n+$/, "") }),
}));

/** A word made of adjacent parts (e.g. `a'…'"…"`). */
const word = (quotedOnly: boolean): fc.Arbitrary<Part> =>
  fc.array(quotedOnly ? fc.oneof(sqWord, dqWord, plain, substituted) : fc.oneof(sqWord, dqWord, bareRef, plain, substituted), { minLength: 1, maxLength: 3 }).map((parts) => {
    const literals = parts.map((p) => p.literal);
    const all = literals.every((l) => l !== undefined);
    return {
      script: parts.map((p) => p.script).join(""),
      ...(all ? { literal: (v: readonly string[]) => literals.map((l) => l(v)).join("") } : {}),
    };
  });

/** One script line; `expected` prints what the line prints when every word is quoted. */
const line = (quotedOnly: boolean): fc.Arbitrary<{ script: string; expected?: (v: readonly string[]) => string }> =>
  fc.oneof(
    fc.array(word(quotedOnly), { minLength: 1, maxLength: 3 }).map((words) => ({
      script: `printf '<%s>\\n' ${words.map((w) => w.script).join(" ")}`,
      expected: (v: readonly string[]) => words.map((w) => `<${w.literal?.(v) ?? ""}>\n`).join(""),
    })),
    quotedBody(DQ_TEXT).map((b) => ({
      script: `cat <<EOF\n${bodyScript(b)}\nEOF`,
      expected: (v: readonly string[]) => `${bodyLiteral(b, v)}\n`,
    })),
    quotedBody(SQ_TEXT).map((b) => ({
      // A comment may hold references; the line prints nothing.
      script: `# note ${bodyScript(b).replaceAll("\n", " ")}`,
      expected: () => "",
    })),
  );

const script = (quotedOnly: boolean) => fc.array(line(quotedOnly), { minLength: 1, maxLength: 4 });

function bash(source: string, env: Record<string, string>, cwd: string): string {
  return execFileSync("bash", ["-c", source], { cwd, env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env }, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
}

/** Runs a script the way Sluice does: rewritten, the values in the environment. */
function runBound(lines: readonly string[], values: readonly string[], cwd: string): string {
  const r = bindShellReferences(lines);
  if (!r.ok) throw new Error(`refused: ${r.message}\n${lines.join("\n")}`);
  const env: Record<string, string> = {};
  for (const ref of r.references) {
    const k = KEYS.findIndex((key) => ref.reference === `#{ns.${key}}`);
    env[ref.envName] = values[k] ?? "";
  }
  return bash(r.pieces.join("\n"), env, cwd);
}

const dir = mkdtempSync(path.join(tmpdir(), "sluice-shellrefs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("shell references run by bash", () => {
  it("print what pasting a safe value into the text prints", () => {
    const safeValue = text("abcXYZ019 ._:/=+-", 8);
    fc.assert(
      fc.property(script(false), fc.tuple(safeValue, safeValue, safeValue), (lines, values) => {
        const pieces = lines.map((l) => l.script);
        const pasted = pieces.map((p) => p.replace(/#\{ns\.k(\d)\}/g, (_m, k: string) => values[Number(k)] ?? ""));
        expect(runBound(pieces, values, dir)).toBe(bash(pasted.join("\n"), {}, dir));
      }),
      { numRuns: 30 },
    );
  });

  it("print hostile values literally and never run them", () => {
    const marker = path.join(dir, "pwned");
    const hostile = fc
      .array(fc.constantFrom(`$(touch ${marker})`, `\`touch ${marker}\``, `"; touch ${marker}; "`, `'; touch ${marker}; '`, "\n", "\\", "*", " ", "$HOME", "'", '"', "x"), {
        maxLength: 5,
      })
      .map((a) => a.join(""));
    fc.assert(
      fc.property(script(true), fc.tuple(hostile, hostile, hostile), (lines, values) => {
        const out = runBound(
          lines.map((l) => l.script),
          values,
          dir,
        );
        expect(out).toBe(lines.map((l) => l.expected?.(values) ?? "").join(""));
        expect(existsSync(marker)).toBe(false);
      }),
      { numRuns: 30 },
    );
  });
});
