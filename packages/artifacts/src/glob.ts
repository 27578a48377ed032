import { DomainError } from "@sluice/domain";

/**
 * A compiled path glob. Paths and patterns use `/`; `*` matches any run of characters within one path
 * segment, `?` one character other than `/`, a `**` segment any number of segments (zero included).
 * Everything else is literal — there are no character classes or braces, and no regular expression is
 * ever built from the pattern. `*` also matches names starting with a dot.
 */
export interface Glob {
  readonly pattern: string;
  /** True when the `/`-separated relative path matches. */
  matches(path: string): boolean;
}

/**
 * Compiles a glob relative to a directory. Throws `ValidationException` (field `field`) for an empty,
 * absolute or escaping (`..`) pattern, or one with a backslash or NUL.
 */
export function compileGlob(pattern: string, field = "pattern"): Glob {
  const fail = (message: string): never => {
    throw new DomainError("ValidationException", `${field}: ${message}`, [{ field, message }]);
  };
  if (pattern.includes("\\")) fail(`${JSON.stringify(pattern)} contains a backslash; use "/" as the separator`);
  if (pattern.includes("\0")) fail(`${JSON.stringify(pattern)} contains a NUL character`);
  if (pattern.startsWith("/") || /^[A-Za-z]:/.test(pattern)) fail(`${JSON.stringify(pattern)} must be relative`);
  const segments = pattern.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) fail(`${JSON.stringify(pattern)} must not contain ".."`);
  if (segments.length === 0) fail(`${JSON.stringify(pattern)} is empty`);
  // Split at the `**` segments: "a/**/b/*.js" -> [["a"], ["b", "*.js"]]; "**" -> [[], []].
  const groups: string[][] = [[]];
  for (const seg of segments) {
    if (seg === "**") groups.push([]);
    else groups[groups.length - 1]?.push(seg);
  }
  return { pattern, matches: (path) => matchGroups(groups, path.split("/").filter((s) => s !== "")) };
}

/**
 * The first group is anchored at the start of the path, the last at its end, and every middle group takes
 * its leftmost match: a `**` on each side of it absorbs whatever lies between, so a later match could only
 * leave less room for the groups after it. No backtracking.
 */
function matchGroups(groups: readonly (readonly string[])[], path: readonly string[]): boolean {
  const first = groups[0] ?? [];
  if (groups.length === 1) return first.length === path.length && groupMatchesAt(first, path, 0);
  const last = groups[groups.length - 1] ?? [];
  const end = path.length - last.length;
  if (end < first.length || !groupMatchesAt(first, path, 0) || !groupMatchesAt(last, path, end)) return false;
  let pos = first.length;
  for (let gi = 1; gi < groups.length - 1; gi++) {
    const group = groups[gi] ?? [];
    let found = -1;
    for (let start = pos; start + group.length <= end; start++) {
      if (groupMatchesAt(group, path, start)) {
        found = start;
        break;
      }
    }
    if (found < 0) return false;
    pos = found + group.length;
  }
  return true;
}

function groupMatchesAt(group: readonly string[], path: readonly string[], start: number): boolean {
  if (start + group.length > path.length) return false;
  for (let i = 0; i < group.length; i++) {
    if (!segmentMatches(group[i] ?? "", path[start + i] ?? "")) return false;
  }
  return true;
}

/**
 * `*`/`?` matching of one segment without backtracking blow-up: the pattern is split at `*` into pieces;
 * the first piece anchors at the start, the last at the end, and each middle piece takes its leftmost
 * occurrence (any later occurrence only leaves less room). Worst case O(|pattern| · |name|).
 */
export function segmentMatches(pattern: string, name: string): boolean {
  const pieces = pattern.split("*");
  if (pieces.length === 1) return name.length === pattern.length && pieceAt(pattern, name, 0);
  const head = pieces[0] ?? "";
  const tail = pieces[pieces.length - 1] ?? "";
  if (head.length + tail.length > name.length) return false;
  if (!pieceAt(head, name, 0) || !pieceAt(tail, name, name.length - tail.length)) return false;
  let pos = head.length;
  const end = name.length - tail.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i] ?? "";
    if (piece === "") continue;
    let found = -1;
    for (let start = pos; start + piece.length <= end; start++) {
      if (pieceAt(piece, name, start)) {
        found = start;
        break;
      }
    }
    if (found < 0) return false;
    pos = found + piece.length;
  }
  return true;
}

function pieceAt(piece: string, name: string, start: number): boolean {
  if (start < 0 || start + piece.length > name.length) return false;
  for (let i = 0; i < piece.length; i++) {
    const p = piece[i];
    if (p !== "?" && p !== name[start + i]) return false;
  }
  return true;
}
