import { isDomainError } from "@sluice/domain";

/**
 * Whether a handler's error says "try again later" rather than "this message is bad": the
 * database, the bus or a peer service is unreachable or timed out, or a write lost a race. Such a
 * message is not poison — it will succeed once the outage ends — so a consumer given this
 * predicate (`ConsumeOptions.isTransient`) retries it for as long as it takes instead of
 * dead-lettering it after `maxDeliver` tries. Duck-typed (names, codes, labels) so the bus needs
 * neither the MongoDB driver nor gRPC; the `cause` chain is followed.
 */
export function isTransientError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (isDomainError(e)) return e.retryable;
    if (typeof e !== "object") return false;
    if (classNames(e).some((n) => TRANSIENT_CLASSES.has(n))) return true;
    const { code, errorLabels, errorLabelSet } = e as { code?: unknown; errorLabels?: unknown; errorLabelSet?: unknown };
    const labels = errorLabelSet instanceof Set ? [...(errorLabelSet as Set<unknown>)] : Array.isArray(errorLabels) ? errorLabels : [];
    if (labels.some((l) => TRANSIENT_LABELS.has(String(l)))) return true;
    if (typeof code === "string" && TRANSIENT_SYSCALL_CODES.has(code)) return true;
    if (typeof code === "number") {
      if (classNames(e).includes("MongoServerError") && TRANSIENT_MONGO_CODES.has(code)) return true;
      // A gRPC client error (SluiceRpcError / grpc-js ServiceError): a peer that is down or slow.
      if ("metadata" in e && TRANSIENT_GRPC_CODES.has(code)) return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The constructor names along an object's prototype chain (a subclass counts as its bases). */
function classNames(e: object): string[] {
  const names: string[] = [];
  for (let p: unknown = Object.getPrototypeOf(e); p !== null && p !== Object.prototype && names.length < 10; p = Object.getPrototypeOf(p)) {
    const ctor = (p as { constructor?: { name?: unknown } }).constructor;
    if (typeof ctor?.name === "string") names.push(ctor.name);
  }
  const own = (e as { name?: unknown }).name;
  if (typeof own === "string") names.push(own);
  return names;
}

const TRANSIENT_CLASSES: ReadonlySet<string> = new Set([
  // MongoDB driver: no reachable server, a dropped socket, a closed pool.
  "MongoNetworkError",
  "MongoServerSelectionError",
  "MongoTopologyClosedError",
  "MongoNotConnectedError",
  "MongoPoolClearedError",
  "MongoWriteConcernError",
  // NATS: no connection, no answer in time, no JetStream (yet) behind the subject.
  "TimeoutError",
  "ConnectionError",
  "ClosedConnectionError",
  "DrainingConnectionError",
  "RequestError",
  "NoResponders",
]);

const TRANSIENT_LABELS: ReadonlySet<string> = new Set(["RetryableWriteError", "TransientTransactionError", "ResetPool", "RetryableError"]);

const TRANSIENT_SYSCALL_CODES: ReadonlySet<string> = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);

/**
 * MongoDB server codes that mean "not now": HostUnreachable, HostNotFound, NetworkTimeout,
 * ExceededTimeLimit, MaxTimeMSExpired, WriteConflict, the primary-change and shutdown family, and
 * LockTimeout.
 */
const TRANSIENT_MONGO_CODES: ReadonlySet<number> = new Set([6, 7, 89, 262, 50, 112, 91, 189, 10107, 11600, 11602, 13435, 13436, 24, 9001]);

/** gRPC DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE. */
const TRANSIENT_GRPC_CODES: ReadonlySet<number> = new Set([4, 8, 10, 14]);
