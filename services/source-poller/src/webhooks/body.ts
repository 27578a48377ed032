import type { IncomingMessage } from "node:http";

/** What `readBody` got: the bytes, or the request was larger than allowed. */
export type BodyOutcome = { ok: true; body: Buffer } | { ok: false; reason: "tooLarge" | "aborted" };

/**
 * Reads the request body up to `maxBytes`. A declared Content-Length above the cap is refused
 * before a byte is read; a body that grows past it stops being read at once (the caller answers
 * 413 and closes the connection), so a sender can never make the receiver buffer more than the cap.
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyOutcome> {
  const declared = Number(req.headers["content-length"] ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) return { ok: false, reason: "tooLarge" };
  const chunks: Buffer[] = [];
  let size = 0;
  return new Promise<BodyOutcome>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off("data", onData);
        req.pause();
        resolve({ ok: false, reason: "tooLarge" });
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => resolve({ ok: true, body: Buffer.concat(chunks, size) }));
    // A sender that goes away mid-body: nothing to answer, and nothing left waiting.
    req.once("close", () => resolve({ ok: false, reason: "aborted" }));
    req.once("error", reject);
  });
}

/** Why a body is not acceptable JSON, or the parsed value. */
export type JsonOutcome = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * JSON.parse after a scan that refuses nesting deeper than `maxDepth`: what the filters walk
 * stays small and shallow whatever a sender posts.
 */
export function parseJsonBody(body: Buffer, maxDepth: number, contentType = ""): JsonOutcome {
  let text = body.toString("utf8");
  // GitHub's form encoding (its UI's default content type): the JSON is the `payload` field.
  // The signature was checked over the raw body before this.
  if (/^application\/x-www-form-urlencoded\b/i.test(contentType)) {
    const payload = new URLSearchParams(text).get("payload");
    if (payload === null) return { ok: false, reason: "form-encoded body without a payload field" };
    text = payload;
  }
  const depth = nestingDepth(text);
  if (depth > maxDepth) return { ok: false, reason: `JSON nested deeper than ${maxDepth} levels` };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reason: `not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The deepest nesting of `[`/`{` outside strings, in one linear pass that allocates nothing. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}
