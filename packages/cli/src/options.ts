import type { PipelineVariable, SourceRevisionOverride } from "@sluice/proto";
import { UsageError } from "./args.js";

type VariableInit = Pick<PipelineVariable, "name" | "value">;
type SourceRevisionInit = Pick<SourceRevisionOverride, "actionName" | "revisionType" | "revisionValue">;

/**
 * `--variables`: `name=value,name=value`, or the AWS CLI's JSON form
 * `[{"name": "...", "value": "..."}]` (for values with commas).
 */
export function parseVariables(flag: string, spec: string): VariableInit[] {
  if (spec.trimStart().startsWith("[")) {
    return parseJsonList(flag, spec).map((item, i) => ({ name: stringField(flag, item, i, "name"), value: stringField(flag, item, i, "value") }));
  }
  return splitList(spec).map((entry) => {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new UsageError(`--${flag}: "${entry}" is not name=value`);
    return { name: entry.slice(0, eq), value: entry.slice(eq + 1) };
  });
}

/**
 * `--source-revisions`: `actionName=TYPE:value,...` (e.g. `Checkout=COMMIT_ID:4f2a9c1`), or the
 * AWS CLI's JSON form `[{"actionName": "...", "revisionType": "...", "revisionValue": "..."}]`.
 */
export function parseSourceRevisions(flag: string, spec: string): SourceRevisionInit[] {
  if (spec.trimStart().startsWith("[")) {
    return parseJsonList(flag, spec).map((item, i) => ({
      actionName: stringField(flag, item, i, "actionName"),
      revisionType: stringField(flag, item, i, "revisionType"),
      revisionValue: stringField(flag, item, i, "revisionValue"),
    }));
  }
  return splitList(spec).map((entry) => {
    const eq = entry.indexOf("=");
    const colon = entry.indexOf(":", eq + 1);
    if (eq <= 0 || colon < 0) throw new UsageError(`--${flag}: "${entry}" is not actionName=TYPE:value (e.g. Checkout=COMMIT_ID:4f2a9c1)`);
    return { actionName: entry.slice(0, eq), revisionType: entry.slice(eq + 1, colon), revisionValue: entry.slice(colon + 1) };
  });
}

/** A positive integer flag value; the error names the flag. */
export function parseCount(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive integer, got "${value}"`);
  return n;
}

function splitList(spec: string): string[] {
  return spec
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function parseJsonList(flag: string, spec: string): Record<string, unknown>[] {
  let value: unknown;
  try {
    value = JSON.parse(spec);
  } catch (err) {
    throw new UsageError(`--${flag}: not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Array.isArray(value) || !value.every((v): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v))) {
    throw new UsageError(`--${flag}: expected a JSON list of objects`);
  }
  return value;
}

function stringField(flag: string, item: Record<string, unknown>, index: number, key: string): string {
  const v = item[key];
  if (typeof v !== "string") throw new UsageError(`--${flag}[${index}].${key} must be a string`);
  return v;
}
