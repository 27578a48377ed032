// Secrets in views, events, logs and errors: the forms a secret value takes in
// text (raw, base64, URL-encoded), one masker for all of them, and URLs with
// their userinfo (`https://user:pass@host`) taken out.

import { SECRET_ENV_TYPES } from "../limits.js";
import type { ActionSpec, PipelineSpec } from "./types.js";

/** What a masked secret reads as. */
export const SECRET_MASK = "****";



/**
 * The ways a secret shows up in text: as written, base64 (padded, unpadded,
 * URL-safe) of its UTF-8 bytes, and URL-encoded (`%XX`, and `+` for spaces).
 * A job that prints `echo -n "$TOKEN" | base64` is masked too.
 */
export function secretForms(secret: string): string[] {
  if (secret === "") return [];
  const b64 = base64(secret);
  const unpadded = b64.replace(/=+$/, "");
  const forms = [secret, b64, unpadded, unpadded.replace(/\+/g, "-").replace(/\//g, "_"), encodeURIComponent(secret), encodeURIComponent(secret).replace(/%20/g, "+")];
  return [...new Set(forms.filter((f) => f !== ""))];
}

/**
 * Replaces every form of every secret with `mask`. Longer forms go first, so a
 * secret that contains another is masked whole.
 */
export function createMasker(secrets: readonly string[], mask = SECRET_MASK): (text: string) => string {
  const forms = [...new Set(secrets.flatMap(secretForms))].sort((a, b) => b.length - a.length);
  if (forms.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const form of forms) if (out.includes(form)) out = out.split(form).join(mask);
    return out;
  };
}

/**
 * The secret values of one action: its SECRET and store-backed environment variables, and the
 * values of its type's secret configuration properties (custom action types).
 */
export function actionSecrets(action: ActionSpec | undefined): string[] {
  const env = (action?.environmentVariables ?? []).filter((v) => SECRET_ENV_TYPES.has(v.type) && v.value !== "").map((v) => v.value);
  const configuration = (action?.secretConfiguration ?? []).map((key) => action?.configuration[key] ?? "").filter((value) => value !== "");
  return [...env, ...configuration];
}

/** Every secret value of a pipeline version. */
export function pipelineSecrets(spec: PipelineSpec | undefined): string[] {
  return (spec?.stages ?? []).flatMap((s) => s.actions.flatMap(actionSecrets));
}

const USERINFO = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#\s@]*@/g;

/** `https://user:pass@host/repo` → `https://host/repo`, wherever a URL appears in the text. */
export function stripUserinfo(text: string): string {
  return text.replace(USERINFO, "$1");
}

/** `https://user:pass@host/repo` → `https://****@host/repo`: shows that credentials are set, not what they are. */
export function maskUserinfo(text: string): string {
  return text.replace(USERINFO, `$1${SECRET_MASK}@`);
}

function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * A job's result with every form of the action's secrets masked and URL
 * userinfo taken out, before any of it reaches the state (and from there views,
 * events and the archive). A job that prints or exports a secret — by mistake
 * or not — stores `****`; later actions reading such an output variable get
 * `****` too.
 */
export function scrubOutcome<T extends JobOutcomeText>(result: T, secrets: readonly string[]): T {
  const masker = createMasker(secrets);
  const clean = (text: string): string => stripUserinfo(masker(text));
  const out: T = { ...result, outputVariables: Object.fromEntries(Object.entries(result.outputVariables).map(([k, v]) => [k, clean(v)])) };
  if (result.summary !== undefined) out.summary = clean(result.summary);
  if (result.errorDetails !== undefined) out.errorDetails = { ...result.errorDetails, message: clean(result.errorDetails.message) };
  if (result.externalExecutionUrl !== undefined) out.externalExecutionUrl = clean(result.externalExecutionUrl);
  if (result.revision !== undefined) {
    const revision = { ...result.revision };
    if (revision.revisionSummary !== undefined) revision.revisionSummary = clean(revision.revisionSummary);
    if (revision.revisionUrl !== undefined) revision.revisionUrl = clean(revision.revisionUrl);
    out.revision = revision;
  }
  return out;
}

/** The text-bearing parts of a JobOutcome that {@link scrubOutcome} cleans. */
export interface JobOutcomeText {
  summary?: string;
  errorDetails?: { code: string; message: string };
  externalExecutionUrl?: string;
  outputVariables: Record<string, string>;
  revision?: { revisionSummary?: string; revisionUrl?: string };
}

/**
 * Every string inside a view (a protobuf init object or message) passed
 * through `mask`; other values are kept as they are. `$`-fields (`$typeName`)
 * are protobuf's own. The one place the API's answers are masked.
 */
export function maskDeep<T>(value: T, mask: (text: string) => string): T {
  return walk(value, mask) as T;
}

function walk(value: unknown, mask: (text: string) => string): unknown {
  if (typeof value === "string") return mask(value);
  if (Array.isArray(value)) return value.map((v) => walk(v, mask));
  if (value === null || typeof value !== "object" || value instanceof Uint8Array || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = key.startsWith("$") ? v : walk(v, mask);
  return out;
}

/** A masker for the views of a pipeline: its secrets, and URL userinfo. */
export function viewMasker(secrets: readonly string[]): (text: string) => string {
  const masker = createMasker(secrets);
  return (text) => maskUserinfo(masker(text));
}
