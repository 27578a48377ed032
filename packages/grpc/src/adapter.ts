import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/** The HTTP/2 path of a method: `/sluice.v1.PipelineService/CreatePipeline`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/**
 * Encodes a message, or an init object that is turned into one first (`create`
 * returns a message of the right type unchanged), so handlers and callers may
 * pass plain objects.
 */
export function serializerOf<D extends DescMessage>(desc: D): (value: MessageInitShape<D> | MessageShape<D>) => Buffer {
  return (value) => {
    const bytes = toBinary(desc, create(desc, value as MessageInitShape<D>));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/** Decodes a message; malformed bytes throw, which grpc-js reports as INTERNAL to the peer. */
export function deserializerOf<D extends DescMessage>(desc: D): (bytes: Buffer) => MessageShape<D> {
  return (bytes) => fromBinary(desc, bytes);
}

/**
 * The grpc-js service definition of a protobuf-es service, keyed by method
 * name as written in the .proto (`CreatePipeline`), which is what grpc-js
 * matches implementation keys against.
 */
export function serviceDefinitionOf(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.name] = {
      path: methodPath(method),
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializerOf(method.input) as (value: unknown) => Buffer,
      requestDeserialize: deserializerOf(method.input),
      responseSerialize: serializerOf(method.output) as (value: unknown) => Buffer,
      responseDeserialize: deserializerOf(method.output),
      originalName: method.localName,
    };
  }
  return definition;
}
