// Linear-time regular expressions for the VariableCheck rule's MATCHES operator.
//
// The pattern comes from the pipeline author and the subject from a variable
// (a commit message may hold 100 KB written by anyone who can push), and the
// check runs inside decide(), on the orchestrator's event loop. JavaScript's
// backtracking RegExp can take exponential time on patterns as ordinary as
// `(\w+\s?)+$`, which would stall every pipeline of the orchestrator. So
// MATCHES compiles the pattern itself into a Thompson NFA and runs it as a
// Pike VM: time O(subject length × program size), no backtracking.
//
// The syntax is the common subset of Java's (AWS evaluates MATCHES with
// java.util.regex) and JavaScript's: literals, `.`, classes with ranges and
// negation, `\d \D \w \W \s \S`, character escapes, groups (plain,
// non-capturing, named), alternation, `* + ? {n} {n,} {n,m}` (greedy or
// lazy; for a yes/no answer they are the same), and `^ $` anchors.
// Backreferences, lookaround, possessive and atomic groups, inline flags,
// class intersections and Unicode properties are refused with a message
// naming them. Like Java's `String.matches`, the whole value must match.

import { MAX_PATTERN_PROGRAM, MAX_PATTERN_REPEAT } from "../limits.js";

/** A compiled pattern: `matches` tells whether the whole input matches. */
export interface SafePattern {
  matches(input: string): boolean;
}

/** The outcome of compiling a pattern. */
export type SafePatternResult = { ok: true; pattern: SafePattern } | { ok: false; message: string };

type CharTest = (cp: number) => boolean;

type Node =
  | { t: "empty" }
  | { t: "char"; test: CharTest }
  | { t: "assert"; kind: "start" | "end" }
  | { t: "cat"; items: Node[] }
  | { t: "alt"; options: Node[] }
  | { t: "repeat"; node: Node; min: number; max: number };

type Inst =
  | { op: "char"; test: CharTest; next: number }
  | { op: "split"; a: number; b: number }
  | { op: "jmp"; to: number }
  | { op: "assert"; kind: "start" | "end"; next: number }
  | { op: "match" };

class PatternError extends Error {}

const isDigit: CharTest = (c) => c >= 0x30 && c <= 0x39;
const isWord: CharTest = (c) => isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
// Java's \s: [ \t\n\x0B\f\r].
const isSpace: CharTest = (c) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
// Java's `.` stops at line terminators.
const isLineTerminator: CharTest = (c) => c === 0x0a || c === 0x0d || c === 0x85 || c === 0x2028 || c === 0x2029;
const not =
  (test: CharTest): CharTest =>
  (c) =>
    !test(c);

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = { t: 0x09, n: 0x0a, r: 0x0d, f: 0x0c, a: 0x07, e: 0x1b };
const CLASS_ESCAPES: Readonly<Record<string, CharTest>> = {
  d: isDigit,
  D: not(isDigit),
  w: isWord,
  W: not(isWord),
  s: isSpace,
  S: not(isSpace),
};

class Parser {
  private pos = 0;
  constructor(private readonly cps: readonly number[]) {}

  parse(): Node {
    const node = this.alt();
    if (this.pos < this.cps.length) throw this.error(`unmatched ")"`);
    return node;
  }

  private error(message: string): PatternError {
    return new PatternError(`${message} at position ${this.pos}`);
  }

  private peek(offset = 0): string | undefined {
    const cp = this.cps[this.pos + offset];
    return cp === undefined ? undefined : String.fromCodePoint(cp);
  }

  private alt(): Node {
    const options = [this.cat()];
    while (this.peek() === "|") {
      this.pos++;
      options.push(this.cat());
    }
    return options.length === 1 && options[0] !== undefined ? options[0] : { t: "alt", options };
  }

  private cat(): Node {
    const items: Node[] = [];
    for (let c = this.peek(); c !== undefined && c !== "|" && c !== ")"; c = this.peek()) items.push(this.repeat());
    if (items.length === 0) return { t: "empty" };
    return items.length === 1 && items[0] !== undefined ? items[0] : { t: "cat", items };
  }

