import { ScalarType, fromJson } from "@bufbuild/protobuf";
import type { DescField, DescMessage, MessageShape } from "@bufbuild/protobuf";
import { DomainError, invalid } from "./errors.js";
import type { FieldViolation } from "./errors.js";
import { CreatePipelineRequestSchema } from "@sluice/proto";
import type { CreatePipelineRequest } from "@sluice/proto";

/**
 * Reads a pipeline file written for `aws codepipeline create-pipeline
 * --cli-input-json`: either `{"pipeline": {...}, "tags": [...]}` or a bare
 * declaration `{"name": ..., "stages": [...]}`. The `metadata` object that
 * `get-pipeline` prints next to `pipeline` is dropped, so its output can be
 * fed back as is.
 *
 * Parsing is strict (unknown fields are errors, as in the AWS CLI): every
 * problem is reported at once as `DomainError("ValidationException")` with
 * one violation per field, paths relative to the request
 * (`pipeline.stages[1].actions[0].runOrder`). Whether the declaration makes
 * sense (names, artifacts, providers) is the validator's job, not this one's.
 */
export function readPipelineJson(text: string): CreatePipelineRequest {
  let parsed: unknown;
  try {
    // A byte-order mark is common in files saved by Windows editors.
    parsed = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DomainError("ValidationException", `pipeline JSON is not valid JSON: ${reason}`, [{ field: "(document)", message: `not valid JSON: ${reason}` }]);
  }
  if (!isObject(parsed)) {
    throw new DomainError("ValidationException", `pipeline JSON must be an object, got ${kindOf(parsed)}`, [{ field: "(document)", message: `expected an object, got ${kindOf(parsed)}` }]);
  }
  let request: Record<string, unknown>;
  if ("pipeline" in parsed) {
    request = { ...parsed };
    delete request["metadata"];
  } else {
    request = { pipeline: parsed };
  }

  const violations: FieldViolation[] = [];
  checkMessage(CreatePipelineRequestSchema, request, "", violations);
  if (violations.length > 0) throw invalid("ValidationException", violations);
  try {
    return fromJson(CreatePipelineRequestSchema, request as Parameters<typeof fromJson>[1], { ignoreUnknownFields: false });
  } catch (err) {
    // The walk above mirrors protobuf JSON rules; this catches what it does not.
    const reason = err instanceof Error ? err.message : String(err);
    throw new DomainError("ValidationException", `pipeline: ${reason}`, [{ field: "pipeline", message: reason }]);
  }
}

/**
 * Reads any request written for an AWS CLI `--cli-input-json` (e.g. `create-custom-action-type`),
 * as strictly as `readPipelineJson`: unknown fields and wrong types are reported at once, each
 * naming its field.
 */
export function readRequestJson<Desc extends DescMessage>(schema: Desc, text: string): MessageShape<Desc> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DomainError("ValidationException", `request JSON is not valid JSON: ${reason}`, [{ field: "(document)", message: `not valid JSON: ${reason}` }]);
  }
  const violations: FieldViolation[] = [];
  checkMessage(schema, parsed, "", violations);
  if (violations.length > 0) throw invalid("ValidationException", violations);
  try {
    return fromJson(schema, parsed as Parameters<typeof fromJson>[1], { ignoreUnknownFields: false });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DomainError("ValidationException", `request: ${reason}`, [{ field: "(document)", message: reason }]);
  }
}

function checkMessage(desc: DescMessage, value: unknown, path: string, out: FieldViolation[]): void {
  if (value === null) return;
  // Well-known types have their own JSON forms (a Timestamp is a string); fromJson checks them.
  if (desc.file.proto.package === "google.protobuf") return;
  if (!isObject(value)) {
    out.push({ field: path || "(document)", message: `expected an object, got ${kindOf(value)}` });
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const here = join(path, key);
    // Protobuf JSON accepts the lowerCamelCase name and the .proto name.
    const field = desc.fields.find((f) => f.jsonName === key || f.name === key);
    if (field === undefined) {
      out.push({ field: here, message: `unknown field (known: ${desc.fields.map((f) => f.jsonName).join(", ")})` });
      continue;
    }
    checkField(field, v, here, out);
  }
}

