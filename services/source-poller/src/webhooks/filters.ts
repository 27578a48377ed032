import { query } from "jsonpath-rfc9535";
import type { JsonValue } from "jsonpath-rfc9535";
import parseJsonPath from "jsonpath-rfc9535/parser";

/**
 * Why a JSONPath does not parse, or undefined when it does. The library (RFC 9535, a PEG parser
 * and an interpreter, no dependencies) never evaluates code, whatever the expression holds.
 */
export function jsonPathError(path: string): string | undefined {
  try {
    parseJsonPath(path);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** `{Key}` replaced by the action's configuration value of Key; unknown keys stay as written. */
export function substituteConfiguration(matchEquals: string, configuration: Readonly<Record<string, string>>): string {
  return matchEquals.replace(/\{([A-Za-z0-9_-]{1,50})\}/g, (whole, key: string) => (Object.hasOwn(configuration, key) ? (configuration[key] ?? whole) : whole));
}

/** The first filter that does not match, with why; undefined when all match. */
export function firstUnmatchedFilter(
  filters: readonly { jsonPath: string; matchEquals: string }[],
  payload: unknown,
  configuration: Readonly<Record<string, string>>,
): { index: number; reason: string } | undefined {
  for (const [index, f] of filters.entries()) {
    let values: JsonValue[];
    try {
      values = query(payload as JsonValue, f.jsonPath);
    } catch (err) {
      return { index, reason: `filters[${index}] ${f.jsonPath} could not be applied: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (values.length === 0) return { index, reason: `filters[${index}] ${f.jsonPath} selects nothing in the payload` };
    if (f.matchEquals === "") continue;
    const expected = substituteConfiguration(f.matchEquals, configuration);
    if (!values.some((v) => scalarText(v) === expected)) {
      const got = values.slice(0, 3).map((v) => clip(JSON.stringify(v))).join(", ");
      return { index, reason: `filters[${index}] ${f.jsonPath} is ${got}, not ${JSON.stringify(expected)}` };
    }
  }
  return undefined;
}

/** Strings compare as they are, numbers and booleans by their JSON text (AWS matches text). */
function scalarText(v: JsonValue): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

function clip(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}...` : text;
}
