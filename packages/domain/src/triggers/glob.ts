// Glob patterns of pipeline triggers, as AWS CodePipeline documents them for tags, branches
// and file paths: `*` any run of characters within one `/`-separated segment, `**` any run
// across segments, `?` one character (not `/`), `[...]` one character of a set (`[!...]` or
// `[^...]` negated, `a-z` ranges), `{a,b}` alternatives (no nesting), `\` takes the next
// character literally. `**/` also matches no directory at all, so `**/*.ts` matches `a.ts`.
//
// Matching runs over a compiled token list with a memo table, never through RegExp, so a
// hostile pattern (`*a*a*a*...`) costs at most pattern × value steps.

/** Braces expand to at most this many alternatives per pattern (8 patterns × this is the worst case). */
const MAX_EXPANSIONS = 256;

type Token =
  | { kind: "char"; c: string }
  | { kind: "any" } // ?
  | { kind: "star" } // *
  | { kind: "globstar"; slash: boolean } // ** (slash: written `**/`, which may also match nothing)
  | { kind: "class"; negated: boolean; items: readonly (readonly [string, string])[] };

/** A pattern ready to match; `compileGlob` gives one or says what is wrong. */
export interface CompiledGlob {
  readonly pattern: string;
  readonly alternatives: readonly (readonly Token[])[];
}

export type GlobCompileResult = { ok: true; glob: CompiledGlob } | { ok: false; problem: string };

/** Compiles a pattern, or names the first syntax problem (used by validation). */
export function compileGlob(pattern: string): GlobCompileResult {
  const expanded = expandBraces(pattern);
  if (typeof expanded === "string") return { ok: false, problem: expanded };
  const alternatives: Token[][] = [];
  for (const alt of expanded) {
    const tokens = tokenize(alt);
    if (typeof tokens === "string") return { ok: false, problem: tokens };
    alternatives.push(tokens);
  }
  return { ok: true, glob: { pattern, alternatives } };
}

/** The syntax problem of a pattern, or undefined when it compiles. */
export function globProblem(pattern: string): string | undefined {
  const r = compileGlob(pattern);
  return r.ok ? undefined : r.problem;
}

const cache = new Map<string, CompiledGlob | string>();

/**
 * Whether `value` matches `pattern` as a whole. A pattern with a syntax error matches
 * nothing (validation refuses such patterns before they are stored).
 */
export function globMatch(pattern: string, value: string): boolean {
  let compiled = cache.get(pattern);
  if (compiled === undefined) {
    const r = compileGlob(pattern);
    compiled = r.ok ? r.glob : r.problem;
    if (cache.size > 1000) cache.clear();
    cache.set(pattern, compiled);
  }
  if (typeof compiled === "string") return false;
  return compiled.alternatives.some((tokens) => matchTokens(tokens, value));
}

/**
 * Splits `{a,b}` groups into whole alternative patterns. Escapes are kept as written (the
 * tokenizer reads them), so `\{` is never a group. Returns a problem string on bad syntax.
 */
function expandBraces(pattern: string): string[] | string {
  let results = [""];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === "\\") {
      if (i + 1 >= pattern.length) return "ends with a lone \\ (escape a character, or write \\\\)";
      const pair = pattern.slice(i, i + 2);
      results = results.map((r) => r + pair);
      i += 2;
      continue;
    }
    if (c === "[") {
      // A class is copied whole so a `{` or `,` inside it is a member, not syntax.
      const end = classEnd(pattern, i);
      if (end < 0) return `the [ at position ${i + 1} is not closed`;
      const cls = pattern.slice(i, end + 1);
      results = results.map((r) => r + cls);
      i = end + 1;
      continue;
    }
    if (c === "}") return `the } at position ${i + 1} has no opening {`;
    if (c !== "{") {
      results = results.map((r) => r + c);
      i++;
      continue;
    }
    const options: string[] = [];
    let current = "";
    let j = i + 1;
    let closed = false;
    while (j < pattern.length) {
      const d = pattern[j] as string;
      if (d === "\\") {
        if (j + 1 >= pattern.length) return "ends with a lone \\ (escape a character, or write \\\\)";
        current += pattern.slice(j, j + 2);
        j += 2;
        continue;
      }
      if (d === "[") {
        const end = classEnd(pattern, j);
        if (end < 0) return `the [ at position ${j + 1} is not closed`;
        current += pattern.slice(j, end + 1);
        j = end + 1;
        continue;
      }
      if (d === "{") return `the { at position ${j + 1} is inside another {...}; alternatives do not nest`;
      if (d === ",") {
        options.push(current);
        current = "";
        j++;
        continue;
      }
      if (d === "}") {
        options.push(current);
        closed = true;
        break;
      }
      current += d;
      j++;
    }
    if (!closed) return `the { at position ${i + 1} is not closed`;
    const next: string[] = [];
    for (const r of results) for (const o of options) next.push(r + o);
    if (next.length > MAX_EXPANSIONS) return `expands to more than ${MAX_EXPANSIONS} alternatives`;
    results = next;
    i = j + 1;
  }
  return results;
}

