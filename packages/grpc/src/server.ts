import { once } from "node:events";
import { create, toBinary } from "@bufbuild/protobuf";
import type { DescFile, DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import type { Metadata, ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation, handleServerStreamingCall, handleUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { context } from "@opentelemetry/api";
import type { Logger } from "@sluice/domain";
import { HealthImplementation } from "grpc-health-check";
import { methodPath, serviceDefinitionOf } from "./adapter.js";
import { authorize } from "./auth.js";
import type { Authenticator, PermissionTable, Principal } from "./auth.js";
import { toServiceError } from "./errors.js";
import { HEALTH_FILE_DESCRIPTOR } from "./health-descriptor.js";
import { startServerSpan } from "./tracing.js";

/** Largest request message the server accepts (grpc-js's default, set explicitly so it is visible). */
export const MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;

/** What a handler knows about its call besides the request. */
export interface CallContext {
  /** The authenticated caller. */
  readonly principal: Principal;
  /** Aborted when the caller cancels, the deadline passes or the server is force-stopped. */
  readonly signal: AbortSignal;
  /** The request metadata as received. */
  readonly metadata: Metadata;
  /** The caller's raw `authorization` header, to forward the caller's identity to another service. */
  readonly authorization: string;
}

/** A unary handler: resolves with the response (a message or an init object). */
export type UnaryImpl<I extends DescMessage, O extends DescMessage> = (req: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O>>;
/** A server-streaming handler: every value the iterable yields is sent; the stream ends when it ends. */
export type ServerStreamImpl<I extends DescMessage, O extends DescMessage> = (req: MessageShape<I>, ctx: CallContext) => AsyncIterable<MessageInitShape<O>>;

/** The handler type of one method descriptor; client and bidi streaming are not supported (never). */
export type MethodImpl<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? UnaryImpl<I, O>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? ServerStreamImpl<I, O>
    : never;

/** An implementation of a generated service: one handler per method, keyed by the method's local name (`createPipeline`). */
export type ServiceImpl<S extends DescService> = { [K in keyof S["method"]]: MethodImpl<S["method"][K]> };

/** Options of `createServer`. */
export interface ServerOptions {
  readonly logger: Logger;
  readonly auth: Authenticator;
  readonly permissions: PermissionTable;
  /** Serve TLS (and with `requireClientCert`, mutual TLS); undefined: plaintext. */
  readonly tls?: ServerTlsOptions | undefined;
}

/** The server's TLS settings; PEM text or buffers. */
export interface ServerTlsOptions {
  /** The server's certificate chain. */
  readonly cert: Buffer | string;
  readonly key: Buffer | string;
  /** CA bundle that client certificates must chain to; required with `requireClientCert`. */
  readonly ca?: Buffer | string | undefined;
  /** Mutual TLS: a client without a certificate signed by `ca` is refused during the handshake. */
  readonly requireClientCert?: boolean | undefined;
}

/** A gRPC server with auth on every registered method, plus health and reflection. */
export interface SluiceServer {
  /** Registers a service; only before `listen`, so health and reflection know every service. */
  add<S extends DescService>(service: S, impl: ServiceImpl<S>): void;
  /** Binds (TLS when configured; port 0 picks a free port), marks every service SERVING and resolves with the bound port. */
  listen(host: string, port: number): Promise<number>;
  /**
   * Health NOT_SERVING, then a graceful shutdown that lets running calls
   * finish; calls still running after `deadlineMs` are cancelled. Idempotent:
   * later calls return the first call's promise.
   */
  stop(deadlineMs: number): Promise<void>;
}

const HEALTH_SERVICE = "grpc.health.v1.Health";

type ServerState = { kind: "open" } | { kind: "listening"; port: number } | { kind: "stopping"; done: Promise<void> };

/**
 * Creates a server. Every method of every added service authenticates the
 * caller (`authorization: Bearer <token>`), checks the permission table, runs
 * the handler and maps thrown errors to statuses (`toServiceError`). Health
 * (`grpc.health.v1.Health`) and reflection (v1 and v1alpha) need no token.
 * With `tls` the server speaks only TLS; with `tls.requireClientCert` only to
 * clients presenting a certificate signed by `tls.ca`.
 */
export function createServer(opts: ServerOptions): SluiceServer {
  const { logger, auth, permissions } = opts;
  const credentials = serverCredentials(opts.tls);
  const server = new Server({ "grpc.max_receive_message_length": MAX_RECEIVE_MESSAGE_BYTES });
  const health = new HealthImplementation({ "": "NOT_SERVING" });
  health.addToServer(server);
  const services: DescService[] = [];
  let state: ServerState = { kind: "open" };

  function contextOf(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>, method: DescMethod, signal: AbortSignal): CallContext {
    const header = call.metadata.get("authorization")[0];
    const authorization = typeof header === "string" ? header : "";
    const principal = auth.authenticate(authorization);
    authorize(principal, method, permissions);
    return { principal, signal, metadata: call.metadata, authorization };
  }

  /** An AbortController aborted when grpc-js reports the call cancelled (peer cancel, deadline, forced stop). */
  function cancellation(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>): AbortController {
    const controller = new AbortController();
    call.on("cancelled", () => controller.abort(new Error("call cancelled")));
    return controller;
  }

  function unaryHandler(method: DescMethod, impl: UnaryImpl<DescMessage, DescMessage>): handleUnaryCall<unknown, unknown> {
    const path = methodPath(method);
    return (call, callback: sendUnaryData<unknown>) => {
      const controller = cancellation(call);
      // The span is active while the handler runs: its calls, publishes and log lines join the caller's trace.
      const span = startServerSpan(method, call.metadata, call.getPeer());
      void context.with(span.context, async () => {
        try {
          const ctx = contextOf(call, method, controller.signal);
          const response = await impl(call.request as MessageShape<DescMessage>, ctx);
          // Building the message here (not in the serializer) keeps a bad
          // response shape inside this try: logged and reported as INTERNAL.
          callback(null, create(method.output, response));
          if (controller.signal.aborted) span.cancelled("the caller cancelled or its deadline passed");
          else span.end(status.OK);
        } catch (err) {
          const failure = toServiceError(err, logger, { method: path });
          callback(failure);
          span.end(failure.code, failure.details, err);
        }
      });
    };
  }

  function serverStreamHandler(method: DescMethod, impl: ServerStreamImpl<DescMessage, DescMessage>): handleServerStreamingCall<unknown, unknown> {
    const path = methodPath(method);
    return (call) => {
      const controller = cancellation(call);
      const { signal } = controller;
      const span = startServerSpan(method, call.metadata, call.getPeer());
      void context.with(span.context, async () => {
        try {
          const ctx = contextOf(call, method, signal);
          // Leaving the loop early (cancel) calls the iterator's return(), so
          // the handler's finally blocks run.
          for await (const item of impl(call.request as MessageShape<DescMessage>, ctx)) {
            if (signal.aborted) break;
            if (!call.write(create(method.output, item))) await once(call, "drain", { signal });
          }
          if (!signal.aborted) call.end();
        } catch (err) {
          // A cancelled call has nobody left to tell; the handler saw the signal.
          if (signal.aborted) return;
          const failure = toServiceError(err, logger, { method: path });
          call.emit("error", failure);
          span.end(failure.code, failure.details, err);
        } finally {
          // Only the first end counts: a failure above was already recorded.
          if (signal.aborted) span.cancelled("the caller cancelled or its deadline passed");
          else span.end(status.OK);
        }
      });
    };
  }

  return {
    add(service, impl) {
      if (state.kind !== "open") throw new Error(`cannot add ${service.typeName}: services must be added before listen()`);
      if (services.some((s) => s.typeName === service.typeName)) throw new Error(`service ${service.typeName} is already added`);
      const handlers: UntypedServiceImplementation = {};
      const fns = impl as Record<string, unknown>;
      for (const method of service.methods) {
        const fn = fns[method.localName];
        if (typeof fn !== "function") throw new Error(`${service.typeName}: no handler for ${method.name} (expected impl.${method.localName})`);
        switch (method.methodKind) {
          case "unary":
            handlers[method.name] = unaryHandler(method, fn.bind(impl) as UnaryImpl<DescMessage, DescMessage>);
            break;
          case "server_streaming":
            handlers[method.name] = serverStreamHandler(method, fn.bind(impl) as ServerStreamImpl<DescMessage, DescMessage>);
            break;
          case "client_streaming":
          case "bidi_streaming":
            throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not supported`);
        }
      }
      server.addService(serviceDefinitionOf(service), handlers);
      services.push(service);
    },

    async listen(host, port) {
      if (state.kind !== "open") throw new Error(`cannot listen: server is ${state.kind}`);
      // The health service is listed too, so `grpcurl ... grpc.health.v1.Health/Check` works.
      const reflected = { ...reflectionPackageOf(services), [HEALTH_SERVICE]: { fileDescriptorProtos: [HEALTH_FILE_DESCRIPTOR] } };
      new ReflectionService(reflected as unknown as ConstructorParameters<typeof ReflectionService>[0], { services: [...services.map((s) => s.typeName), HEALTH_SERVICE] }).addToServer(server);
      const address = host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
      const bound = await new Promise<number>((resolve, reject) => {
        server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p)));
      });
      if (opts.tls === undefined && !isLoopback(host)) {
        logger.warn("grpc server listens beyond loopback without TLS: bearer tokens cross the network in clear", { host });
      }
      state = { kind: "listening", port: bound };
      health.setStatus("", "SERVING");
      for (const s of services) health.setStatus(s.typeName, "SERVING");
      const tls = opts.tls === undefined ? "off" : opts.tls.requireClientCert === true ? "mutual" : "server";
      logger.info("grpc server listening", { host, port: bound, tls, services: services.map((s) => s.typeName) });
      return bound;
    },

    stop(deadlineMs) {
      if (state.kind === "stopping") return state.done;
      health.setStatus("", "NOT_SERVING");
      for (const s of services) health.setStatus(s.typeName, "NOT_SERVING");
      const done = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn("grpc calls still running at shutdown deadline; cancelling them", { deadlineMs });
          server.forceShutdown();
          resolve();
        }, deadlineMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }).then(() => logger.info("grpc server stopped"));
      state = { kind: "stopping", done };
      return done;
    },
  };
}

function serverCredentials(tls: ServerTlsOptions | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  const requireClientCert = tls.requireClientCert === true;
  if (requireClientCert && tls.ca === undefined) throw new Error("tls.requireClientCert needs tls.ca, the CA client certificates must chain to");
  const ca = tls.ca === undefined ? null : Buffer.from(tls.ca);
  return ServerCredentials.createSsl(ca, [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }], requireClientCert);
}

/** True for hosts that only this machine can reach. */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * The "package definition" @grpc/reflection reads: it only looks at the
 * `fileDescriptorProtos` (serialized FileDescriptorProto) of each top-level
 * value, so one entry per service carrying its file and every file it
 * imports, transitively, is all it needs.
 */
export function reflectionPackageOf(services: readonly DescService[]): Record<string, { fileDescriptorProtos: Buffer[] }> {
  const pkg: Record<string, { fileDescriptorProtos: Buffer[] }> = {};
  for (const service of services) {
    const files = new Map<string, DescFile>();
    const visit = (file: DescFile): void => {
      if (files.has(file.proto.name)) return;
      files.set(file.proto.name, file);
      for (const dep of file.dependencies) visit(dep);
    };
    visit(service.file);
    pkg[service.typeName] = { fileDescriptorProtos: [...files.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto))) };
  }
  return pkg;
}
