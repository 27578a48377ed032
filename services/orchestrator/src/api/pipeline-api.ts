import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Subjects } from "@sluice/bus";
import {
  DomainError,
  assertValidPipeline,
  checkDeclarationSize,
  decide,
  declarationSizeBytes,
  executionSummaryView,
  executionView,
  initialRuntime,
  normalizePipeline,
  pipelineStateView,
} from "@sluice/domain";
import type { ExecutionRuntime, Logger, PipelineRuntime, PipelineSpec } from "@sluice/domain";
import { GrpcStatus, isRpcError } from "@sluice/grpc";
import type { Client, PermissionTable, ServiceImpl } from "@sluice/grpc";
import type { ApprovalService, PipelineDeclaration, PipelineExecutionSummarySchema, PipelineService, Tag } from "@sluice/proto";
import type { Collection, Filter } from "mongodb";
import { decodeToken, encodeToken } from "../paging.js";
import { pipelineNotFound } from "../pipelines/pipeline-store.js";
import type { PipelineStore, StoredPipeline, StoredTag } from "../pipelines/pipeline-store.js";
import { declarationEntry } from "../runtime/outbox.js";
import type { ArchivedExecution, RuntimeStore } from "../runtime/runtime-store.js";
import { checks } from "./request-validation.js";

/**
 * Who may call what (SPEC "Roles / permissions"): viewers read, operators
 * also change pipelines and start executions, approvers answer approvals;
 * `admin` passes everything (checked by @sluice/grpc).
 */
export const PIPELINE_PERMISSIONS: PermissionTable = {
  GetPipeline: ["viewer", "operator"],
  ListPipelines: ["viewer", "operator"],
  GetPipelineState: ["viewer", "operator"],
  GetPipelineExecution: ["viewer", "operator"],
  ListPipelineExecutions: ["viewer", "operator"],
  CreatePipeline: ["operator"],
  UpdatePipeline: ["operator"],
  DeletePipeline: ["operator"],
  StartPipelineExecution: ["operator"],
  PutApprovalResult: ["approver"],
};

/** The ARN GetPipeline reports (AWS shape, local region and a zero account). */
export function pipelineArn(name: string): string {
  return `arn:sluice:codepipeline:local:000000000000:${name}`;
}

/** What the PipelineService implementation needs. */
export interface PipelineApiDeps {
  pipelines: PipelineStore;
  runtime: RuntimeStore;
  /** The `executions` collection (archived executions). */
  archive: Collection<ArchivedExecution>;
  subjects: Subjects;
  /** The runtime view of a declaration (`toPipelineSpec` with the provider table and defaults). */
  specOf: (declaration: PipelineDeclaration) => PipelineSpec;
  /** Bucket of declarations that name no artifact store. */
  defaultArtifactBucket: string;
  /** ApprovalService client; undefined when APPROVAL_ADDR is not set. */
  approvals: Client<typeof ApprovalService> | undefined;
  logger: Logger;
  /** @default () => new Date() */
  clock?: () => Date;
}

const MAX_TAGS = 50;
const DEFAULT_LIST_PIPELINES = 100;
const DEFAULT_LIST_EXECUTIONS = 100;

type SummaryInit = MessageInitShape<typeof PipelineExecutionSummarySchema>;

