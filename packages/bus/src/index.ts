// @sluice/bus: the JetStream catalog, publishing with Nats-Msg-Id and trace headers, and
// consume loops that ack, retry with backoff, or dead-letter.
export { connectBus, isPermissionViolation } from "./bus.js";
export type {
  Bus,
  BusCredentials,
  BusOptions,
  BusTls,
  EventHandler,
  EventMeta,
  EventSubscription,
  PublishOptions,
  PublishResult,
  SubscribeEventsOptions,
} from "./bus.js";
export {
  CUSTOM_JOBS_POOL,
  DEFAULT_PARTITIONS,
  DLQ_MAX_AGE_MS,
  DUPLICATE_WINDOW_MS,
  EVENTS_MAX_AGE_MS,
  LOGS_MAX_AGE_MS,
  LOGS_MAX_BYTES,
  STREAM_KEYS,
  controlSubject,
  createCatalog,
  dlqSubject,
  eventSubject,
  jobSubject,
  partitionOf,
  resultSubject,
  sanitizeToken,
  sourceSubject,
} from "./catalog.js";
export type { Catalog, CatalogOptions, ControlKind, EventKind, ResultPublisher, StreamDefinition, StreamKey, StreamNames, Subjects } from "./catalog.js";
export {
  APPROVAL_DURABLE_NAME,
  SOURCE_POLLER_DURABLE_NAME,
  SOURCE_POLLER_RULES_DURABLE_NAME,
  approvalJobFilter,
  busUserName,
  clusterBusAuthorization,
  generateBusAuthorization,
  inboxPrefixFor,
  natsAuthorizationConfig,
  permissionsFor,
  resultPublisherOf,
  runnerDurableName,
  runnerPoolsOf,
} from "./permissions.js";
export type { AuthorizationConfigOptions, BusLogin, GeneratedBusAuthorization, BusPrincipal, BusRole, BusUser, PasswordSource, ResultPublisherPrincipal, SubjectPermissions } from "./permissions.js";
export { DLQ_MESSAGES_METRIC, backoffMs, createSharedSlots, isConsumerNotFound, transientBackoffMs } from "./consume.js";
export { isTransientError } from "./transient.js";
export type { ConsumeOptions, Consumer, HandlerContext, MessageHandler, SharedSlots } from "./consume.js";
export { TRACEPARENT, activeTraceparent, contextFromHeaders, contextFromTraceparent } from "./tracing.js";
