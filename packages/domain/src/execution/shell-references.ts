// Variable references in shell scripts (a Commands action's `commands`, its
// `Commands` configuration value, a Commands rule's `commands`) must never be
// pasted into the script text: a commit message `$(touch /tmp/pwned)` would
// run. Instead each `#{namespace.key}` becomes a parameter expansion of a
// runner-generated variable (`${SLUICE_REF_1}`) and the value travels in the
// job's environment, so bash expands it as data and never parses it.
//
// Whether `${NAME}` keeps the script's meaning depends on the quoting context
// of the reference, which this module finds with a small lexer of bash's
// quoting rules. Contexts where an expansion cannot stand in for the text (a
// quoted heredoc, `$'…'`, backquotes, `${…}`, arithmetic) are refused rather
// than guessed.

import { VARIABLE_REFERENCE } from "../limits.js";

/** A well-formed reference, as resolved by `resolveValue`, matched where the lexer stands. */
const REFERENCE = new RegExp(VARIABLE_REFERENCE.source, "y");

/** Environment names starting with this belong to the runner; user variables may not use it. */
export const RESERVED_ENV_PREFIX = "SLUICE_";
/** Names of the variables that carry reference values: SLUICE_REF_1, SLUICE_REF_2, … */
export const REFERENCE_ENV_PREFIX = `${RESERVED_ENV_PREFIX}REF_`;

/** One distinct reference of a script and the variable that carries its value. */
export interface ShellReference {
  /** As written, e.g. `#{SourceVariables.CommitMessage}`. */
  reference: string;
  envName: string;
  /** Index of the piece where it first appears. */
  piece: number;
}

export type BoundScript =
  | { ok: true; pieces: string[]; references: ShellReference[] }
  /** `piece`: index of the script piece (command) holding the problem. */
  | { ok: false; piece: number; message: string };

type Frame =
  /** Unquoted text: the script itself, or the inside of `$(…)`. */
  | { kind: "cmd"; closesOnParen: boolean; parens: number; cases: number }
  /** Inside "…", or the body of a heredoc with an unquoted delimiter. */
  | { kind: "dq"; heredoc?: { delimiter: string; stripTabs: boolean } }
  /** Inside `${…}`. */
  | { kind: "param" }
  /** Inside `$((…))`, `((…))` or `$[…]`. */
  | { kind: "arith"; close: "))" | "]"; parens: number };

interface PendingHeredoc {
  delimiter: string;
  quoted: boolean;
  stripTabs: boolean;
}

class Refusal extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

const METACHARS = " \t\n;&|()<>";

/**
 * Rewrites the references of a script given as pieces joined by newlines (the
 * way the runner writes `commands`), returning the rewritten pieces and the
 * variables to set. Outside quotes and inside double quotes a reference
 * becomes `${NAME}` (expanded like the text it replaces, word splitting
 * included, but never re-parsed); inside single quotes `'"${NAME}"'`. A
 * reference inside a comment is left as it is and needs no value.
 */
export function bindShellReferences(pieces: readonly string[]): BoundScript {
  const text = pieces.join("\n");
  const starts: number[] = [];
  let at = 0;
  for (const p of pieces) {
    starts.push(at);
    at += p.length + 1;
  }
  const pieceOf = (offset: number): number => {
    let i = 0;
    while (i + 1 < starts.length && (starts[i + 1] ?? Infinity) <= offset) i++;
    return i;
  };

  const names = new Map<string, string>();
  const firstPiece = new Map<string, number>();
  const edits: { start: number; end: number; replacement: string }[] = [];
  const bind = (start: number, reference: string, singleQuoted: boolean): void => {
    let name = names.get(reference);
    if (name === undefined) {
      name = `${REFERENCE_ENV_PREFIX}${names.size + 1}`;
      names.set(reference, name);
      firstPiece.set(reference, pieceOf(start));
    }
    edits.push({ start, end: start + reference.length, replacement: singleQuoted ? `'"\${${name}}"'` : `\${${name}}` });
  };

  try {
    lex(text, bind);
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, piece: pieceOf(err.offset), message: err.message };
    throw err;
  }

  const out = pieces.map((p) => p);
  // Right to left, so earlier offsets stay valid.
  for (const edit of edits.reverse()) {
    const i = pieceOf(edit.start);
    const base = starts[i] ?? 0;
    const piece = out[i] ?? "";
    out[i] = piece.slice(0, edit.start - base) + edit.replacement + piece.slice(edit.end - base);
  }
  return { ok: true, pieces: out, references: [...names].map(([reference, envName]) => ({ reference, envName, piece: firstPiece.get(reference) ?? 0 })) };
}

/** The reference starting at `i`, if any. */
function referenceAt(text: string, i: number): string | undefined {
  if (text[i] !== "#") return undefined;
  REFERENCE.lastIndex = i;
  return REFERENCE.exec(text)?.[0];
}