/** The PipelineService implementation: validation, the stores, then the state machine. */
export function createPipelineApi(deps: PipelineApiDeps): ServiceImpl<typeof PipelineService> {
  const { pipelines, runtime, archive, subjects, specOf, approvals, defaultArtifactBucket } = deps;
  const logger = deps.logger.child({ component: "pipeline-api" });
  const clock = deps.clock ?? (() => new Date());

  /** Size check, defaults, then every structural rule; returns the declaration to store. */
  const prepareDeclaration = (declaration: PipelineDeclaration | undefined): PipelineDeclaration => {
    if (declaration === undefined) throw new DomainError("ValidationException", "pipeline: is required", [{ field: "pipeline", message: "is required" }]);
    checkDeclarationSize(declarationSizeBytes(declaration));
    const normalized = normalizePipeline(declaration, defaultArtifactBucket);
    assertValidPipeline(normalized);
    // Also rejects what validation accepts but execution cannot run (e.g. an unsupported mode).
    specOf(normalized);
    return normalized;
  };

  const existing = async (name: string, field: string): Promise<StoredPipeline> => {
    const stored = await pipelines.find(name);
    if (stored === undefined) throw pipelineNotFound(name, field);
    return stored;
  };

  /**
   * The runtime for views: stored, or a fresh one when nothing has run, on the
   * current version. A runtime still on an older version (an update whose
   * runtime write was interrupted; the next event adopts the version) is shown
   * as the update will leave it.
   */
  const runtimeOf = async (stored: StoredPipeline): Promise<PipelineRuntime> => {
    const state = await runtime.read(stored.name);
    if (state === undefined) return initialRuntime(specOf(stored.declaration));
    if (state.spec.version >= stored.version) return state;
    return decide(state, { type: "PipelineUpdated", spec: specOf(stored.declaration) }, { now: clock().getTime(), newId: randomUUID }).state;
  };

  return {
    async createPipeline(req, ctx) {
      const c = checks();
      req.tags.forEach((t, i) => checkTag(c, `tags[${i}]`, t));
      if (req.tags.length > MAX_TAGS) c.add("tags", `must have at most ${MAX_TAGS} tags`);
      c.throwIfAny();
      const declaration = prepareDeclaration(req.pipeline);
      const now = clock();
      const tags: StoredTag[] = req.tags.map((t) => ({ key: t.key, value: t.value }));
      const stored = await pipelines.create(declaration, tags, now);
      logger.info("pipeline created", { pipeline: stored.name, principal: ctx.principal.id });
      // AWS starts a first execution on create; the declaration change goes out in the same write.
      await runtime.apply(
        stored.name,
        { type: "ExecutionRequested", executionId: randomUUID(), trigger: { triggerType: "CreatePipeline", triggerDetail: ctx.principal.id } },
        { extra: [declarationEntry(subjects, stored.name, "CREATED", stored.version, stored.declaration, now.getTime())] },
      );
      return { pipeline: stored.declaration, tags: stored.tags };
    },

    async getPipeline(req) {
      const c = checks().name("name", req.name);
      c.range("version", req.version, 1, 2 ** 31 - 1).throwIfAny();
      const stored = await pipelines.get(req.name, req.version);
      return {
        pipeline: stored.declaration,
        metadata: { pipelineArn: pipelineArn(stored.name), created: timestampFromDate(stored.created), updated: timestampFromDate(stored.updated) },
      };
    },

    async updatePipeline(req, ctx) {
      const declaration = prepareDeclaration(req.pipeline);
      const now = clock();
      const stored = await pipelines.update(declaration, now);
      logger.info("pipeline updated", { pipeline: stored.name, version: stored.version, principal: ctx.principal.id });
      // The state machine applies AWS's rules: new executions run the new version;
      // waiting executions are cancelled at once; executions inside a stage start
      // nothing new and end Cancelled once their running actions finish.
      await runtime.apply(
        stored.name,
        { type: "PipelineUpdated", spec: specOf(stored.declaration) },
        { extra: [declarationEntry(subjects, stored.name, "UPDATED", stored.version, stored.declaration, now.getTime())] },
      );
      return { pipeline: stored.declaration };
    },

    async deletePipeline(req, ctx) {
      checks().name("name", req.name).throwIfAny();
      const stored = await pipelines.find(req.name);
      const now = clock().getTime();
      // Runtime first (cancel and archive what runs, announce the deletion), then the
      // declaration: a crash in between leaves a pipeline a repeated delete finishes.
      await runtime.remove(req.name, stored === undefined ? undefined : specOf(stored.declaration), [
        declarationEntry(subjects, req.name, "DELETED", stored?.version ?? 0, undefined, now),
      ]);
      await pipelines.delete(req.name);
      // History goes with the pipeline, so a new pipeline of the same name starts clean.
      await archive.deleteMany({ pipelineName: req.name });
      if (stored !== undefined) logger.info("pipeline deleted", { pipeline: req.name, principal: ctx.principal.id });
      return {};
    },

    async listPipelines(req) {
      const c = checks().range("maxResults", req.maxResults, 1, 1000);
      if (req.nextToken.length > 2048) c.add("nextToken", "must be at most 2048 characters");
      c.throwIfAny();
      const page = await pipelines.list({ nextToken: req.nextToken, maxResults: req.maxResults ?? DEFAULT_LIST_PIPELINES });
      return {
        pipelines: page.pipelines.map((p) => ({
          name: p.name,
          version: p.version,
          pipelineType: p.declaration.pipelineType,
          executionMode: p.declaration.executionMode,
          created: timestampFromDate(p.created),
          updated: timestampFromDate(p.updated),
        })),
        nextToken: page.nextToken,
      };
    },

    async getPipelineState(req) {
      checks().name("name", req.name).throwIfAny();
      const stored = await existing(req.name, "name");
      const state = await runtimeOf(stored);
      return pipelineStateView(state, { created: stored.created.getTime(), updated: stored.updated.getTime() });
    },

    async startPipelineExecution(req, ctx) {
      checks().name("name", req.name).throwIfAny();
      await existing(req.name, "name");
      const executionId = randomUUID();
      await runtime.apply(req.name, {
        type: "ExecutionRequested",
        executionId,
        trigger: { triggerType: "StartPipelineExecution", triggerDetail: ctx.principal.id },
      });
      logger.info("execution started", { pipeline: req.name, executionId, principal: ctx.principal.id });
      return { pipelineExecutionId: executionId };
    },

    async getPipelineExecution(req) {
      checks().name("pipelineName", req.pipelineName).executionId("pipelineExecutionId", req.pipelineExecutionId).throwIfAny();
      const stored = await existing(req.pipelineName, "pipelineName");
      const state = await runtime.read(req.pipelineName);
      const live = state !== undefined && Object.hasOwn(state.executions, req.pipelineExecutionId) ? state.executions[req.pipelineExecutionId] : undefined;
      const exec = live ?? (await archive.findOne({ _id: req.pipelineExecutionId, pipelineName: req.pipelineName }));
      if (exec === null || exec === undefined) {
        throw new DomainError(
          "PipelineExecutionNotFoundException",
          `pipeline "${req.pipelineName}" has no execution ${req.pipelineExecutionId}`,
          [{ field: "pipelineExecutionId", message: `execution ${req.pipelineExecutionId} does not exist` }],
        );
      }
      return { pipelineExecution: executionView(plainExecution(exec), stored.name, stored.declaration.executionMode || "SUPERSEDED") };
    },

    async listPipelineExecutions(req) {
      const c = checks().name("pipelineName", req.pipelineName).range("maxResults", req.maxResults, 1, 100);
      if (req.nextToken.length > 2048) c.add("nextToken", "must be at most 2048 characters");
      c.throwIfAny();
      const stored = await existing(req.pipelineName, "pipelineName");
      const max = req.maxResults ?? DEFAULT_LIST_EXECUTIONS;
      const cursor = req.nextToken === "" ? undefined : decodeToken(req.nextToken, "nextToken", isExecutionCursor);
      const before = (e: ExecutionRuntime): boolean => cursor === undefined || e.startTime < cursor.t || (e.startTime === cursor.t && e.id < cursor.i);
      const state = await runtime.read(req.pipelineName);
      const live = Object.values(state?.executions ?? {}).filter(before);
      const filter: Filter<ArchivedExecution> =
        cursor === undefined
          ? { pipelineName: req.pipelineName }
          : { pipelineName: req.pipelineName, $or: [{ startTime: { $lt: cursor.t } }, { startTime: cursor.t, _id: { $lt: cursor.i } }] };
      const archived = await archive.find(filter).sort({ startTime: -1, _id: -1 }).limit(max + 1).toArray();
      // An execution being archived can be in both places for a moment; the runtime copy wins.
      const byId = new Map<string, ExecutionRuntime>();
      for (const e of archived) byId.set(e.id, plainExecution(e));
      for (const e of live) byId.set(e.id, e);
      const sorted = [...byId.values()].sort((a, b) => b.startTime - a.startTime || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
      const page = sorted.slice(0, max);
      const last = page.at(-1);
      const mode = stored.declaration.executionMode || "SUPERSEDED";
      return {
        pipelineExecutionSummaries: page.map((e): SummaryInit => executionSummaryView(e, mode)),
        nextToken: sorted.length > max && last !== undefined ? encodeToken({ t: last.startTime, i: last.id }) : "",
      };
    },

    async putApprovalResult(req, ctx) {
      const c = checks().name("pipelineName", req.pipelineName).name("stageName", req.stageName).name("actionName", req.actionName);
      if (req.result === undefined) {
        c.add("result", "is required");
      } else {
        if (req.result.status !== "Approved" && req.result.status !== "Rejected") c.add("result.status", 'must be "Approved" or "Rejected"');
        if (req.result.summary.length > 512) c.add("result.summary", "must be at most 512 characters");
      }
      if (req.token === "") c.add("token", "is required");
      c.throwIfAny();
      const stored = await existing(req.pipelineName, "pipelineName");
      const stage = stored.declaration.stages.find((s) => s.name === req.stageName);
      if (stage === undefined) {
        throw new DomainError("StageNotFoundException", `pipeline "${req.pipelineName}" has no stage "${req.stageName}"`, [
          { field: "stageName", message: `stage "${req.stageName}" does not exist` },
        ]);
      }
      if (!stage.actions.some((a) => a.name === req.actionName)) {
        throw new DomainError("ActionNotFoundException", `stage "${req.stageName}" has no action "${req.actionName}"`, [
          { field: "actionName", message: `action "${req.actionName}" does not exist` },
        ]);
      }
      if (approvals === undefined) throw new DomainError("ServiceUnavailableException", "approvals are not available: the approval service is not configured", [], true);
      try {
        // The caller's own credentials travel on, so the approval service records the real approver.
        const response = await approvals.putApprovalResult(
          { pipelineName: req.pipelineName, stageName: req.stageName, actionName: req.actionName, result: req.result, token: req.token },
          { authorization: ctx.authorization, signal: ctx.signal },
        );
        return response.approvedAt === undefined ? {} : { approvedAt: response.approvedAt };
      } catch (err) {
        throw forwardedError(err);
      }
    },
  };
}

/** AWS tag rules: key 1-128, value 0-256, no `aws:` prefix. */
function checkTag(c: ReturnType<typeof checks>, field: string, tag: Tag): void {
  c.text(`${field}.key`, tag.key, 1, 128);
  if (tag.key.toLowerCase().startsWith("aws:")) c.add(`${field}.key`, 'must not start with "aws:"');
  if (tag.value.length > 256) c.add(`${field}.value`, "must be at most 256 characters");
}

function isExecutionCursor(value: unknown): value is { t: number; i: string } {
  if (typeof value !== "object" || value === null) return false;
  const v = value as { t?: unknown; i?: unknown };
  return typeof v.t === "number" && Number.isFinite(v.t) && typeof v.i === "string";
}

/** An archived document without its storage fields. */
function plainExecution(doc: ExecutionRuntime | ArchivedExecution): ExecutionRuntime {
  if (!("_id" in doc)) return doc;
  const { _id: _ignoredId, pipelineName: _ignoredName, ...exec } = doc;
  return exec;
}

/**
 * The approval service's answer as this API's error: domain errors keep their
 * AWS name, message and violations; an unreachable service is
 * ServiceUnavailableException; anything else stays an internal error.
 */
function forwardedError(err: unknown): unknown {
  if (!isRpcError(err)) return err;
  if (err.errorCode !== undefined) return new DomainError(err.errorCode, err.message, err.violations);
  if (err.code === GrpcStatus.UNAVAILABLE || err.code === GrpcStatus.DEADLINE_EXCEEDED) {
    return new DomainError("ServiceUnavailableException", "the approval service is unavailable; retry", [], true);
  }
  return err;
}

