import { promisify } from "node:util";
import { deflateRaw, inflateRaw } from "node:zlib";
import { fromJsonString, toBinary } from "@bufbuild/protobuf";
import type { PipelineRuntime } from "@sluice/domain";
import { CancelJobSchema, JobSchema, StateChangeEventSchema } from "@sluice/proto";
import { BSON, Binary } from "mongodb";
import type { OutboxEntry } from "./outbox.js";

// On the libuv threadpool: a large runtime never blocks the event loop while it is (de)compressed.
const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/**
 * Parts of a `PipelineRuntime` stored in fields of their own, beside the state blob: large
 * (up to 1000 request tokens; rollback targets carry artifacts and variables) and changed by
 * few events, so most writes leave them as they are instead of encoding them again.
 */
export const SEPARATE_PARTS = ["requestTokens", "rollbackTargets"] as const;

/** One of `SEPARATE_PARTS`. */
export type SeparatePart = (typeof SEPARATE_PARTS)[number];

/** The document field holding a separate part (deflated JSON text, like `stateZ`). */
export const PART_FIELDS = { requestTokens: "requestTokensZ", rollbackTargets: "rollbackTargetsZ" } as const satisfies Record<SeparatePart, string>;

/** What identifies the stored value of each separate part (see `partMark`). */
export type PartMarks = Record<SeparatePart, string>;

/** The marks of a document that stores no separate part (a new one, or one written before they existed). */
export const NO_PARTS: PartMarks = { requestTokens: "", rollbackTargets: "" };

/**
 * What identifies a part's value without encoding it: decide() never edits these arrays in
 * place, it replaces them by a copy with the new entry appended last (tokens: the oldest dropped
 * first; targets: older ones of the same stage dropped), so their length and last entry change
 * with every change. "" stands for no value.
 */
export function partMark(state: PipelineRuntime, part: SeparatePart): string {
  if (part === "requestTokens") {
    const tokens = state.requestTokens;
    const last = tokens?.at(-1);
    return tokens === undefined ? "" : `${tokens.length}:${last?.token}:${last?.executionId}:${last?.at}`;
  }
  const targets = state.rollbackTargets;
  const last = targets?.at(-1);
  return targets === undefined ? "" : `${targets.length}:${last?.stageName}:${last?.executionId}:${last?.pipelineVersion}:${last?.succeededAt}`;
}

/** The marks of every separate part of `state`. */
export function partMarksOf(state: PipelineRuntime): PartMarks {
  return { requestTokens: partMark(state, "requestTokens"), rollbackTargets: partMark(state, "rollbackTargets") };
}

/** A runtime as stored in `stateZ`: its JSON text without the separate parts, deflated. */
export async function encodeState(state: PipelineRuntime): Promise<Binary> {
  const { requestTokens: _tokens, rollbackTargets: _targets, ...rest } = state;
  return deflated(rest);
}

/** A separate part's value as stored in its field. */
export async function encodePart(state: PipelineRuntime, part: SeparatePart): Promise<Binary> {
  return deflated(state[part]);
}

/** The fields of a runtime document the codec reads. */
export interface EncodedRuntime {
  _id: string;
  stateZ?: Binary;
  stateJson?: string;
  requestTokensZ?: Binary;
  rollbackTargetsZ?: Binary;
}

/**
 * The runtime a document stores, with the marks of the separate parts its fields hold. A document
 * written before the parts had fields of their own keeps them inside the state (deflated, or plain
 * JSON text from before `stateZ`); its marks are then empty, so the next write moves them out.
 */
export async function decodeState(doc: EncodedRuntime): Promise<{ state: PipelineRuntime; marks: PartMarks }> {
  let state: PipelineRuntime;
  if (doc.stateZ instanceof Binary) state = (await inflated(doc.stateZ)) as PipelineRuntime;
  else if (typeof doc.stateJson === "string") state = JSON.parse(doc.stateJson) as PipelineRuntime;
  else throw new Error(`runtime document ${doc._id}: stateZ and stateJson are missing`);
  const marks = { ...NO_PARTS };
  for (const part of SEPARATE_PARTS) {
    const stored = doc[PART_FIELDS[part]];
    if (!(stored instanceof Binary)) continue;
    state = { ...state, [part]: await inflated(stored) };
    marks[part] = partMark(state, part);
  }
  return { state, marks };
}

// An entry's encoding never changes: a write re-storing entries an earlier write stored reuses it.
const encodedEntries = new WeakMap<OutboxEntry, Binary>();

/**
 * Outbox entries as stored: each one opaque (one value per entry, however many fields it has),
 * the BSON of the entry with its protobuf payload as binary.
 */
export function encodeOutbox(entries: readonly OutboxEntry[]): Binary[] {
  return entries.map((entry) => {
    let encoded = encodedEntries.get(entry);
    if (encoded === undefined) {
      encoded = new Binary(BSON.serialize(entry));
      encodedEntries.set(entry, encoded);
    }
    return encoded;
  });
}

/**
 * The outbox entries of a document: BSON binaries, or JSON text with a protobuf JSON payload
 * (documents written before the binary form).
 */
export function decodeOutbox(doc: { outbox: ReadonlyArray<Binary | string> }): OutboxEntry[] {
  return doc.outbox.map((stored) => {
    if (typeof stored === "string") return entryOfJson(stored);
    const fields = BSON.deserialize(bytesOf(stored), { promoteBuffers: true }) as Omit<OutboxEntry, "payload"> & { payload: Buffer };
    const entry: OutboxEntry = { ...fields, payload: new Uint8Array(fields.payload.buffer, fields.payload.byteOffset, fields.payload.byteLength) };
    encodedEntries.set(entry, stored);
    return entry;
  });
}

/** An outbox entry as stored before the binary form: JSON text, the payload protobuf JSON. */
export type LegacyOutboxEntry = Omit<OutboxEntry, "payload"> & { payload: string };

function entryOfJson(text: string): OutboxEntry {
  const legacy = JSON.parse(text) as LegacyOutboxEntry;
  const payload =
    legacy.type === "job"
      ? toBinary(JobSchema, fromJsonString(JobSchema, legacy.payload))
      : legacy.type === "cancel"
        ? toBinary(CancelJobSchema, fromJsonString(CancelJobSchema, legacy.payload))
        : toBinary(StateChangeEventSchema, fromJsonString(StateChangeEventSchema, legacy.payload));
  return { ...legacy, payload };
}

async function deflated(value: unknown): Promise<Binary> {
  return new Binary(await deflate(JSON.stringify(value), { level: 1 }));
}

async function inflated(stored: Binary): Promise<unknown> {
  return JSON.parse((await inflate(bytesOf(stored))).toString("utf8")) as unknown;
}

function bytesOf(stored: Binary): Uint8Array {
  return stored.buffer.subarray(0, stored.position);
}
