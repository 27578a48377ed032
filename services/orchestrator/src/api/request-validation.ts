import { ACTION_CATEGORIES, DomainError, EXECUTION_ID_PATTERN, MAX_TAG_KEY_LENGTH, MAX_TAG_VALUE_LENGTH, PIPELINE_NAME_PATTERN } from "@sluice/domain";
import type { FieldViolation } from "@sluice/domain";

/**
 * Collects request problems so a caller learns every bad field at once, each
 * named by its path (`name`, `result.status`, `tags[0].key`).
 */
export class RequestChecks {
  private readonly violations: FieldViolation[] = [];

  /** Records a problem. */
  add(field: string, message: string): this {
    this.violations.push({ field, message });
    return this;
  }

  /** A pipeline, stage or action name: 1-100 characters of [A-Za-z0-9.@_-]. */
  name(field: string, value: string): this {
    if (value === "") return this.add(field, "is required");
    if (!PIPELINE_NAME_PATTERN.test(value)) this.add(field, "must be 1-100 characters of [A-Za-z0-9.@_-]");
    return this;
  }

  /** A required string with a length range. */
  text(field: string, value: string, min: number, max: number): this {
    if (min > 0 && value === "") return this.add(field, "is required");
    if (value.length < min || value.length > max) this.add(field, `must be ${min}-${max} characters`);
    return this;
  }

  /** An optional integer bound (absent = default). */
  range(field: string, value: number | undefined, min: number, max: number): this {
    if (value !== undefined && (value < min || value > max)) this.add(field, `must be between ${min} and ${max}`);
    return this;
  }

  /** A required string of `min`-`max` characters matching `pattern` (described as `charset` in the message). */
  matching(field: string, value: string, min: number, max: number, pattern: RegExp, charset: string): this {
    if (min > 0 && value === "") return this.add(field, "is required");
    if (value.length < min || value.length > max || !pattern.test(value)) this.add(field, `must be ${min}-${max} characters of ${charset}`);
    return this;
  }

  /** One of a fixed set of values. */
  oneOf(field: string, value: string, allowed: readonly string[]): this {
    if (value === "") return this.add(field, "is required");
    if (!allowed.includes(value)) this.add(field, `must be one of ${allowed.join(", ")}`);
    return this;
  }

  /** A pipeline execution id: a UUID. */
  executionId(field: string, value: string): this {
    if (value === "") return this.add(field, "is required");
    if (!EXECUTION_ID_PATTERN.test(value)) this.add(field, "must be a pipeline execution id (a UUID)");
    return this;
  }

  /** Throws ValidationException listing every recorded problem. */
  throwIfAny(): void {
    if (this.violations.length === 0) return;
    const message = this.violations.map((v) => `${v.field}: ${v.message}`).join("; ");
    throw new DomainError("ValidationException", message, [...this.violations]);
  }
}

/** Starts a check list. */
export function checks(): RequestChecks {
  return new RequestChecks();
}

/** An action type's category, provider (1-35) and version (1-9), each named `<prefix><field>`. */
export function checkActionTypeId(c: RequestChecks, prefix: string, id: { readonly category: string; readonly provider: string; readonly version: string }): RequestChecks {
  return c
    .oneOf(`${prefix}category`, id.category, ACTION_CATEGORIES)
    .matching(`${prefix}provider`, id.provider, 1, 35, /^[0-9A-Za-z_-]+$/, "[0-9A-Za-z_-]")
    .matching(`${prefix}version`, id.version, 1, 9, /^[0-9A-Za-z_-]+$/, "[0-9A-Za-z_-]");
}

/** AWS tag rules: key 1-128, value 0-256, no `aws:` prefix. */
export function checkTag(c: RequestChecks, field: string, tag: { readonly key: string; readonly value: string }): void {
  c.text(`${field}.key`, tag.key, 1, MAX_TAG_KEY_LENGTH);
  if (tag.key.toLowerCase().startsWith("aws:")) c.add(`${field}.key`, 'must not start with "aws:"');
  if (tag.value.length > MAX_TAG_VALUE_LENGTH) c.add(`${field}.value`, `must be at most ${MAX_TAG_VALUE_LENGTH} characters`);
}
