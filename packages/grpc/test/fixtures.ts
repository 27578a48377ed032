// Test-only descriptors and helpers. Sluice's contracts have no server-streaming
// method yet, so a small test service is declared here from descriptors, reusing
// the real sluice.v1 messages; the reflection messages are declared the same way
// so the test can speak the reflection protocol without another dependency.
import { create, createFileRegistry } from "@bufbuild/protobuf";
import type { DescMessage, DescService } from "@bufbuild/protobuf";
import type { GenMessage, GenService } from "@bufbuild/protobuf/codegenv2";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { Logger } from "@sluice/domain";
import { file_sluice_v1_approval_service } from "@sluice/proto";
import type { ApprovalSchema, ListApprovalsRequestSchema, ListApprovalsResponseSchema } from "@sluice/proto";

const { STRING: TYPE_STRING, MESSAGE: TYPE_MESSAGE, BYTES: TYPE_BYTES, INT32: TYPE_INT32 } = FieldDescriptorProto_Type;
const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;

const watchFile = create(FileDescriptorProtoSchema, {
  name: "sluice/test/v1/watch_test.proto",
  package: "sluice.test.v1",
  syntax: "proto3",
  dependency: ["sluice/v1/approval_service.proto"],
  service: [
    {
      name: "WatchTestService",
      method: [
        { name: "WatchApprovals", inputType: ".sluice.v1.ListApprovalsRequest", outputType: ".sluice.v1.Approval", serverStreaming: true },
        { name: "ListApprovals", inputType: ".sluice.v1.ListApprovalsRequest", outputType: ".sluice.v1.ListApprovalsResponse" },
      ],
    },
  ],
});

const watchRegistry = createFileRegistry(watchFile, (name) => (name === "sluice/v1/approval_service.proto" ? file_sluice_v1_approval_service : undefined));

/** A service with a server-streaming method and a unary method named like ApprovalService's. */
export const WatchTestService = watchRegistry.getService("sluice.test.v1.WatchTestService") as DescService as GenService<{
  watchApprovals: { methodKind: "server_streaming"; input: typeof ListApprovalsRequestSchema; output: typeof ApprovalSchema };
  listApprovals: { methodKind: "unary"; input: typeof ListApprovalsRequestSchema; output: typeof ListApprovalsResponseSchema };
}>;

const pkg = "grpc.reflection.v1";
const reflectionFile = create(FileDescriptorProtoSchema, {
  name: "grpc/reflection/v1/reflection_test.proto",
  package: pkg,
  syntax: "proto3",
  messageType: [
    {
      name: "ServerReflectionRequest",
      field: [
        { name: "host", jsonName: "host", number: 1, type: TYPE_STRING, label: OPTIONAL },
        { name: "file_containing_symbol", jsonName: "fileContainingSymbol", number: 4, type: TYPE_STRING, label: OPTIONAL, oneofIndex: 0 },
        { name: "list_services", jsonName: "listServices", number: 7, type: TYPE_STRING, label: OPTIONAL, oneofIndex: 0 },
      ],
      oneofDecl: [{ name: "message_request" }],
    },
    {
      name: "ServerReflectionResponse",
      field: [
        { name: "valid_host", jsonName: "validHost", number: 1, type: TYPE_STRING, label: OPTIONAL },
        { name: "file_descriptor_response", jsonName: "fileDescriptorResponse", number: 4, type: TYPE_MESSAGE, typeName: `.${pkg}.FileDescriptorResponse`, label: OPTIONAL, oneofIndex: 0 },
        { name: "list_services_response", jsonName: "listServicesResponse", number: 6, type: TYPE_MESSAGE, typeName: `.${pkg}.ListServiceResponse`, label: OPTIONAL, oneofIndex: 0 },
        { name: "error_response", jsonName: "errorResponse", number: 7, type: TYPE_MESSAGE, typeName: `.${pkg}.ErrorResponse`, label: OPTIONAL, oneofIndex: 0 },
      ],
      oneofDecl: [{ name: "message_response" }],
    },
    { name: "FileDescriptorResponse", field: [{ name: "file_descriptor_proto", jsonName: "fileDescriptorProto", number: 1, type: TYPE_BYTES, label: REPEATED }] },
    { name: "ListServiceResponse", field: [{ name: "service", jsonName: "service", number: 1, type: TYPE_MESSAGE, typeName: `.${pkg}.ServiceResponse`, label: REPEATED }] },
    { name: "ServiceResponse", field: [{ name: "name", jsonName: "name", number: 1, type: TYPE_STRING, label: OPTIONAL }] },
    {
      name: "ErrorResponse",
      field: [
        { name: "error_code", jsonName: "errorCode", number: 1, type: TYPE_INT32, label: OPTIONAL },
        { name: "error_message", jsonName: "errorMessage", number: 2, type: TYPE_STRING, label: OPTIONAL },
      ],
    },
  ],
});

const reflectionRegistry = createFileRegistry(reflectionFile, () => undefined);

function message(name: string): DescMessage {
  const desc = reflectionRegistry.getMessage(`${pkg}.${name}`);
  if (desc === undefined) throw new Error(`test descriptor ${name} missing`);
  return desc;
}

/** The subset of grpc.reflection.v1 messages the tests use. */
export type ReflectionRequest = {
  host: string;
  messageRequest: { case: "fileContainingSymbol"; value: string } | { case: "listServices"; value: string } | { case: undefined; value?: undefined };
};
export type ReflectionResponse = {
  messageResponse:
    | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
    | { case: "listServicesResponse"; value: { service: { name: string }[] } }
    | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } }
    | { case: undefined; value?: undefined };
};
export const ServerReflectionRequestSchema = message("ServerReflectionRequest") as GenMessage<ReflectionRequest & { $typeName: "grpc.reflection.v1.ServerReflectionRequest" }>;
export const ServerReflectionResponseSchema = message("ServerReflectionResponse") as GenMessage<ReflectionResponse & { $typeName: "grpc.reflection.v1.ServerReflectionResponse" }>;

/** One recorded log line. */
export interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  fields: Record<string, unknown>;
}

/** A Logger that keeps every line, to assert on what was (and was not) logged. */
export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (base: Record<string, unknown>): Logger => ({
    debug: (msg, fields) => lines.push({ level: "debug", msg, fields: { ...base, ...fields } }),
    info: (msg, fields) => lines.push({ level: "info", msg, fields: { ...base, ...fields } }),
    warn: (msg, fields) => lines.push({ level: "warn", msg, fields: { ...base, ...fields } }),
    error: (msg, fields) => lines.push({ level: "error", msg, fields: { ...base, ...fields } }),
    child: (fields) => make({ ...base, ...fields }),
  });
  return Object.assign(make({}), { lines });
}