function checkField(field: DescField, value: unknown, path: string, out: FieldViolation[]): void {
  if (value === null) return;
  switch (field.fieldKind) {
    case "scalar":
      return push(out, path, scalarProblem(field.scalar, value));
    case "enum":
      return push(out, path, enumProblem(value));
    case "message":
      return checkMessage(field.message, value, path, out);
    case "list":
      if (!Array.isArray(value)) return push(out, path, `expected an array, got ${kindOf(value)}`);
      value.forEach((item: unknown, i) => {
        const at = `${path}[${i}]`;
        if (item === null) return push(out, at, "must not be null");
        switch (field.listKind) {
          case "scalar":
            return push(out, at, scalarProblem(field.scalar, item));
          case "enum":
            return push(out, at, enumProblem(item));
          case "message":
            return checkMessage(field.message, item, at, out);
        }
      });
      return;
    case "map":
      if (!isObject(value)) return push(out, path, `expected an object, got ${kindOf(value)}`);
      for (const [key, item] of Object.entries(value)) {
        const at = join(path, key);
        if (item === null) {
          push(out, at, "must not be null");
          continue;
        }
        switch (field.mapKind) {
          case "scalar":
            push(out, at, scalarProblem(field.scalar, item));
            break;
          case "enum":
            push(out, at, enumProblem(item));
            break;
          case "message":
            checkMessage(field.message, item, at, out);
            break;
        }
      }
      return;
  }
}

function push(out: FieldViolation[], field: string, problem: string | undefined): void {
  if (problem !== undefined) out.push({ field, message: problem });
}

/** Why `value` is not a valid protobuf JSON value of the scalar type, or undefined when it is. */
function scalarProblem(type: ScalarType, value: unknown): string | undefined {
  switch (type) {
    case ScalarType.STRING:
      return typeof value === "string" ? undefined : `expected a string, got ${kindOf(value)}`;
    case ScalarType.BYTES:
      return typeof value === "string" ? undefined : `expected a base64 string, got ${kindOf(value)}`;
    case ScalarType.BOOL:
      return typeof value === "boolean" ? undefined : `expected true or false, got ${kindOf(value)}`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      if (typeof value === "number") return undefined;
      return typeof value === "string" && value.trim() !== "" && !Number.isNaN(Number(value)) ? undefined : `expected a number, got ${kindOf(value)}`;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return integerProblem(value, -(2 ** 31), 2 ** 31 - 1);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return integerProblem(value, 0, 2 ** 32 - 1);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      // 64-bit ranges are left to fromJson; only the shape is checked here.
      return integerProblem(value, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
  }
}

function integerProblem(value: unknown, min: number, max: number): string | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" && /^-?\d+$/.test(value.trim()) ? Number(value) : undefined;
  if (n === undefined || !Number.isInteger(n)) return `expected an integer, got ${kindOf(value)}`;
  if (n < min || n > max) return `expected an integer from ${min} to ${max}, got ${String(value)}`;
  return undefined;
}

function enumProblem(value: unknown): string | undefined {
  return typeof value === "string" || (typeof value === "number" && Number.isInteger(value)) ? undefined : `expected an enum name, got ${kindOf(value)}`;
}

function join(path: string, key: string): string {
  const part = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : `[${JSON.stringify(key)}]`;
  if (path === "") return part.startsWith("[") ? `(document)${part}` : part;
  return part.startsWith("[") ? `${path}${part}` : `${path}.${part}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A short description of a JSON value for messages: `string "5"`, `number 5`, `an array`. */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
    case "number":
    case "boolean":
      return `${typeof value} ${String(value)}`;
    case "object":
      return "an object";
    default:
      return typeof value;
  }
}
