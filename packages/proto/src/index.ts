// The generated contract, re-exported whole: this package holds generated code only.
/* eslint-disable no-restricted-syntax */
export * from "./gen/sluice/v1/pipeline_pb.js";
export * from "./gen/sluice/v1/execution_pb.js";
export * from "./gen/sluice/v1/pipeline_service_pb.js";
export * from "./gen/sluice/v1/approval_service_pb.js";
export * from "./gen/sluice/v1/artifact_service_pb.js";
export * from "./gen/sluice/v1/bus_pb.js";
export * from "./gen/sluice/v1/job_service_pb.js";
export * from "./gen/sluice/v1/action_type_service_pb.js";
export * from "./gen/sluice/v1/logs_pb.js";
export * from "./gen/sluice/v1/source_service_pb.js";
