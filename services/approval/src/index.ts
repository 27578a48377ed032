// @sluice/approval: manual approvals. Exported for in-process tests and the
// dev launcher; other services talk to it over gRPC and the bus only.
export { APPROVAL_PERMISSIONS, createApprovalApi, decodeCursor, encodeCursor, toApproval } from "./approval-api.js";
export type { ApprovalApiDeps } from "./approval-api.js";
export { createApprovalStore } from "./approval-store.js";
export type { ApprovalDoc, ApprovalStore, AuditDoc, DecisionDoc, ListCursor, NotificationStatus } from "./approval-store.js";
export { approvalEnv, loadApprovalConfig } from "./config.js";
export { DEFAULT_APPROVAL_TTL_MS, EXPIRY_SWEEP_BATCH, expireDue, expiredMessage } from "./expiry.js";
export {
  NOTIFY_LEASE_MS,
  NOTIFY_MAX_ATTEMPTS,
  NOTIFY_RETRY_BASE_MS,
  NOTIFY_SWEEP_BATCH,
  NOTIFY_TIMEOUT_MS,
  createNotifier,
  notificationOf,
  notificationUrlProblem,
  notifyRetryDelayMs,
} from "./notifications.js";
export type { ApprovalNotification, NotificationSettings, Notifier } from "./notifications.js";
export type { ApprovalConfig } from "./config.js";
export { approvalOfJob, createJobIntake } from "./job-intake.js";
export type { Job } from "./job-intake.js";
export { SWEEP_BATCH, UNPUBLISHED_GRACE_MS, createResultOutbox, resultOf } from "./results.js";
export type { JobResult, PublishResult, ResultOutbox } from "./results.js";
export { APPROVAL_DURABLE, approvalJobFilter, startApprovalService } from "./service.js";
export type { ApprovalServiceDeps, RunningApprovalService } from "./service.js";
