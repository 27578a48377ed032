// grpc-js <-> protobuf-es: server with auth, errors to status, health and
// reflection; typed client. Every export is named here.
export { deserializerOf, methodPath, serializerOf, serviceDefinitionOf } from "./adapter.js";
export { ROLES, authorize, createTokenAuthenticator, isRole, parseTokenTable } from "./auth.js";
export type { Authenticator, PermissionTable, Principal, Role, TokenEntry } from "./auth.js";
export { SluiceRpcError, createClient, isRpcError } from "./client.js";
export type { CallOptions, Client, ClientMethod, ClientOptions, ClientTlsOptions } from "./client.js";
export { ERROR_CODE_TRAILER, FIELD_VIOLATIONS_TRAILER, assertNever, grpcStatusOf, toServiceError } from "./errors.js";
export { MAX_RECEIVE_MESSAGE_BYTES, createServer, reflectionPackageOf } from "./server.js";
export type { CallContext, MethodImpl, ServerOptions, ServerStreamImpl, ServerTlsOptions, ServiceImpl, SluiceServer, UnaryImpl } from "./server.js";
export { TRACEPARENT_METADATA, contextFromMetadata, injectTraceparent, rpcSpanName, startClientSpan, startServerSpan } from "./tracing.js";
export type { RpcSpan } from "./tracing.js";
export { status as GrpcStatus } from "@grpc/grpc-js";
export type { Metadata } from "@grpc/grpc-js";
