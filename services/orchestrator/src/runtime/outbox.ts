import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Subjects } from "@sluice/bus";
import { jobInit, stateChangeEventInit } from "@sluice/domain";
import type { Emitted, ExecutionCommand, JobSpec } from "@sluice/domain";
import { CancelJobSchema, JobSchema, PipelineDeclarationSchema, StateChangeEventSchema } from "@sluice/proto";
import type { CancelJob, Job, PipelineDeclaration, StateChangeEvent } from "@sluice/proto";

/**
 * One message waiting in a runtime document's outbox. It is written in the
 * same conditional write as the state that caused it, published afterwards
 * with `id` as Nats-Msg-Id, then dropped by a later write. Payloads are protobuf bytes, stored
 * opaque (see runtime-codec.ts), so user-chosen map keys (configuration keys) never become
 * database field names.
 */
export interface OutboxEntry {
  /** The message's own id: the job id, the event id or `cancel:<jobId>`; also the Nats-Msg-Id. */
  id: string;
  /** When the entry was written (epoch ms); the sweeper re-publishes old ones. */
  at: number;
  /**
   * job and event go to JetStream; cancel is a core NATS message on
   * `sluice.control.cancel` (a runner that misses it still stops at the job's deadline).
   */
  type: "job" | "event" | "cancel";
  subject: string;
  /** Protobuf binary of a `Job` (without grants), a `StateChangeEvent` or a `CancelJob`. */
  payload: Uint8Array;
  /** Jobs: ids of the input artifacts to grant GETs for. */
  inputArtifactIds?: string[];
  /** Jobs: names of the outputs to grant PUTs for. */
  outputNames?: string[];
}

/**
 * Where a job goes: a custom action type's jobs to `sluice.jobs.custom.<category>.<provider>.<version>`
 * (the orchestrator's JobService takes them for job workers), every other job to its pool's subject.
 */
export function jobSubjectOf(subjects: Subjects, job: JobSpec): string {
  if (job.builtIn === "Custom") return subjects.customJobSubject(job.actionTypeId.category, job.actionTypeId.provider, job.actionTypeId.version);
  return subjects.jobSubject(job.pool, job.category, job.builtIn);
}

/**
 * The outbox entry of a DispatchJob: `sluice.jobs.<pool>.<category>.<built-in provider>`, the
 * pool being the action's `RunnerPool` (see JobSpec.pool). Approvals and Commands rules are
 * always in pool `default`; approvals therefore land on `sluice.jobs.default.Approval.Manual`,
 * the approval service's queue.
 */
export function jobEntry(subjects: Subjects, job: JobSpec, now: number): OutboxEntry {
  return {
    id: job.jobId,
    at: now,
    type: "job",
    subject: jobSubjectOf(subjects, job),
    payload: toBinary(JobSchema, create(JobSchema, jobInit(job, { inputs: [], outputs: [] }))),
    inputArtifactIds: [...job.inputArtifactIds],
    outputNames: [...job.outputNames],
  };
}

/**
 * The outbox entry of a CancelJob command: published on the core NATS subject
 * `sluice.control.cancel`, which every runner subscribes to.
 */
export function cancelEntry(subjects: Subjects, cancel: Extract<ExecutionCommand, { type: "CancelJob" }>, now: number): OutboxEntry {
  const message = create(CancelJobSchema, {
    jobId: cancel.jobId,
    actionExecutionId: cancel.actionExecutionId,
    pipelineName: cancel.pipelineName,
    reason: cancel.reason,
  });
  return { id: `cancel:${cancel.jobId}`, at: now, type: "cancel", subject: subjects.controlSubject("cancel"), payload: toBinary(CancelJobSchema, message) };
}

/** The outbox entry of a command decided by decide(). */
export function commandEntry(subjects: Subjects, command: ExecutionCommand, now: number): OutboxEntry {
  switch (command.type) {
    case "DispatchJob":
      return jobEntry(subjects, command.job, now);
    case "CancelJob":
      return cancelEntry(subjects, command, now);
  }
}

/** The outbox entry of a state change emitted by decide(). */
export function eventEntry(subjects: Subjects, emitted: Emitted, now: number): OutboxEntry {
  const e = emitted.event;
  const message = create(StateChangeEventSchema, stateChangeEventInit(e));
  return { id: e.eventId, at: now, type: "event", subject: subjects.eventSubject(e.pipeline, emitted.kind), payload: toBinary(StateChangeEventSchema, message) };
}

/** Detail type of declaration changes (the source-poller learns Git sources from them). */
export const DECLARATION_DETAIL_TYPE = "Sluice Pipeline Declaration Change";

/** State of a declaration change event. */
export type DeclarationChange = "CREATED" | "UPDATED" | "DELETED";

/**
 * The outbox entry announcing a created, updated or deleted declaration.
 * The id names pipeline, change and version, so a republish is deduplicated.
 */
export function declarationEntry(
  subjects: Subjects,
  name: string,
  change: DeclarationChange,
  version: number,
  declaration: PipelineDeclaration | undefined,
  now: number,
): OutboxEntry {
  const id = `${name}:declaration:${change}:${version}:${now}`;
  const message = create(StateChangeEventSchema, {
    eventId: id,
    detailType: DECLARATION_DETAIL_TYPE,
    time: timestampFromMs(now),
    pipeline: name,
    version,
    state: change,
    declaration: declaration ?? create(PipelineDeclarationSchema, { name }),
  });
  return { id, at: now, type: "event", subject: subjects.eventSubject(name, "declaration"), payload: toBinary(StateChangeEventSchema, message) };
}

/** Decodes an entry's Job payload. */
export function parseJob(entry: OutboxEntry): Job {
  return fromBinary(JobSchema, entry.payload);
}

/** Decodes an entry's CancelJob payload. */
export function parseCancel(entry: OutboxEntry): CancelJob {
  return fromBinary(CancelJobSchema, entry.payload);
}

/** Decodes an entry's StateChangeEvent payload. */
export function parseEvent(entry: OutboxEntry): StateChangeEvent {
  return fromBinary(StateChangeEventSchema, entry.payload);
}
