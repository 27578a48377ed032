import { create, toBinary } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

const { STRING, MESSAGE, ENUM } = FieldDescriptorProto_Type;
const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;

/**
 * grpc/health/v1/health.proto as a serialized FileDescriptorProto, for the
 * reflection service (so `grpcurl ... grpc.health.v1.Health/Check` works).
 * Written out here because the descriptor grpc-health-check builds through
 * protobufjs names its map entry wrongly, which strict clients (grpcurl) reject.
 * Mirrors node_modules/grpc-health-check/proto/health/v1/health.proto.
 */
export const HEALTH_FILE_DESCRIPTOR: Buffer = Buffer.from(
  toBinary(
    FileDescriptorProtoSchema,
    create(FileDescriptorProtoSchema, {
      name: "grpc/health/v1/health.proto",
      package: "grpc.health.v1",
      syntax: "proto3",
      messageType: [
        { name: "HealthListRequest" },
        {
          name: "HealthListResponse",
          field: [{ name: "statuses", jsonName: "statuses", number: 1, label: REPEATED, type: MESSAGE, typeName: ".grpc.health.v1.HealthListResponse.StatusesEntry" }],
          nestedType: [
            {
              name: "StatusesEntry",
              field: [
                { name: "key", jsonName: "key", number: 1, label: OPTIONAL, type: STRING },
                { name: "value", jsonName: "value", number: 2, label: OPTIONAL, type: MESSAGE, typeName: ".grpc.health.v1.HealthCheckResponse" },
              ],
              options: { mapEntry: true },
            },
          ],
        },
        { name: "HealthCheckRequest", field: [{ name: "service", jsonName: "service", number: 1, label: OPTIONAL, type: STRING }] },
        {
          name: "HealthCheckResponse",
          field: [{ name: "status", jsonName: "status", number: 1, label: OPTIONAL, type: ENUM, typeName: ".grpc.health.v1.HealthCheckResponse.ServingStatus" }],
          enumType: [
            {
              name: "ServingStatus",
              value: [
                { name: "UNKNOWN", number: 0 },
                { name: "SERVING", number: 1 },
                { name: "NOT_SERVING", number: 2 },
                { name: "SERVICE_UNKNOWN", number: 3 },
              ],
            },
          ],
        },
      ],
      service: [
        {
          name: "Health",
          method: [
            { name: "Check", inputType: ".grpc.health.v1.HealthCheckRequest", outputType: ".grpc.health.v1.HealthCheckResponse" },
            { name: "Watch", inputType: ".grpc.health.v1.HealthCheckRequest", outputType: ".grpc.health.v1.HealthCheckResponse", serverStreaming: true },
            { name: "List", inputType: ".grpc.health.v1.HealthListRequest", outputType: ".grpc.health.v1.HealthListResponse" },
          ],
        },
      ],
    }),
  ),
);
