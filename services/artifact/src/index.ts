// @sluice/artifact: artifact metadata and presigned grants. Exported for
// in-process tests and the dev launcher; other services talk to it over gRPC only.
export { ARTIFACT_PERMISSIONS, MAX_DEPLOY_KEYS_PER_CALL, createArtifactApi } from "./artifact-api.js";
export type { ArtifactApiDeps } from "./artifact-api.js";
export { createArtifactStore } from "./artifact-store.js";
export type { ArtifactDoc, ArtifactStatus, ArtifactStore, PendingArtifact } from "./artifact-store.js";
export { artifactEnv, loadArtifactConfig } from "./config.js";
export { createDeployAllowanceStore } from "./deploy-allowances.js";
export type { DeployAllowance, DeployAllowanceStore } from "./deploy-allowances.js";
export { parseDeployBuckets } from "./deploy-buckets.js";
export type { DeployBuckets } from "./deploy-buckets.js";
export type { ArtifactConfig } from "./config.js";
export { MAX_PRESIGN_SECONDS, createObjectStore } from "./object-store.js";
export type { ObjectStore, PresignedGrant, S3Settings } from "./object-store.js";
export { startArtifactService } from "./service.js";
export type { ArtifactServiceDeps, RunningArtifactService } from "./service.js";
export { artifactIdOf, artifactKeyOf } from "./validation.js";