function lex(text: string, bind: (start: number, reference: string, singleQuoted: boolean) => void): void {
  const stack: Frame[] = [{ kind: "cmd", closesOnParen: false, parens: 0, cases: 0 }];
  const pending: PendingHeredoc[] = [];
  let i = 0;

  /** A reference where an expansion cannot stand in for it. */
  const refuse = (offset: number, reference: string, why: string): never => {
    throw new Refusal(offset, `variable ${reference} ${why}; Sluice passes variables to the shell as environment variables and cannot do so here`);
  };
  /** Whether an enclosing `${…}` or arithmetic would re-read the value. */
  const enclosing = (): string | undefined => {
    for (const f of stack) {
      if (f.kind === "param") return "is inside ${…}";
      if (f.kind === "arith") return "is inside an arithmetic expression, which would evaluate its value as code";
    }
    return undefined;
  };
  const bindHere = (start: number, reference: string, singleQuoted: boolean): void => {
    const why = enclosing();
    if (why !== undefined) refuse(start, reference, why);
    bind(start, reference, singleQuoted);
  };

  /** Backslash: refuses `\#{…}` (is it an escape of the reference?), else skips the escaped char. */
  const backslash = (): void => {
    const ref = referenceAt(text, i + 1);
    if (ref !== undefined) refuse(i + 1, ref, "follows a backslash");
    i += 2;
  };

  /** Single-quoted text from the opening quote; references inside are bound. */
  const singleQuoted = (): void => {
    i++;
    while (i < text.length && text[i] !== "'") {
      const ref = referenceAt(text, i);
      if (ref !== undefined) {
        bindHere(i, ref, true);
        i += ref.length;
      } else i++;
    }
    i++;
  };

  /** Text that reaches the end of `close` without expansions Sluice could use: refuse references in it. */
  const opaque = (close: string, escapes: boolean, why: string): void => {
    while (i < text.length && text[i] !== close) {
      if (escapes && text[i] === "\\") {
        i += 2;
        continue;
      }
      const ref = referenceAt(text, i);
      if (ref !== undefined) refuse(i, ref, why);
      i++;
    }
    i++;
  };

  /** `$` in an expanding context: opens `$(…)`, `$((…))`, `${…}`, `$[…]`, `$'…'`, `$"…"`, or is a parameter. */
  const dollar = (inDoubleQuotes: boolean): void => {
    const next = text[i + 1];
    const ref = referenceAt(text, i + 1);
    if (ref !== undefined) refuse(i + 1, ref, "follows a $");
    if (next === "(" && text[i + 2] === "(") {
      stack.push({ kind: "arith", close: "))", parens: 0 });
      i += 3;
    } else if (next === "(") {
      stack.push({ kind: "cmd", closesOnParen: true, parens: 0, cases: 0 });
      i += 2;
    } else if (next === "{") {
      stack.push({ kind: "param" });
      i += 2;
    } else if (next === "[") {
      stack.push({ kind: "arith", close: "]", parens: 0 });
      i += 2;
    } else if (next === "'" && !inDoubleQuotes) {
      i += 2;
      opaque("'", true, "is inside $'…'");
    } else if (next === '"' && !inDoubleQuotes) {
      stack.push({ kind: "dq" });
      i += 2;
    } else {
      i++;
    }
  };

  const backquote = (): void => {
    i++;
    opaque("`", true, "is inside backquotes (use $(…) instead)");
  };

  /** `<<` / `<<-` followed by its delimiter word; the body is read at the end of the line. */
  const heredocOperator = (): void => {
    i += 2;
    let stripTabs = false;
    if (text[i] === "-") {
      stripTabs = true;
      i++;
    }
    while (text[i] === " " || text[i] === "\t") i++;
    let delimiter = "";
    let quoted = false;
    while (i < text.length && !METACHARS.includes(text[i] ?? "")) {
      const c = text[i] ?? "";
      if (c === "'" || c === '"') {
        quoted = true;
        const end = text.indexOf(c, i + 1);
        const stop = end < 0 ? text.length : end;
        delimiter += text.slice(i + 1, stop);
        i = stop + 1;
      } else if (c === "\\") {
        quoted = true;
        delimiter += text[i + 1] ?? "";
        i += 2;
      } else {
        delimiter += c;
        i++;
      }
    }
    pending.push({ delimiter, quoted, stripTabs });
  };

  /** Called at the start of a line: the line ends the heredoc when it is its delimiter. */
  const isDelimiterLine = (delimiter: string, stripTabs: boolean): number | undefined => {
    const eol = text.indexOf("\n", i);
    const end = eol < 0 ? text.length : eol;
    let line = text.slice(i, end);
    if (stripTabs) line = line.replace(/^\t+/, "");
    return line === delimiter ? end : undefined;
  };

  /** Starts the bodies of the heredocs opened on the line just ended. */
  const heredocBodies = (): void => {
    const doc = pending.shift();
    if (doc === undefined) return;
    if (doc.quoted) {
      for (;;) {
        if (i >= text.length) return;
        const end = isDelimiterLine(doc.delimiter, doc.stripTabs);
        if (end !== undefined) {
          i = end + 1;
          break;
        }
        const eol = text.indexOf("\n", i);
        const stop = eol < 0 ? text.length : eol;
        for (let j = i; j < stop; j++) {
          const ref = referenceAt(text, j);
          if (ref !== undefined) refuse(j, ref, `is inside a heredoc with a quoted delimiter (<<'${doc.delimiter}'), whose text is never expanded`);
        }
        i = stop + 1;
      }
      heredocBodies();
      return;
    }
    const end = isDelimiterLine(doc.delimiter, doc.stripTabs);
    if (end !== undefined) {
      i = end + 1;
      heredocBodies();
      return;
    }
    stack.push({ kind: "dq", heredoc: { delimiter: doc.delimiter, stripTabs: doc.stripTabs } });
  };

  const wordStart = (): boolean => i === 0 || METACHARS.includes(text[i - 1] ?? "");
  /** Whether a command may start at `i` (where `case` is a keyword rather than an argument). */
  const commandPosition = (): boolean => {
    let j = i - 1;
    while (j >= 0 && (text[j] === " " || text[j] === "\t")) j--;
    if (j < 0 || "\n;&|({".includes(text[j] ?? "")) return true;
    const before = /(?:^|[\s;&|(])([a-z]+)$/.exec(text.slice(Math.max(0, j - 8), j + 1))?.[1];
    return before === "then" || before === "do" || before === "else";
  };
  const keywordAt = (word: string): boolean =>
    wordStart() &&
    text.startsWith(word, i) &&
    (i + word.length >= text.length || METACHARS.includes(text[i + word.length] ?? "")) &&
    commandPosition();

  while (i < text.length) {
    const frame = stack[stack.length - 1];
    if (frame === undefined) break;
    const c = text[i];
    const ref = referenceAt(text, i);

    if (frame.kind === "dq") {
      if (ref !== undefined) {
        bindHere(i, ref, false);
        i += ref.length;
      } else if (c === '"' && frame.heredoc === undefined) {
        stack.pop();
        i++;
      } else if (c === "\\") backslash();
      else if (c === "$") dollar(true);
      else if (c === "`") backquote();
      else if (c === "\n" && frame.heredoc !== undefined) {
        i++;
        const end = isDelimiterLine(frame.heredoc.delimiter, frame.heredoc.stripTabs);
        if (end !== undefined) {
          stack.pop();
          i = end + 1;
          heredocBodies();
        }
      } else i++;
      continue;
    }

    if (frame.kind === "arith") {
      if (ref !== undefined) refuse(i, ref, "is inside an arithmetic expression, which would evaluate its value as code");
      if (frame.close === "))" && c === ")" && frame.parens === 0 && text[i + 1] === ")") {
        stack.pop();
        i += 2;
      } else if (frame.close === "]" && c === "]") {
        stack.pop();
        i++;
      } else if (c === "(") {
        frame.parens++;
        i++;
      } else if (c === ")") {
        if (frame.parens > 0) frame.parens--;
        i++;
      } else if (c === "'") singleQuoted();
      else if (c === '"') {
        stack.push({ kind: "dq" });
        i++;
      } else if (c === "\\") backslash();
      else if (c === "$") dollar(false);
      else if (c === "`") backquote();
      else i++;
      continue;
    }

    if (frame.kind === "param") {
      if (ref !== undefined) refuse(i, ref, "is inside ${…}");
      if (c === "}") {
        stack.pop();
        i++;
      } else if (c === "'") singleQuoted();
      else if (c === '"') {
        stack.push({ kind: "dq" });
        i++;
      } else if (c === "\\") backslash();
      else if (c === "$") dollar(false);
      else if (c === "`") backquote();
      else i++;
      continue;
    }

    // frame.kind === "cmd"
    if (ref !== undefined) {
      bindHere(i, ref, false);
      i += ref.length;
    } else if (c === "#" && wordStart()) {
      const eol = text.indexOf("\n", i);
      i = eol < 0 ? text.length : eol;
    } else if (c === "'") singleQuoted();
    else if (c === '"') {
      stack.push({ kind: "dq" });
      i++;
    } else if (c === "\\") backslash();
    else if (c === "$") dollar(false);
    else if (c === "`") backquote();
    else if (c === "(" && text[i + 1] === "(") {
      stack.push({ kind: "arith", close: "))", parens: 0 });
      i += 2;
    } else if (c === "(") {
      frame.parens++;
      i++;
    } else if (c === ")") {
      // Inside `case … esac` a `)` ends a pattern, not a `$(…)`.
      if (frame.parens > 0) frame.parens--;
      else if (frame.closesOnParen && frame.cases === 0) stack.pop();
      i++;
    } else if (c === "<" && text[i + 1] === "<" && text[i + 2] !== "<") heredocOperator();
    else if (c === "<" && text[i + 1] === "<") i += 3;
    else if (c === "\n") {
      i++;
      heredocBodies();
    } else if (keywordAt("case")) {
      frame.cases++;
      i += 4;
    } else if (keywordAt("esac")) {
      if (frame.cases > 0) frame.cases--;
      i += 4;
    } else i++;
  }
}
