import { fromBinary, fromJson } from "@bufbuild/protobuf";
import type { JsonValue, MessageInitShape } from "@bufbuild/protobuf";
import type { Bus } from "@sluice/bus";
import { DomainError, logArtifactIdOf, logStreamArnOf, resolveProvider } from "@sluice/domain";
import type { ActionSpec, ExecutionRuntime, PipelineRuntime, PipelineSpec } from "@sluice/domain";
import { GrpcStatus, isRpcError } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { LogBatchSchema, LogLineSchema } from "@sluice/proto";
import type { ArtifactService, GetActionLogResponseSchema, LogBatch, LogLine, StageStateSchema } from "@sluice/proto";
import type { Collection } from "mongodb";
import type { ArchivedExecution } from "../runtime/runtime-store.js";
import { plainExecution } from "./history.js";

/**
 * GetActionLog's parts: finding the action execution, reading its stored log (the artifact
 * `<actionExecutionId>/log.<attempt>` the runner committed), and reading SLUICE_LOGS from the
 * start for a running action (or a finished one whose log was not stored).
 */

type ResponseInit = MessageInitShape<typeof GetActionLogResponseSchema>;

/** Lines per GetActionLog message when a stored log is sent. */
const LINES_PER_MESSAGE = 500;
/** How long one wait for the next batch lasts before the action's status is checked again. */
const POLL_MS = 1_000;
/** The most bytes of a stored log read back (the runner stores at most 32 MiB). */
const MAX_STORED_LOG_BYTES = 64 * 1024 * 1024;

/** One attempt of one action, as GetActionLog needs it. */
export interface FoundAction {
  readonly exec: ExecutionRuntime;
  readonly stageName: string;
  readonly actionName: string;
  readonly attempt: number;
  readonly status: string;
}

/**
 * Whether a runner keeps a log of the action: every built-in action but manual approvals (see
 * the outbox's log grant). Custom actions run on job workers, which keep their own logs.
 */
export function hasRunnerLog(action: Pick<ActionSpec, "category" | "owner" | "provider" | "providerVersion"> | undefined): boolean {
  if (action === undefined) return false;
  const spec = resolveProvider({ category: action.category, owner: action.owner, provider: action.provider, version: action.providerVersion });
  return spec !== undefined && spec.category !== "Approval";
}

/** The log reference of an action execution, or "" when its action keeps no log. */
export function logLinkOf(pipelineName: string, actionExecutionId: string, action: Pick<ActionSpec, "category" | "owner" | "provider" | "providerVersion"> | undefined): string {
  return actionExecutionId !== "" && hasRunnerLog(action) ? logStreamArnOf(pipelineName, actionExecutionId) : "";
}

/** Sets each action's latestExecution.logStreamArn (for actions with a runner log) in place (GetPipelineState, watch snapshots). */
export function linkLogs(pipelineName: string, stageStates: readonly MessageInitShape<typeof StageStateSchema>[] | undefined, spec: PipelineSpec | undefined): void {
  for (const stage of stageStates ?? []) {
    for (const a of stage.actionStates ?? []) {
      if (a.latestExecution === undefined) continue;
      const link = logLinkOf(pipelineName, a.latestExecution.actionExecutionId ?? "", actionSpecOf(spec, stage.stageName ?? "", a.actionName ?? ""));
      if (link !== "") a.latestExecution.logStreamArn = link;
    }
  }
}

/** The declared action `actionName` of stage `stageName` in `spec`. */
export function actionSpecOf(spec: PipelineSpec | undefined, stageName: string, actionName: string): ActionSpec | undefined {
  return spec?.stages.find((s) => s.name === stageName)?.actions.find((a) => a.name === actionName);
}

function findIn(exec: ExecutionRuntime, actionExecutionId: string): FoundAction | undefined {
  for (const stage of exec.stages) {
    for (const run of stage.actions) {
      for (const a of [run, ...(run.attempts ?? [])]) {
        if (a.actionExecutionId === actionExecutionId) return { exec, stageName: stage.name, actionName: run.name, attempt: a.attempt, status: a.status };
      }
    }
  }
  return undefined;
}

/** The attempt with `actionExecutionId` in the pipeline's live or archived executions, else ActionExecutionNotFoundException. */
export async function findActionExecution(
  pipelineName: string,
  actionExecutionId: string,
  state: PipelineRuntime | undefined,
  archive: Collection<ArchivedExecution>,
): Promise<FoundAction> {
  for (const exec of Object.values(state?.executions ?? {})) {
    const found = findIn(exec, actionExecutionId);
    if (found !== undefined) return found;
  }
  const archived = await archive.findOne({
    pipelineName,
    $or: [{ "stages.actions.actionExecutionId": actionExecutionId }, { "stages.actions.attempts.actionExecutionId": actionExecutionId }],
  });
  const found = archived === null ? undefined : findIn(plainExecution(archived), actionExecutionId);
  if (found !== undefined) return found;
  throw new DomainError("ActionExecutionNotFoundException", `pipeline "${pipelineName}" has no action execution ${actionExecutionId}`, [
    { field: "actionExecutionId", message: `action execution ${actionExecutionId} does not exist` },
  ]);
}

/**
 * The stored log of one attempt, or undefined when there is none yet (not committed, or no
 * artifact service): the caller then reads the stream.
 */
