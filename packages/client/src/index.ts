// Typed clients of a Sluice installation and the AWS-compatible pipeline file
// reader. Every export is named here.
export { actionLogLines, createApprovalClient, createArtifactClient, createJobClient, createSluiceClient, createSourceClient } from "./sluice-client.js";
export type { SluiceClient, SluiceClientOptions } from "./sluice-client.js";
export { readPipelineJson, readRequestJson } from "@sluice/domain";
export { SluiceRpcError, isRpcError } from "@sluice/grpc";
export type { CallOptions, Client, ClientTlsOptions } from "@sluice/grpc";
