import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { Client as GrpcClient, Metadata, credentials, status } from "@grpc/grpc-js";
import type { ChannelCredentials, ChannelOptions, CallOptions as GrpcCallOptions, ServiceError } from "@grpc/grpc-js";
import { ERROR_CODES } from "@sluice/domain";
import type { ErrorCode, FieldViolation } from "@sluice/domain";
import { deserializerOf, methodPath, serializerOf } from "./adapter.js";
import { ERROR_CODE_TRAILER, FIELD_VIOLATIONS_TRAILER } from "./errors.js";
import { injectTraceparent, startClientSpan } from "./tracing.js";

/** Options of `createClient`. */
export interface ClientOptions {
  /** Bearer token sent as `authorization: Bearer <token>`; a function is asked on every call. */
  readonly token?: string | (() => string);
  /** Default deadline of unary calls in ms (streams have none unless given per call). */
  readonly deadlineMs?: number;
  /** Connect over TLS (mutual TLS with `cert` and `key`); undefined: plaintext. */
  readonly tls?: ClientTlsOptions | undefined;
}

/** The client's TLS settings; PEM text or buffers. */
export interface ClientTlsOptions {
  /** CA bundle the server's certificate must chain to; undefined: the system's roots. */
  readonly ca?: Buffer | string | undefined;
  /** The client's certificate chain, presented to servers that require one (with `key`). */
  readonly cert?: Buffer | string | undefined;
  readonly key?: Buffer | string | undefined;
  /** Name the server's certificate must carry, when it differs from the address's host. */
  readonly serverName?: string | undefined;
}

/** The channel credentials and options of `tls`; throws on a certificate without its key (or the reverse). */
function channelCredentialsOf(tls: ClientTlsOptions | undefined): { creds: ChannelCredentials; options: ChannelOptions } {
  if (tls === undefined) return { creds: credentials.createInsecure(), options: {} };
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw new Error("tls.cert and tls.key go together: set both or neither");
  const buf = (v: Buffer | string | undefined): Buffer | null => (v === undefined ? null : Buffer.from(v));
  const creds = credentials.createSsl(buf(tls.ca), buf(tls.key), buf(tls.cert));
  return { creds, options: tls.serverName === undefined ? {} : { "grpc.ssl_target_name_override": tls.serverName, "grpc.default_authority": tls.serverName } };
}

/** Options of one call. */
export interface CallOptions {
  /** Raw `authorization` header value, replacing the client's token (to forward a caller's identity). */
  readonly authorization?: string;
  /** Cancels the call when aborted. */
  readonly signal?: AbortSignal;
  /** Deadline of this call in ms. */
  readonly deadlineMs?: number;
}

/** The client-side signature of one method descriptor. */
export type ClientMethod<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
    : never;

/**
 * A typed client of a generated service: one function per method under its
 * local name (`client.createPipeline(...)`), plus `close()`.
 */
export type Client<S extends DescService> = { readonly [K in keyof S["method"]]: ClientMethod<S["method"][K]> } & {
  /** Closes the channel; calls in flight are cancelled. */
  close(): void;
};

/**
 * A failed call as the caller sees it: the gRPC status, and for domain errors
 * the AWS exception name and field violations from the trailers.
 */
export class SluiceRpcError extends Error {
  override readonly name = "SluiceRpcError";
  /** The gRPC status code. */
  readonly code: status;
  /** The AWS exception name (`PipelineNotFoundException`), when the server sent one. */
  readonly errorCode?: ErrorCode;
  /** Field violations (empty when none). */
  readonly violations: readonly FieldViolation[];
  /** The status message as sent by the server (same as `message`). */
  readonly details: string;
  /** The trailing metadata of the call. */
  readonly metadata: Metadata;

  constructor(code: status, details: string, metadata: Metadata = new Metadata(), options?: { cause?: unknown }) {
    super(details, options);
    this.code = code;
    this.details = details;
    this.metadata = metadata;
    const errorCode = errorCodeOf(metadata);
    if (errorCode !== undefined) this.errorCode = errorCode;
    this.violations = violationsOf(metadata);
  }
}

/**
 * True when `err` is a failed call, optionally with the given gRPC status
 * (number) or AWS exception name (string).
 */
export function isRpcError(err: unknown, code?: status | ErrorCode): err is SluiceRpcError {
  if (!(err instanceof SluiceRpcError)) return false;
  if (code === undefined) return true;
  return typeof code === "number" ? err.code === code : err.errorCode === code;
}

function errorCodeOf(metadata: Metadata): ErrorCode | undefined {
  const value = metadata.get(ERROR_CODE_TRAILER)[0];
  return typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value) ? (value as ErrorCode) : undefined;
}

