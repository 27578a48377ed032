import { ACTION_EXECUTION_ID_PATTERN, ARTIFACT_NAME_PATTERN, LOG_ARTIFACT_NAME_PATTERN, BUCKET_NAME_PATTERN, PIPELINE_NAME_PATTERN, SHA256_PATTERN, UUID_PATTERN, invalid } from "@sluice/domain";
import type { FieldViolation } from "@sluice/domain";

// Names, ids and buckets follow the domain's rules. Names become object-key
// segments, so "." and ".." are refused as well: S3-compatible stores treat
// them as path navigation (and a bucket name may not hold "..").

/** Collects violations for one request, each naming the field (proto JSON name). */
export class Violations {
  readonly list: FieldViolation[] = [];

  add(field: string, message: string): void {
    this.list.push({ field, message });
  }

  /** Throws ValidationException listing every violation, if there is any. */
  throwIfAny(): void {
    if (this.list.length > 0) throw invalid("ValidationException", this.list);
  }

  name(field: string, value: string): void {
    if (value === "") this.add(field, "is required");
    else if (!PIPELINE_NAME_PATTERN.test(value)) this.add(field, `"${clip(value)}" must be 1-100 characters of A-Z a-z 0-9 . @ _ -`);
    else if (value === "." || value === "..") this.add(field, `"${value}" is not a valid name`);
  }

  artifactName(field: string, value: string): void {
    if (value === "") this.add(field, "is required");
    else if (!ARTIFACT_NAME_PATTERN.test(value)) this.add(field, `"${clip(value)}" must be 1-100 characters of A-Z a-z 0-9 _ -`);
  }

  uuid(field: string, value: string): void {
    if (value === "") this.add(field, "is required");
    else if (!UUID_PATTERN.test(value)) this.add(field, `"${clip(value)}" is not a UUID`);
  }

  actionExecutionId(field: string, value: string): void {
    if (value === "") this.add(field, "is required");
    else if (!ACTION_EXECUTION_ID_PATTERN.test(value)) this.add(field, `"${clip(value)}" must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`);
  }

  artifactId(field: string, value: string): void {
    if (value === "") {
      this.add(field, "is required");
      return;
    }
    const slash = value.indexOf("/");
    const ok =
      slash > 0 &&
      ACTION_EXECUTION_ID_PATTERN.test(value.slice(0, slash)) &&
      (ARTIFACT_NAME_PATTERN.test(value.slice(slash + 1)) || LOG_ARTIFACT_NAME_PATTERN.test(value.slice(slash + 1)));
    if (!ok) this.add(field, `"${clip(value)}" is not an artifact id (<actionExecutionId>/<artifactName> or <actionExecutionId>/log.<attempt>)`);
  }

  bucket(field: string, value: string): void {
    if (value === "") this.add(field, "is required");
    else if (!BUCKET_NAME_PATTERN.test(value) || value.includes("..")) {
      this.add(field, `"${clip(value)}" must be 3-63 characters of a-z 0-9 . - starting and ending with a letter or digit`);
    }
  }

  sha256(field: string, value: string): void {
    if (value === "") this.add(field, "is required");
    else if (!SHA256_PATTERN.test(value)) this.add(field, "must be 64 hexadecimal characters");
  }
}

/** The artifact id the service assigns to an output: deterministic, so re-issuing grants is idempotent. */
export function artifactIdOf(actionExecutionId: string, name: string): string {
  return `${actionExecutionId}/${name}`;
}

/** The object key of one attempt's stored log (JSON Lines). */
export function logKeyOf(pipelineName: string, pipelineExecutionId: string, actionExecutionId: string, attempt: number): string {
  return `${pipelineName}/${pipelineExecutionId}/${actionExecutionId}/logs/${attempt}.jsonl`;
}

/** The object key of an output artifact. */
export function artifactKeyOf(pipelineName: string, pipelineExecutionId: string, actionExecutionId: string, name: string): string {
  return `${pipelineName}/${pipelineExecutionId}/${actionExecutionId}/${name}.zip`;
}

// Echoing a huge value back in an error would make the error the problem.
function clip(value: string): string {
  return value.length > 120 ? `${value.slice(0, 120)}...` : value;
}
