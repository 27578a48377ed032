// Variable references `#{namespace.key}` in configuration values, resolved
// just before an action starts (AWS: "Variables").

import { VARIABLE_REFERENCE } from "../limits.js";
import { bindShellReferences } from "./shell-references.js";

const REFERENCE = new RegExp(VARIABLE_REFERENCE.source, "g");

/** Outcome of resolving one value. */
export type Resolution = { ok: true; value: string } | { ok: false; reference: string };

/**
 * Replaces every `#{ns.key}` in `value`. `codepipeline.PipelineExecutionId`
 * is always defined; other namespaces come from `variables` (output variables
 * of earlier actions). The first unresolvable reference is reported, so the
 * action fails with a message naming it instead of running with a literal.
 * Text that is not a well-formed reference (e.g. `#{x}`) is left as it is.
 */
export function resolveValue(
  value: string,
  executionId: string,
  variables: Readonly<Record<string, Readonly<Record<string, string>>>>,
): Resolution {
  let missing: string | undefined;
  const out = value.replace(REFERENCE, (whole, ns: string, key: string) => {
    if (ns === "codepipeline" && key === "PipelineExecutionId") return executionId;
    const found = Object.hasOwn(variables, ns) ? variables[ns] : undefined;
    const resolved = found !== undefined && Object.hasOwn(found, key) ? found[key] : undefined;
    if (resolved === undefined) {
      missing ??= whole;
      return whole;
    }
    return resolved;
  });
  return missing === undefined ? { ok: true, value: out } : { ok: false, reference: missing };
}

/** Outcome of resolving the references of a shell script. */
export type ScriptResolution =
  | { ok: true; pieces: string[]; environment: { name: string; value: string; type: "PLAINTEXT" }[] }
  /** A reference whose quoting context Sluice cannot pass as a variable. */
  | { ok: false; piece: number; message: string; reference?: undefined }
  /** A reference with no value. */
  | { ok: false; piece: number; reference: string; message?: undefined };

/**
 * Resolves the references of a shell script (pieces joined by newlines, like
 * `commands`) without ever putting a value into the script: each reference
 * becomes `${SLUICE_REF_n}` (see shell-references.ts) and its value a
 * PLAINTEXT environment variable of the job.
 */
export function resolveScript(
  pieces: readonly string[],
  executionId: string,
  variables: Readonly<Record<string, Readonly<Record<string, string>>>>,
): ScriptResolution {
  const bound = bindShellReferences(pieces);
  if (!bound.ok) return bound;
  const environment: { name: string; value: string; type: "PLAINTEXT" }[] = [];
  for (const ref of bound.references) {
    const r = resolveValue(ref.reference, executionId, variables);
    if (!r.ok) return { ok: false, piece: ref.piece, reference: r.reference };
    environment.push({ name: ref.envName, value: r.value, type: "PLAINTEXT" });
  }
  return { ok: true, pieces: bound.pieces, environment };
}
