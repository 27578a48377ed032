import { createClient } from "@sluice/grpc";
import type { Client, ClientTlsOptions } from "@sluice/grpc";
import { ActionTypeService, ApprovalService, ArtifactService, JobService, PipelineService, SourceService } from "@sluice/proto";
import type { LogLine } from "@sluice/proto";

/** Where and as whom to connect. */
export interface SluiceClientOptions {
  /** `host:port` of the service. */
  readonly address: string;
  /** Bearer token; a function is asked on every call (for tokens that rotate). */
  readonly token?: string | (() => string);
  /** Default deadline of unary calls in ms. */
  readonly deadlineMs?: number;
  /**
   * TLS: `ca` (the CA the server's certificate chains to; omitted: the system's roots), and for
   * servers requiring client certificates, `cert` and `key`. Undefined: plaintext.
   */
  readonly tls?: ClientTlsOptions | undefined;
}

/** The public API of a Sluice installation (the orchestrator's PipelineService). */
export interface SluiceClient {
  /** CreatePipeline, GetPipeline, ... under their local names (`pipelines.createPipeline(...)`). */
  readonly pipelines: Client<typeof PipelineService>;
  /** CreateCustomActionType, ListActionTypes, GetActionType, UpdateActionType, DeleteCustomActionType. */
  readonly actionTypes: Client<typeof ActionTypeService>;
  /** Closes the connections. */
  close(): void;
}

/** Connects to the orchestrator's PipelineService and ActionTypeService. */
export function createSluiceClient(opts: SluiceClientOptions): SluiceClient {
  const pipelines = createClient(PipelineService, opts.address, clientOptions(opts));
  const actionTypes = createClient(ActionTypeService, opts.address, clientOptions(opts));
  return {
    pipelines,
    actionTypes,
    close: () => {
      pipelines.close();
      actionTypes.close();
    },
  };
}

/**
 * An action execution's log lines in order (GetActionLog): a finished action's whole log, or a
 * running one's lines so far and, with `follow`, every later line as it is written until the action ends.
 */
export async function* actionLogLines(
  client: SluiceClient,
  request: { pipelineName: string; actionExecutionId: string; follow?: boolean },
  signal?: AbortSignal,
): AsyncGenerator<LogLine> {
  const stream = client.pipelines.getActionLog({ ...request, follow: request.follow ?? false }, signal === undefined ? {} : { signal });
  for await (const message of stream) yield* message.lines;
}

/** A client of the approval service (ListApprovals, PutApprovalResult). */
export function createApprovalClient(opts: SluiceClientOptions): Client<typeof ApprovalService> {
  return createClient(ApprovalService, opts.address, clientOptions(opts));
}

/** A client of the artifact service (grants, commits, downloads). */
export function createArtifactClient(opts: SluiceClientOptions): Client<typeof ArtifactService> {
  return createClient(ArtifactService, opts.address, clientOptions(opts));
}

/**
 * A client of the orchestrator's JobService, for job workers of custom action types
 * (PollForJobs, AcknowledgeJob, GetJobDetails, PutJobSuccessResult, PutJobFailureResult);
 * its token needs the `runner` role.
 */
export function createJobClient(opts: SluiceClientOptions): Client<typeof JobService> {
  return createClient(JobService, opts.address, clientOptions(opts));
}

/**
 * A client of the source poller's SourceService (PutWebhook, ListWebhooks, DeleteWebhook,
 * Register/DeregisterWebhookWithThirdParty); the source poller has its own address, and managing
 * webhooks needs the `operator` role.
 */
export function createSourceClient(opts: SluiceClientOptions): Client<typeof SourceService> {
  return createClient(SourceService, opts.address, clientOptions(opts));
}

// exactOptionalPropertyTypes: pass only the options that are set.
function clientOptions(opts: SluiceClientOptions): { token?: string | (() => string); deadlineMs?: number; tls?: ClientTlsOptions } {
  return {
    ...(opts.token === undefined ? {} : { token: opts.token }),
    ...(opts.deadlineMs === undefined ? {} : { deadlineMs: opts.deadlineMs }),
    ...(opts.tls === undefined ? {} : { tls: opts.tls }),
  };
}