  private repeat(): Node {
    let node = this.atom();
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === "*") [min, max] = [0, Infinity];
      else if (c === "+") [min, max] = [1, Infinity];
      else if (c === "?") [min, max] = [0, 1];
      else if (c === "{") [min, max] = this.bounds();
      else return node;
      if (c !== "{") this.pos++;
      if (node.t === "assert") throw this.error("an anchor cannot be repeated");
      const mode = this.peek();
      if (mode === "?") this.pos++; // lazy: the same yes/no answer
      else if (mode === "+") throw this.error("possessive quantifiers are not supported");
      const next = this.peek();
      if (next === "*" || next === "+" || next === "?" || next === "{") throw this.error("a quantifier cannot follow a quantifier");
      node = { t: "repeat", node, min, max };
    }
  }

  /** `{n}`, `{n,}`, `{n,m}`; the position is at `{`. */
  private bounds(): [number, number] {
    this.pos++;
    const min = this.number();
    if (min === undefined) throw this.error(`"{" must start a repetition {n}, {n,} or {n,m}; write \\{ for the character`);
    let max = min;
    if (this.peek() === ",") {
      this.pos++;
      max = this.number() ?? Infinity;
    }
    if (this.peek() !== "}") throw this.error('unterminated repetition: expected "}"');
    this.pos++;
    if (min > MAX_PATTERN_REPEAT || (max !== Infinity && max > MAX_PATTERN_REPEAT)) throw this.error(`repetition bounds are at most ${MAX_PATTERN_REPEAT}`);
    if (max < min) throw this.error(`repetition {${min},${max}} has its bounds the wrong way round`);
    return [min, max];
  }

  private number(): number | undefined {
    let digits = "";
    for (let c = this.peek(); c !== undefined && c >= "0" && c <= "9"; c = this.peek()) {
      digits += c;
      this.pos++;
      if (digits.length > 6) throw this.error("repetition bound too large");
    }
    return digits === "" ? undefined : Number(digits);
  }

  private atom(): Node {
    const c = this.peek();
    if (c === undefined) throw this.error("unexpected end of pattern");
    this.pos++;
    switch (c) {
      case "(":
        return this.group();
      case "[":
        return { t: "char", test: this.charClass() };
      case ".":
        return { t: "char", test: not(isLineTerminator) };
      case "^":
        return { t: "assert", kind: "start" };
      case "$":
        return { t: "assert", kind: "end" };
      case "\\": {
        const e = this.escape();
        return { t: "char", test: typeof e === "number" ? (x) => x === e : e };
      }
      case "*":
      case "+":
      case "?":
      case "{":
        this.pos--;
        throw this.error(`nothing to repeat before "${c}"`);
      default: {
        const cp = c.codePointAt(0) ?? 0;
        return { t: "char", test: (x) => x === cp };
      }
    }
  }

  private group(): Node {
    if (this.peek() === "?") {
      const kind = this.peek(1);
      const after = this.peek(2);
      if (kind === ":") {
        this.pos += 2;
      } else if (kind === "<" && after !== undefined && /[A-Za-z]/.test(after)) {
        // Named group: the name only labels a capture, which MATCHES does not use.
        this.pos += 2;
        while (this.peek() !== undefined && /[A-Za-z0-9]/.test(this.peek() ?? "")) this.pos++;
        if (this.peek() !== ">") throw this.error('unterminated group name: expected ">"');
        this.pos++;
      } else if (kind === "=" || kind === "!" || (kind === "<" && (after === "=" || after === "!"))) {
        throw this.error("lookahead and lookbehind are not supported");
      } else if (kind === ">") {
        throw this.error("atomic groups are not supported");
      } else {
        throw this.error("inline flags and other (? groups are not supported");
      }
    }
    const node = this.alt();
    if (this.peek() !== ")") throw this.error('unterminated group: expected ")"');
    this.pos++;
    return node;
  }

  /** After `[`: the class up to its `]`. */
  private charClass(): CharTest {
    let negate = false;
    if (this.peek() === "^") {
      negate = true;
      this.pos++;
    }
    const parts: CharTest[] = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) throw this.error('unterminated character class: expected "]"');
      if (c === "]" && !first) {
        this.pos++;
        break;
      }
      if (c === "]") throw this.error('empty character class; write \\] for the character');
      if (c === "[") throw this.error("nested character classes are not supported");
      if (c === "&" && this.peek(1) === "&") throw this.error("character class intersections (&&) are not supported");
      first = false;
      const low = this.classAtom();
      if (this.peek() === "-" && this.peek(1) !== "]" && this.peek(1) !== undefined) {
        this.pos++;
        const high = this.classAtom();
        if (typeof low !== "number" || typeof high !== "number") throw this.error("a range needs a single character at each end");
        if (high < low) throw this.error("a range has its ends the wrong way round");
        parts.push((x) => x >= low && x <= high);
      } else {
        parts.push(typeof low === "number" ? (x) => x === low : low);
      }
    }
    const test: CharTest = (x) => parts.some((p) => p(x));
    return negate ? not(test) : test;
  }

  /** One class member: a code point, or a class escape (\d, \w, \s and their negations). */
  private classAtom(): number | CharTest {
    const c = this.peek();
    if (c === undefined) throw this.error('unterminated character class: expected "]"');
    this.pos++;
    return c === "\\" ? this.escape() : (c.codePointAt(0) ?? 0);
  }

  /** After `\`: a class escape (a test) or a character escape (its code point). */
  private escape(): number | CharTest {
    const e = this.peek();
    if (e === undefined) throw this.error("the pattern ends with a lone backslash");
    this.pos++;
    const classEscape = Object.hasOwn(CLASS_ESCAPES, e) ? CLASS_ESCAPES[e] : undefined;
    if (classEscape !== undefined) return classEscape;
    const simple = Object.hasOwn(SIMPLE_ESCAPES, e) ? SIMPLE_ESCAPES[e] : undefined;
    if (simple !== undefined) return simple;
    if (e === "x") return this.hex(2);
    if (e === "u") return this.hex(4);
    if (/[A-Za-z0-9]/.test(e)) {
      this.pos -= 2; // the message points at the backslash
      throw this.error(`the escape \\${e} is not supported`);
    }
    return e.codePointAt(0) ?? 0;
  }

  private hex(digits: number): number {
    let text = "";
    for (let i = 0; i < digits; i++) {
      const c = this.peek();
      if (c === undefined || !/[0-9A-Fa-f]/.test(c)) throw this.error(`expected ${digits} hex digits`);
      text += c;
      this.pos++;
    }
    return parseInt(text, 16);
  }
}

