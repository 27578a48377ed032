import { PIPELINE_NAME_PATTERN, UUID_PATTERN, invalid } from "@sluice/domain";
import type { FieldViolation } from "@sluice/domain";

/** Collects violations for one request, each naming its field (proto JSON name). */
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
  }

  uuid(field: string, value: string): void {
    if (value === "") this.add(field, "is required");
    else if (!UUID_PATTERN.test(value)) this.add(field, `"${clip(value)}" is not a UUID`);
  }
}

/** Shortens a caller-supplied value before it is echoed in an error or stored in the audit. */
export function clip(value: string, max = 120): string {
  return value.length > max ? `${value.slice(0, max)}...` : value;
}