/** Index of the `]` closing the class opened at `start`, or -1. A `]` right after `[`, `[!` or `[^` is a member. */
function classEnd(pattern: string, start: number): number {
  let j = start + 1;
  if (pattern[j] === "!" || pattern[j] === "^") j++;
  if (pattern[j] === "]") j++;
  while (j < pattern.length) {
    if (pattern[j] === "\\") j += 2;
    else if (pattern[j] === "]") return j;
    else j++;
  }
  return -1;
}

function tokenize(pattern: string): Token[] | string {
  const tokens: Token[] = [];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === "\\") {
      tokens.push({ kind: "char", c: pattern[i + 1] as string });
      i += 2;
    } else if (c === "?") {
      tokens.push({ kind: "any" });
      i++;
    } else if (c === "*") {
      if (pattern[i + 1] === "*") {
        let j = i + 2;
        while (pattern[j] === "*") j++;
        const slash = pattern[j] === "/";
        tokens.push({ kind: "globstar", slash });
        i = slash ? j + 1 : j;
      } else {
        tokens.push({ kind: "star" });
        i++;
      }
    } else if (c === "[") {
      const end = classEnd(pattern, i);
      if (end < 0) return `the [ at position ${i + 1} is not closed`;
      const cls = parseClass(pattern.slice(i + 1, end));
      if (typeof cls === "string") return cls;
      tokens.push(cls);
      i = end + 1;
    } else {
      tokens.push({ kind: "char", c });
      i++;
    }
  }
  return tokens;
}

function parseClass(body: string): Token | string {
  let negated = false;
  let k = 0;
  if (body[0] === "!" || body[0] === "^") {
    negated = true;
    k = 1;
  }
  const chars: string[] = [];
  while (k < body.length) {
    if (body[k] === "\\") {
      chars.push(body[k + 1] as string);
      k += 2;
    } else {
      chars.push(body[k] as string);
      k++;
    }
  }
  if (chars.length === 0) return "a [...] set is empty";
  const items: (readonly [string, string])[] = [];
  for (let m = 0; m < chars.length; m++) {
    const lo = chars[m] as string;
    // A `-` first or last is a member; between two characters it makes a range.
    if (chars[m + 1] === "-" && m + 2 < chars.length) {
      const hi = chars[m + 2] as string;
      if (hi < lo) return `the range ${lo}-${hi} in [...] is reversed`;
      items.push([lo, hi]);
      m += 2;
    } else {
      items.push([lo, lo]);
    }
  }
  return { kind: "class", negated, items };
}

/** Whole-value match of one alternative; memoized on (token, position), so O(tokens × value). */
function matchTokens(tokens: readonly Token[], value: string): boolean {
  const memo = new Map<number, boolean>();
  const width = value.length + 1;
  const at = (t: number, s: number): boolean => {
    if (t === tokens.length) return s === value.length;
    const key = t * width + s;
    const known = memo.get(key);
    if (known !== undefined) return known;
    const result = step(t, s);
    memo.set(key, result);
    return result;
  };
  const step = (t: number, s: number): boolean => {
    const token = tokens[t] as Token;
    switch (token.kind) {
      case "char":
        return value[s] === token.c && at(t + 1, s + 1);
      case "any":
        return s < value.length && value[s] !== "/" && at(t + 1, s + 1);
      case "class": {
        const ch = value[s];
        if (ch === undefined || ch === "/") return false;
        const inSet = token.items.some(([lo, hi]) => ch >= lo && ch <= hi);
        return inSet !== token.negated && at(t + 1, s + 1);
      }
      case "star":
        // Zero characters, or one more non-`/` character.
        return at(t + 1, s) || (s < value.length && value[s] !== "/" && at(t, s + 1));
      case "globstar":
        if (token.slash) {
          // `**/`: nothing at all, or anything that ends with a `/`.
          if (at(t + 1, s)) return true;
          for (let e = s; e < value.length; e++) if (value[e] === "/" && at(t + 1, e + 1)) return true;
          return false;
        }
        for (let e = s; e <= value.length; e++) if (at(t + 1, e)) return true;
        return false;
    }
  };
  // Recursion goes at most tokens + value length deep: fine for refs and paths.
  return at(0, 0);
}