export async function readStoredLog(artifacts: Client<typeof ArtifactService> | undefined, actionExecutionId: string, attempt: number, signal: AbortSignal): Promise<LogLine[] | undefined> {
  if (artifacts === undefined || attempt < 1) return undefined;
  let url: string;
  try {
    const answer = await artifacts.createDownloadGrant({ artifactId: logArtifactIdOf(actionExecutionId, attempt) }, { signal });
    url = answer.grant?.url ?? "";
  } catch (err) {
    // Never issued (an older runner, no log grant) or not committed (the runner died first).
    if (isRpcError(err) && (err.code === GrpcStatus.NOT_FOUND || err.code === GrpcStatus.FAILED_PRECONDITION)) return undefined;
    throw err;
  }
  if (url === "") return undefined;
  const res = await fetch(url, { signal });
  if (!res.ok) throw new DomainError("ServiceUnavailableException", `the artifact store answered ${res.status} for the log of ${actionExecutionId}`);
  const length = Number(res.headers.get("content-length") ?? "0");
  if (length > MAX_STORED_LOG_BYTES) throw new DomainError("ServiceUnavailableException", `the stored log of ${actionExecutionId} is larger than ${MAX_STORED_LOG_BYTES} bytes`);
  const text = await res.text();
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => fromJson(LogLineSchema, JSON.parse(l) as JsonValue, { ignoreUnknownFields: true }));
}

/** A stored log as GetActionLog messages. */
export function* storedLogMessages(lines: readonly LogLine[], status: string): Generator<ResponseInit> {
  for (let i = 0; i < lines.length; i += LINES_PER_MESSAGE) {
    yield { lines: lines.slice(i, i + LINES_PER_MESSAGE), status, source: "store" };
  }
  if (lines.length === 0) yield { lines: [], status, source: "store" };
}

/** What reading SLUICE_LOGS needs. */
export interface LogStreamReader {
  /** Opens the action execution's subject from its first message. */
  open(pipelineName: string, actionExecutionId: string): Promise<LogCursor>;
}

/** An ordered read of one subject. */
export interface LogCursor {
  /** Messages on the subject not yet read when it was opened. */
  readonly pendingAtOpen: number;
  /** The next batch, or null when none arrived within `ms`. */
  next(ms: number): Promise<{ batch: LogBatch; pending: number } | null>;
  close(): Promise<void>;
}

/** The reader over the bus: an ordered ephemeral consumer per call, deleted when it ends. */
export function busLogReader(bus: Pick<Bus, "js" | "streams" | "subjects">): LogStreamReader {
  return {
    async open(pipelineName, actionExecutionId) {
      const consumer = await bus.js.consumers.get(bus.streams.logs, { filter_subjects: bus.subjects.logSubject(pipelineName, actionExecutionId) });
      const info = await consumer.info(true);
      return {
        pendingAtOpen: info.num_pending,
        async next(ms) {
          const m = await consumer.next({ expires: Math.max(ms, 1_000) });
          if (m === null) return null;
          return { batch: fromBinary(LogBatchSchema, m.data), pending: m.info.pending };
        },
        async close() {
          await consumer.delete().catch(() => false);
        },
      };
    },
  };
}

/** Options of {@link streamedLogMessages}. */
export interface StreamedLogOptions {
  readonly reader: LogStreamReader;
  readonly pipelineName: string;
  readonly actionExecutionId: string;
  /** Follow until the action ends; otherwise stop after what is on the stream now. */
  readonly follow: boolean;
  /** The action's status now (re-read while following). */
  readonly status: () => Promise<string>;
  readonly signal: AbortSignal;
}

/**
 * The log's lines from SLUICE_LOGS: replayed from the start, then (follow) every new batch as
 * it arrives, until the job's final batch, or — should a runner die without one — one quiet
 * poll after the action is no longer InProgress.
 */
export async function* streamedLogMessages(opts: StreamedLogOptions): AsyncGenerator<ResponseInit> {
  const cursor = await opts.reader.open(opts.pipelineName, opts.actionExecutionId);
  try {
    let status = await opts.status();
    let running = status === "InProgress";
    let left = cursor.pendingAtOpen;
    // A final batch was read: the action ends as soon as its result is applied.
    let finalSeen = false;
    if (!opts.follow && left === 0) {
      yield { lines: [], status, source: "stream" };
      return;
    }
    for (;;) {
      if (opts.signal.aborted) return;
      const got = await cursor.next(POLL_MS);
      if (got === null) {
        if (!opts.follow) return;
        const wasRunning = running;
        status = await opts.status();
        running = status === "InProgress";
        // Ended after its final batch, or with none (a runner that died): one more quiet poll, then stop.
        if (!running && (finalSeen || !wasRunning)) {
          yield { lines: [], status, source: "stream" };
          return;
        }
        continue;
      }
      const { batch, pending } = got;
      left = pending;
      // Subject tokens are sanitized: another id that sanitizes the same is not this action's.
      if (batch.actionExecutionId !== opts.actionExecutionId) continue;
      if (batch.lines.length > 0) {
        finalSeen = false;
        yield { lines: batch.lines, status, source: "stream" };
      }
      if (!opts.follow && left === 0) return;
      if (opts.follow && batch.final && left === 0) {
        finalSeen = true;
        status = await opts.status();
        // A final batch ends this run of the job; while the action still runs, another attempt may follow.
        if (status !== "InProgress") {
          yield { lines: [], status, source: "stream" };
          return;
        }
      }
    }
  } finally {
    await cursor.close();
  }
}