class Compiler {
  readonly prog: Inst[] = [];

  emit(node: Node): void {
    if (this.prog.length > MAX_PATTERN_PROGRAM) throw new PatternError(`the pattern is too large (more than ${MAX_PATTERN_PROGRAM} steps once repetitions are expanded)`);
    switch (node.t) {
      case "empty":
        return;
      case "char":
        this.prog.push({ op: "char", test: node.test, next: this.prog.length + 1 });
        return;
      case "assert":
        this.prog.push({ op: "assert", kind: node.kind, next: this.prog.length + 1 });
        return;
      case "cat":
        for (const item of node.items) this.emit(item);
        return;
      case "alt": {
        const jumps: { op: "jmp"; to: number }[] = [];
        node.options.forEach((option, i) => {
          if (i < node.options.length - 1) {
            const split: Inst = { op: "split", a: this.prog.length + 1, b: -1 };
            this.prog.push(split);
            this.emit(option);
            const jmp = { op: "jmp" as const, to: -1 };
            jumps.push(jmp);
            this.prog.push(jmp);
            split.b = this.prog.length;
          } else {
            this.emit(option);
          }
        });
        for (const j of jumps) j.to = this.prog.length;
        return;
      }
      case "repeat": {
        for (let i = 0; i < node.min; i++) this.emit(node.node);
        if (node.max === Infinity) {
          const loop = this.prog.length;
          const split: Inst = { op: "split", a: loop + 1, b: -1 };
          this.prog.push(split);
          this.emit(node.node);
          this.prog.push({ op: "jmp", to: loop });
          split.b = this.prog.length;
          return;
        }
        const splits: Extract<Inst, { op: "split" }>[] = [];
        for (let i = node.min; i < node.max; i++) {
          const split: Extract<Inst, { op: "split" }> = { op: "split", a: this.prog.length + 1, b: -1 };
          splits.push(split);
          this.prog.push(split);
          this.emit(node.node);
        }
        for (const s of splits) s.b = this.prog.length;
        return;
      }
    }
  }
}

/** Runs the program over the whole input (Pike VM without captures). */
function run(prog: readonly Inst[], input: string): boolean {
  const cps = Array.from(input, (ch) => ch.codePointAt(0) ?? 0);
  const n = cps.length;
  const mark = new Int32Array(prog.length).fill(-1);
  let generation = 0;
  const add = (list: number[], pc: number, pos: number): void => {
    // Iterative closure over jmp/split/assert; `mark` keeps each instruction once per step.
    const stack = [pc];
    while (stack.length > 0) {
      const at = stack.pop();
      if (at === undefined || mark[at] === generation) continue;
      mark[at] = generation;
      const inst = prog[at];
      if (inst === undefined) continue;
      switch (inst.op) {
        case "jmp":
          stack.push(inst.to);
          break;
        case "split":
          stack.push(inst.b, inst.a);
          break;
        case "assert":
          if ((inst.kind === "start" && pos === 0) || (inst.kind === "end" && pos === n)) stack.push(inst.next);
          break;
        default:
          list.push(at);
      }
    }
  };
  let current: number[] = [];
  add(current, 0, 0);
  for (let pos = 0; pos < n; pos++) {
    if (current.length === 0) return false;
    const cp = cps[pos] ?? 0;
    generation++;
    const next: number[] = [];
    for (const pc of current) {
      const inst = prog[pc];
      if (inst?.op === "char" && inst.test(cp)) add(next, inst.next, pos + 1);
    }
    current = next;
  }
  return current.some((pc) => prog[pc]?.op === "match");
}

/**
 * Compiles `pattern` for whole-value matching in linear time, or says what
 * in it is not supported (the message names the position).
 */
export function compileSafePattern(pattern: string): SafePatternResult {
  try {
    const ast = new Parser(Array.from(pattern, (ch) => ch.codePointAt(0) ?? 0)).parse();
    const compiler = new Compiler();
    compiler.emit(ast);
    compiler.prog.push({ op: "match" });
    if (compiler.prog.length > MAX_PATTERN_PROGRAM + 1) {
      return { ok: false, message: `the pattern is too large (more than ${MAX_PATTERN_PROGRAM} steps once repetitions are expanded)` };
    }
    const prog = compiler.prog;
    return { ok: true, pattern: { matches: (input) => run(prog, input) } };
  } catch (err) {
    if (err instanceof PatternError) return { ok: false, message: err.message };
    throw err;
  }
}