function violationsOf(metadata: Metadata): FieldViolation[] {
  const value = metadata.get(FIELD_VIOLATIONS_TRAILER)[0];
  if (typeof value !== "string") return [];
  try {
    const parsed: unknown = JSON.parse(value);
    if (!Array.isArray(parsed)) return [];
    // Keep only well-formed entries: the trailer comes from the network.
    return parsed.flatMap((v: unknown) => {
      if (typeof v !== "object" || v === null) return [];
      const { field, message } = v as Record<string, unknown>;
      return typeof field === "string" && typeof message === "string" ? [{ field, message }] : [];
    });
  } catch {
    return [];
  }
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}

/** Converts what grpc-js reports into a SluiceRpcError; other errors are returned unchanged. */
function rpcErrorOf(err: unknown): Error {
  if (isServiceError(err)) return new SluiceRpcError(err.code, err.details, err.metadata, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Creates a typed client of `service` at `address` (`host:port`; plaintext unless `opts.tls`).
 * Unary methods return promises; server-streaming methods return async
 * iterables that start the call when iterated and cancel it when the loop
 * ends early (`break`, `return`, a thrown error). Failures are `SluiceRpcError`.
 */
export function createClient<S extends DescService>(service: S, address: string, opts: ClientOptions = {}): Client<S> {
  const { creds, options } = channelCredentialsOf(opts.tls);
  const client = new GrpcClient(address, creds, options);

  function metadataFor(options: CallOptions): Metadata {
    const metadata = new Metadata();
    if (options.authorization !== undefined) {
      metadata.set("authorization", options.authorization);
    } else if (opts.token !== undefined) {
      const token = typeof opts.token === "function" ? opts.token() : opts.token;
      metadata.set("authorization", `Bearer ${token}`);
    }
    return metadata;
  }

  function grpcOptions(deadlineMs: number | undefined): GrpcCallOptions {
    return deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
  }

  function unary(method: DescMethod) {
    const path = methodPath(method);
    const serialize = serializerOf(method.input);
    const deserialize = deserializerOf(method.output);
    return (request: MessageInitShape<DescMessage>, options: CallOptions = {}): Promise<MessageShape<DescMessage>> =>
      new Promise((resolve, reject) => {
        const { signal } = options;
        if (signal?.aborted) {
          reject(new SluiceRpcError(status.CANCELLED, "call cancelled before start", new Metadata(), { cause: signal.reason }));
          return;
        }
        // A client span per call, child of the active span; the server continues it from `traceparent`.
        const span = startClientSpan(method, address);
        const metadata = metadataFor(options);
        injectTraceparent(span.context, metadata);
        const call = client.makeUnaryRequest(path, serialize, deserialize, request, metadata, grpcOptions(options.deadlineMs ?? opts.deadlineMs), (err, value) => {
          signal?.removeEventListener("abort", onAbort);
          if (err) {
            const failure = rpcErrorOf(err);
            span.end(failure instanceof SluiceRpcError ? failure.code : status.UNKNOWN, failure.message);
            reject(failure);
          } else if (value === undefined) {
            span.end(status.INTERNAL, "empty response");
            reject(new SluiceRpcError(status.INTERNAL, "empty response"));
          } else {
            span.end(status.OK);
            resolve(value);
          }
        });
        function onAbort(): void {
          call.cancel();
        }
        signal?.addEventListener("abort", onAbort, { once: true });
      });
  }

  function serverStream(method: DescMethod) {
    const path = methodPath(method);
    const serialize = serializerOf(method.input);
    const deserialize = deserializerOf(method.output);
    return async function* (request: MessageInitShape<DescMessage>, options: CallOptions = {}): AsyncGenerator<MessageShape<DescMessage>> {
      const { signal } = options;
      if (signal?.aborted) throw new SluiceRpcError(status.CANCELLED, "call cancelled before start", new Metadata(), { cause: signal.reason });
      const span = startClientSpan(method, address);
      const metadata = metadataFor(options);
      injectTraceparent(span.context, metadata);
      const call = client.makeServerStreamRequest(path, serialize, deserialize, request, metadata, grpcOptions(options.deadlineMs));
      // The iteration below rethrows stream errors; this listener only keeps
      // the CANCELLED status that follows our own cancel() from being an
      // unhandled 'error' event.
      call.on("error", () => undefined);
      const onAbort = (): void => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
      let complete = false;
      try {
        for await (const message of call) yield message as MessageShape<DescMessage>;
        complete = true;
        span.end(status.OK);
      } catch (err) {
        const failure = rpcErrorOf(err);
        span.end(failure instanceof SluiceRpcError ? failure.code : status.UNKNOWN, failure.message);
        throw failure;
      } finally {
        signal?.removeEventListener("abort", onAbort);
        if (!complete) call.cancel();
        span.cancelled("the caller stopped reading the stream");
      }
    };
  }

  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    switch (method.methodKind) {
      case "unary":
        methods[method.localName] = unary(method);
        break;
      case "server_streaming":
        methods[method.localName] = serverStream(method);
        break;
      case "client_streaming":
      case "bidi_streaming":
        // Not used by Sluice's contracts; calling it fails loudly.
        methods[method.localName] = () => {
          throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
        };
        break;
    }
  }
  methods["close"] = () => client.close();
  return methods as Client<S>;
}
