// Collecting the problems of one declaration, capped so a hostile one cannot
// flood the gRPC trailers it travels back in.

import type { FieldViolation } from "../errors.js";
import { MAX_VIOLATIONS } from "../limits.js";

/** Collects violations, keeping at most MAX_VIOLATIONS. */
export class Violations {
  private readonly list: FieldViolation[] = [];
  private total = 0;
  add(field: string, message: string): void {
    this.total += 1;
    if (this.list.length < MAX_VIOLATIONS) this.list.push({ field, message });
  }
  result(): FieldViolation[] {
    if (this.total <= MAX_VIOLATIONS) return this.list;
    const kept = this.list.slice(0, MAX_VIOLATIONS - 1);
    return [...kept, { field: "pipeline", message: `${this.total - kept.length} more problems are not listed` }];
  }
}
