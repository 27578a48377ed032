export { ERROR_CODES, DomainError, invalid, isDomainError } from "./errors.js";
export type { ErrorCode, FieldViolation } from "./errors.js";
export { noopLogger } from "./logger.js";
export type { Logger } from "./logger.js";
// -- validation exports (owned by the validation helper) --
// -- end validation exports --
// -- execution exports (owned by the execution helper) --
// -- end execution exports --
