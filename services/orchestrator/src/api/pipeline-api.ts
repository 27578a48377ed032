import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { EventSubscription, Subjects } from "@sluice/bus";
import {
  ACTION_EXECUTION_ID_PATTERN,
  DEFAULT_MAX_RESULTS,
  DEFAULT_WATCH_MAX_PER_PRINCIPAL,
  DEFAULT_WATCH_MAX_TOTAL,
  DEFAULT_WATCH_RESYNC_MS,
  DomainError,
  MAX_LIST_EXECUTION_RESULTS,
  MAX_LIST_RESULTS,
  MAX_NEXT_TOKEN_LENGTH,
  MAX_TAGS,
  actionExecutionDetails,
  decide,
  executionSummaryView,
  executionView,
  initialRuntime,
  isTerminal,
  newestFirst,
  pipelineSecrets,
  pipelineStateView,
} from "@sluice/domain";
import type { ExecutionEvent, ExecutionRuntime, Logger, PipelineRuntime, PipelineSpec } from "@sluice/domain";
import { GrpcStatus, isRpcError } from "@sluice/grpc";
import type { Client, PermissionTable, ServiceImpl } from "@sluice/grpc";
import type { ApprovalService, ArtifactService, PipelineDeclaration, PipelineExecutionSummarySchema, PipelineService, StateChangeEvent } from "@sluice/proto";
import type { Collection } from "mongodb";
import { decodeToken, encodeToken } from "../paging.js";
import type { ActionTypeCatalog } from "../action-types/action-type-store.js";
import { declarationUpdates } from "../pipelines/declaration-update.js";
import { pipelineNotFound } from "../pipelines/pipeline-store.js";
import type { PipelineStore, StoredPipeline, StoredTag } from "../pipelines/pipeline-store.js";
import { declarationEntry } from "../runtime/outbox.js";
import type { ArchivedExecution, RuntimeStore } from "../runtime/runtime-store.js";
import { actionRetryEvent, actionRevisionEvent, overrideEvent, rollbackEvent, stageRetryEvent, startOptions, startTrigger, stopEvent, transitionEvent } from "./execution-requests.js";
import { executionsNewestFirst, plainExecution, succeededIn } from "./history.js";
import type { ExecutionCursor } from "./history.js";
import { actionSpecOf, findActionExecution, hasRunnerLog, linkLogs, logLinkOf, readStoredLog, storedLogMessages, streamedLogMessages } from "./action-log.js";
import type { LogStreamReader } from "./action-log.js";
import { checkTag, checks } from "./request-validation.js";
import { actionExecutionDetailInits, answerMasker, declarationSecrets, eventDeclaration, executionStageStates, restoreMaskedValues } from "./views.js";
import type { ActionExecutionDetailInit } from "./views.js";
import { WatchLimits, watchExecution } from "./watch.js";
import type { WatchedState } from "./watch.js";

/**
 * Who may call what (SPEC "Roles / permissions"): viewers read, operators
 * also change pipelines and start executions, approvers answer approvals;
 * `admin` passes everything (checked by @sluice/grpc).
 */
// Approvers read too: the token they answer with is shown by GetPipelineState.
const READERS = ["viewer", "operator", "approver"] as const;

export const PIPELINE_PERMISSIONS: PermissionTable = {
  // The source poller resyncs its sources from these with its service token.
  GetPipeline: [...READERS, "service"],
  ListPipelines: [...READERS, "service"],
  GetPipelineState: READERS,
  // Event rules read what an upstream execution ran.
  GetPipelineExecution: [...READERS, "service"],
  ListPipelineExecutions: READERS,
  ListActionExecutions: READERS,
  WatchPipelineExecution: READERS,
  GetActionLog: READERS,
  CreatePipeline: ["operator"],
  UpdatePipeline: ["operator"],
  DeletePipeline: ["operator"],
  // The source poller's schedules and event rules start executions (with their own trigger).
  StartPipelineExecution: ["operator", "service"],
  StopPipelineExecution: ["operator"],
  RetryStageExecution: ["operator"],
  RetryActionExecution: ["operator"],
  DisableStageTransition: ["operator"],
  EnableStageTransition: ["operator"],
  OverrideStageCondition: ["operator"],
  RollbackStage: ["operator"],
  PutActionRevision: ["operator"],
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
  /** The declared custom action types: what pipelines using them are validated against. */
  actionTypes: ActionTypeCatalog;
  /** Bucket of declarations that name no artifact store. */
  defaultArtifactBucket: string;
  /** ApprovalService client; undefined when APPROVAL_ADDR is not set. */
  approvals: Client<typeof ApprovalService> | undefined;
  /** Subscribes to SLUICE_EVENTS from now on (`Bus.subscribeEvents`), for WatchPipelineExecution. */
  subscribeEvents: (subjectFilter: string, handler: (event: StateChangeEvent) => void) => Promise<EventSubscription>;
  /** ArtifactService client, for GetActionLog's stored logs; undefined when ARTIFACT_ADDR is not set. */
  artifacts?: Client<typeof ArtifactService> | undefined;
  /** Reads SLUICE_LOGS, for GetActionLog; undefined = only stored logs are served. */
  logs?: LogStreamReader | undefined;
  /** Aborted when the service shuts down: open watches end. */
  shutdown: AbortSignal;
  /** A watch with no event for this long re-reads the execution. @default 5000 */
  watchResyncMs?: number;
  /** Open WatchPipelineExecution streams allowed per principal. @default 16 */
  watchMaxPerPrincipal?: number;
  /** Open WatchPipelineExecution streams allowed in this process. @default 256 */
  watchMaxTotal?: number;
  logger: Logger;
  /** @default () => new Date() */
  clock?: () => Date;
}

type SummaryInit = MessageInitShape<typeof PipelineExecutionSummarySchema>;

/** The PipelineService implementation: validation, the stores, then the state machine. */
export function createPipelineApi(deps: PipelineApiDeps): ServiceImpl<typeof PipelineService> {
  const { pipelines, runtime, archive, subjects, specOf, actionTypes, approvals, defaultArtifactBucket } = deps;
  const logger = deps.logger.child({ component: "pipeline-api" });
  const clock = deps.clock ?? (() => new Date());
  const watchResyncMs = deps.watchResyncMs ?? DEFAULT_WATCH_RESYNC_MS;
  const watchLimits = new WatchLimits(deps.watchMaxPerPrincipal ?? DEFAULT_WATCH_MAX_PER_PRINCIPAL, deps.watchMaxTotal ?? DEFAULT_WATCH_MAX_TOTAL);
  /** Masks every answer about a pipeline: the secrets of its declaration and of the runtime's versions. */
  const maskerFor = (stored: StoredPipeline, state?: PipelineRuntime, more: readonly string[] = []) =>
    answerMasker([
      ...declarationSecrets(stored.declaration),
      ...actionTypes.secretValues(stored.declaration.stages.flatMap((s) => s.actions)),
      ...pipelineSecrets(state?.spec),
      ...(state?.retainedSpecs ?? []).flatMap((v) => pipelineSecrets(v)),
      ...more,
    ]);

  const updates = declarationUpdates({ pipelines, runtime, subjects, specOf, actionTypes, defaultArtifactBucket });
  const prepareDeclaration = (declaration: PipelineDeclaration | undefined): PipelineDeclaration => updates.prepare(declaration);

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

  /** An execution of the pipeline: the runtime's copy, else the archived one, else PipelineExecutionNotFoundException. */
  const findExecution = async (pipelineName: string, executionId: string, state: PipelineRuntime | undefined, field = "pipelineExecutionId"): Promise<ExecutionRuntime> => {
    const live = state !== undefined && Object.hasOwn(state.executions, executionId) ? state.executions[executionId] : undefined;
    if (live !== undefined) return live;
    const archived = await archive.findOne({ _id: executionId, pipelineName });
    if (archived !== null) return plainExecution(archived);
    throw new DomainError("PipelineExecutionNotFoundException", `pipeline "${pipelineName}" has no execution ${executionId}`, [
      { field, message: `execution ${executionId} does not exist` },
    ]);
  };

  /**
   * The newest archived execution whose source action fetched the revision; "" when none is kept.
   * The action is matched here, not in the query: FerretDB has no $elemMatch of documents.
   */
  const archivedRunOf = async (pipelineName: string, actionName: string, revisionId: string): Promise<string> => {
    const found = await archive
      .find({ pipelineName, "sourceRevisions.revisionId": revisionId }, { projection: { _id: 1, sourceRevisions: 1 } })
      .sort({ startTime: -1, _id: -1 })
      .limit(20)
      .toArray();
    return found.find((e) => e.sourceRevisions.some((r) => r.actionName === actionName && r.revisionId === revisionId))?._id ?? "";
  };

  /** Declarations of a pipeline's versions, read once per request; the current one when a version is gone from the history. */
  const declarationsOf = (stored: StoredPipeline): ((version: number) => Promise<PipelineDeclaration>) => {
    const cache = new Map<number, Promise<PipelineDeclaration>>([[stored.version, Promise.resolve(stored.declaration)]]);
    return (version) => {
      let found = cache.get(version);
      if (found === undefined) {
        found = pipelines.get(stored.name, version).then(
          (p) => p.declaration,
          () => stored.declaration,
        );
        cache.set(version, found);
      }
      return found;
    };
  };

  /** The spec of an older declaration; undefined when it no longer converts (the details then lack the declared parts). */
  const specOrUndefined = (declaration: PipelineDeclaration): PipelineSpec | undefined => {
    try {
      return specOf(declaration);
    } catch {
      return undefined;
    }
  };

  const modeOf = (exec: ExecutionRuntime, stored: StoredPipeline): string => exec.executionMode ?? (stored.declaration.executionMode || "SUPERSEDED");

  /** Applies an execution-control event; decide() throws the AWS error of a request it refuses. */
  const control = async (pipelineName: string, event: ExecutionEvent, principal: string): Promise<void> => {
    await runtime.apply(pipelineName, event);
    logger.info("execution control", { pipeline: pipelineName, event: event.type, principal });
  };

  return {
    async createPipeline(req, ctx) {
      const c = checks();
      req.tags.forEach((t, i) => checkTag(c, `tags[${i}]`, t));
      if (req.tags.length > MAX_TAGS) c.add("tags", `must have at most ${MAX_TAGS} tags`);
      c.throwIfAny();
      // Custom actions are judged by their types as declared now, whichever replica declared them.
      await actionTypes.refresh();
      const declaration = prepareDeclaration(req.pipeline);
      const now = clock();
      const tags: StoredTag[] = req.tags.map((t) => ({ key: t.key, value: t.value }));
      const stored = await pipelines.create(declaration, tags, now);
      logger.info("pipeline created", { pipeline: stored.name, principal: ctx.principal.id });
      // AWS starts a first execution on create; the declaration change goes out in the same write.
      await runtime.apply(
        stored.name,
        { type: "ExecutionRequested", executionId: randomUUID(), trigger: { triggerType: "CreatePipeline", triggerDetail: ctx.principal.id } },
        { extra: [declarationEntry(subjects, stored.name, "CREATED", stored.version, eventDeclaration(stored.declaration), now.getTime())] },
      );
      return { pipeline: maskerFor(stored)(stored.declaration), tags: stored.tags };
    },

    async getPipeline(req) {
      const c = checks().name("name", req.name);
      c.range("version", req.version, 1, 2 ** 31 - 1).throwIfAny();
      const stored = await pipelines.get(req.name, req.version);
      // A type another replica declared may mark more values secret (only custom actions have them).
      if (stored.declaration.stages.some((s) => s.actions.some((a) => a.actionTypeId?.owner === "Custom"))) await actionTypes.refreshIfOlder(1000);
      return {
        pipeline: maskerFor(stored)(stored.declaration),
        metadata: { pipelineArn: pipelineArn(stored.name), created: timestampFromDate(stored.created), updated: timestampFromDate(stored.updated) },
      };
    },

    async updatePipeline(req, ctx) {
      // What GetPipeline showed masked (`****`) keeps the stored values.
      const current = req.pipeline === undefined ? undefined : await pipelines.find(req.pipeline.name);
      await actionTypes.refresh();
      const declaration = prepareDeclaration(req.pipeline === undefined ? undefined : restoreMaskedValues(req.pipeline, current?.declaration, actionTypes.secretKeys));
      const stored = await updates.store(declaration, clock());
      logger.info("pipeline updated", { pipeline: stored.name, version: stored.version, principal: ctx.principal.id });
      return { pipeline: maskerFor(stored)(stored.declaration) };
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
      const c = checks().range("maxResults", req.maxResults, 1, MAX_LIST_RESULTS);
      if (req.nextToken.length > MAX_NEXT_TOKEN_LENGTH) c.add("nextToken", `must be at most ${MAX_NEXT_TOKEN_LENGTH} characters`);
      c.throwIfAny();
      const page = await pipelines.list({ nextToken: req.nextToken, maxResults: req.maxResults ?? DEFAULT_MAX_RESULTS });
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
      const view = pipelineStateView(state, { created: stored.created.getTime(), updated: stored.updated.getTime(), now: clock().getTime() });
      // Each action's latest execution links its log (GetActionLog), as ListActionExecutions does.
      linkLogs(stored.name, view.stageStates, state.spec);
      return maskerFor(stored, state)(view);
    },

    async startPipelineExecution(req, ctx) {
      checks().name("name", req.name).throwIfAny();
      const stored = await existing(req.name, "name");
      const options = startOptions(req, specOf(stored.declaration));
      const requested = randomUUID();
      const { decision } = await runtime.apply(req.name, {
        type: "ExecutionRequested",
        executionId: requested,
        trigger: startTrigger(req, ctx.principal),
        ...options,
      });
      // A repeated clientRequestToken resolves to the execution the token started first.
      const executionId = decision.executionId ?? requested;
      logger.info("execution started", { pipeline: req.name, executionId, principal: ctx.principal.id, repeated: executionId !== requested });
      return { pipelineExecutionId: executionId };
    },

    async putActionRevision(req, ctx) {
      checks().name("pipelineName", req.pipelineName).throwIfAny();
      const stored = await existing(req.pipelineName, "pipelineName");
      const now = clock().getTime();
      const event = actionRevisionEvent(req, stored.declaration, specOf(stored.declaration), now, randomUUID, ctx.principal.id);
      const { decision } = await runtime.apply(req.pipelineName, event);
      const newRevision = decision.ignored === undefined;
      logger.info("action revision put", { pipeline: req.pipelineName, action: req.actionName, revision: event.revision.revisionId, newRevision, principal: ctx.principal.id, ...(newRevision ? {} : { why: decision.ignored }) });
      if (newRevision) return { newRevision, pipelineExecutionId: event.executionId };
      return { newRevision, pipelineExecutionId: decision.executionId ?? (await archivedRunOf(req.pipelineName, req.actionName, event.revision.revisionId)) };
    },

    async getPipelineExecution(req) {
      checks().name("pipelineName", req.pipelineName).executionId("pipelineExecutionId", req.pipelineExecutionId).throwIfAny();
      const stored = await existing(req.pipelineName, "pipelineName");
      const state = await runtime.read(req.pipelineName);
      const exec = await findExecution(req.pipelineName, req.pipelineExecutionId, state);
      return { pipelineExecution: maskerFor(stored, state)(executionView(exec, stored.name, modeOf(exec, stored))) };
    },

    async listPipelineExecutions(req) {
      const c = checks().name("pipelineName", req.pipelineName).range("maxResults", req.maxResults, 1, MAX_LIST_EXECUTION_RESULTS);
      if (req.nextToken.length > MAX_NEXT_TOKEN_LENGTH) c.add("nextToken", `must be at most ${MAX_NEXT_TOKEN_LENGTH} characters`);
      const stageName = req.filter?.succeededInStage?.stageName;
      if (req.filter?.succeededInStage !== undefined) c.name("filter.succeededInStage.stageName", stageName ?? "");
      c.throwIfAny();
      const stored = await existing(req.pipelineName, "pipelineName");
      if (stageName !== undefined && !stored.declaration.stages.some((s) => s.name === stageName)) {
        throw new DomainError("StageNotFoundException", `pipeline "${req.pipelineName}" has no stage "${stageName}"`, [
          { field: "filter.succeededInStage.stageName", message: `stage "${stageName}" does not exist` },
        ]);
      }
      const max = req.maxResults ?? DEFAULT_MAX_RESULTS;
      const cursor = req.nextToken === "" ? undefined : decodeToken(req.nextToken, "nextToken", isExecutionCursor);
      const state = await runtime.read(req.pipelineName);
      const page: ExecutionRuntime[] = [];
      let more = false;
      for await (const e of executionsNewestFirst(Object.values(state?.executions ?? {}), archive, req.pipelineName, cursor)) {
        if (stageName !== undefined && !succeededIn(e, stageName)) continue;
        if (page.length === max) {
          more = true;
          break;
        }
        page.push(e);
      }
      const last = page.at(-1);
      return {
        pipelineExecutionSummaries: maskerFor(stored, state)(page.map((e): SummaryInit => executionSummaryView(e, modeOf(e, stored)))),
        nextToken: more && last !== undefined ? encodeToken({ t: last.startTime, i: last.id }) : "",
      };
    },

    async stopPipelineExecution(req, ctx) {
      const event = stopEvent(req, ctx.principal.id);
      await existing(req.pipelineName, "pipelineName");
      try {
        await control(req.pipelineName, event, ctx.principal.id);
      } catch (err) {
        // The state machine knows only executions in flight; one that already ended is in the
        // archive, and AWS answers that it cannot be stopped.
        if (!(err instanceof DomainError && err.code === "PipelineExecutionNotFoundException")) throw err;
        if ((await archive.findOne({ _id: req.pipelineExecutionId, pipelineName: req.pipelineName })) === null) throw err;
        throw new DomainError("PipelineExecutionNotStoppableException", `execution ${req.pipelineExecutionId} has already ended and cannot be stopped`);
      }
      return { pipelineExecutionId: req.pipelineExecutionId };
    },

    async retryStageExecution(req, ctx) {
      stageRetryEvent(req, undefined, ctx.principal.id);
      const stored = await existing(req.pipelineName, "pipelineName");
      await control(req.pipelineName, stageRetryEvent(req, stored.declaration, ctx.principal.id), ctx.principal.id);
      return { pipelineExecutionId: req.pipelineExecutionId };
    },

    async retryActionExecution(req, ctx) {
      actionRetryEvent(req, undefined, ctx.principal.id);
      const stored = await existing(req.pipelineName, "pipelineName");
      await control(req.pipelineName, actionRetryEvent(req, stored.declaration, ctx.principal.id), ctx.principal.id);
      return { pipelineExecutionId: req.pipelineExecutionId };
    },

    async disableStageTransition(req, ctx) {
      transitionEvent(req, false, undefined, ctx.principal.id);
      const stored = await existing(req.pipelineName, "pipelineName");
      await control(req.pipelineName, transitionEvent(req, false, stored.declaration, ctx.principal.id), ctx.principal.id);
      return {};
    },

    async enableStageTransition(req, ctx) {
      transitionEvent(req, true, undefined, ctx.principal.id);
      const stored = await existing(req.pipelineName, "pipelineName");
      await control(req.pipelineName, transitionEvent(req, true, stored.declaration, ctx.principal.id), ctx.principal.id);
      return {};
    },

    async overrideStageCondition(req, ctx) {
      overrideEvent(req, undefined, ctx.principal.id);
      const stored = await existing(req.pipelineName, "pipelineName");
      await control(req.pipelineName, overrideEvent(req, stored.declaration, ctx.principal.id), ctx.principal.id);
      return {};
    },

    async rollbackStage(req, ctx) {
      rollbackEvent(req, undefined, "", ctx.principal.id);
      const stored = await existing(req.pipelineName, "pipelineName");
      const event = rollbackEvent(req, stored.declaration, randomUUID(), ctx.principal.id);
      // The runtime keeps the inputs of recent targets only; the archive tells an unknown
      // execution from one that is too old, of an older version, or a rollback itself.
      const target = await findExecution(req.pipelineName, req.targetPipelineExecutionId, await runtime.read(req.pipelineName), "targetPipelineExecutionId");
      if (target.pipelineVersion !== stored.version) {
        throw new DomainError(
          "PipelineExecutionOutdatedException",
          `execution ${target.id} ran version ${target.pipelineVersion} of pipeline "${stored.name}", which is now at version ${stored.version}`,
          [{ field: "targetPipelineExecutionId", message: "ran an older version of the pipeline" }],
        );
      }
      if (target.executionType === "ROLLBACK") {
        throw new DomainError("UnableToRollbackStageException", `execution ${target.id} is itself a rollback; roll back to a standard execution`, [
          { field: "targetPipelineExecutionId", message: "is a rollback execution" },
        ]);
      }
      const { decision } = await runtime.apply(req.pipelineName, event);
      const executionId = decision.executionId ?? event.executionId;
      logger.info("rollback started", { pipeline: req.pipelineName, stage: req.stageName, target: target.id, executionId, principal: ctx.principal.id });
      return { pipelineExecutionId: executionId };
    },

    async listActionExecutions(req) {
      const c = checks().name("pipelineName", req.pipelineName).range("maxResults", req.maxResults, 1, MAX_LIST_EXECUTION_RESULTS);
      if (req.nextToken.length > MAX_NEXT_TOKEN_LENGTH) c.add("nextToken", `must be at most ${MAX_NEXT_TOKEN_LENGTH} characters`);
      const byId = req.filter?.pipelineExecutionId ?? "";
      const latestIn = req.filter?.latestInPipelineExecution;
      if (byId !== "") c.executionId("filter.pipelineExecutionId", byId);
      if (latestIn !== undefined) {
        c.executionId("filter.latestInPipelineExecution.pipelineExecutionId", latestIn.pipelineExecutionId);
        c.oneOf("filter.latestInPipelineExecution.startTimeRange", latestIn.startTimeRange, ["Latest", "All"]);
        if (byId !== "") c.add("filter", "set pipelineExecutionId or latestInPipelineExecution, not both");
      }
      c.throwIfAny();
      const stored = await existing(req.pipelineName, "pipelineName");
      const max = req.maxResults ?? DEFAULT_MAX_RESULTS;
      const cursor = req.nextToken === "" ? undefined : decodeToken(req.nextToken, "nextToken", isActionCursor);
      const state = await runtime.read(req.pipelineName);
      const declarationOf = declarationsOf(stored);
      const specs = new Map<number, PipelineSpec | undefined>();
      // The declared type, configuration and namespace come from the spec of the version each attempt ran.
      const detailsOf = async (exec: ExecutionRuntime, latestOnly: boolean): Promise<ActionExecutionDetailInit[]> => {
        const versions = [exec.pipelineVersion, ...exec.stages.flatMap((s) => s.actions.flatMap((a) => [a, ...(a.attempts ?? [])].map((t) => t.pipelineVersion ?? exec.pipelineVersion)))];
        for (const v of versions) if (!specs.has(v)) specs.set(v, specOrUndefined(await declarationOf(v)));
        return actionExecutionDetailInits(
          actionExecutionDetails([exec], (v) => specs.get(v)),
          latestOnly,
        );
      };
      const page: ActionExecutionDetailInit[] = [];
      let more = false;
      // Start time of the execution of the page's last entry: the next page's token names it.
      let lastStart = 0;
      const take = (exec: ExecutionRuntime, details: readonly ActionExecutionDetailInit[]): boolean => {
        for (const d of details) {
          if (cursor !== undefined && exec.id === cursor.e && !afterActionCursor(d, cursor)) continue;
          if (page.length === max) return (more = true);
          page.push(d);
          lastStart = exec.startTime;
        }
        return false;
      };
      const only = byId !== "" ? byId : latestIn?.pipelineExecutionId;
      if (only !== undefined) {
        const exec = await findExecution(req.pipelineName, only, state, byId !== "" ? "filter.pipelineExecutionId" : "filter.latestInPipelineExecution.pipelineExecutionId");
        if (cursor === undefined || cursor.e === exec.id) take(exec, await detailsOf(exec, latestIn?.startTimeRange === "Latest"));
      } else {
        const from: ExecutionCursor | undefined = cursor === undefined ? undefined : { t: cursor.t, i: cursor.e, inclusive: true };
        for await (const exec of executionsNewestFirst(Object.values(state?.executions ?? {}), archive, req.pipelineName, from)) {
          if (take(exec, await detailsOf(exec, false))) break;
        }
      }
      const last = page.at(-1);
      const nextToken =
        more && last !== undefined ? encodeToken({ t: lastStart, e: last.pipelineExecutionId ?? "", at: timestampMsOf(last), ai: last.actionExecutionId ?? "" }) : "";
      for (const d of page) {
        // Each attempt links its own log (GetActionLog), as GetPipelineState does for the latest.
        const type = d.input?.actionTypeId;
        const declared = type === undefined ? undefined : { category: type.category ?? "", owner: type.owner ?? "", provider: type.provider ?? "", providerVersion: type.version ?? "" };
        const link = logLinkOf(stored.name, d.actionExecutionId ?? "", declared);
        if (link !== "" && d.output?.executionResult !== undefined) d.output.executionResult.logStreamArn = link;
      }
      const versionSecrets = [...specs.values()].flatMap((spec) => pipelineSecrets(spec));
      return { actionExecutionDetails: maskerFor(stored, state, versionSecrets)(page), nextToken };
    },

    async *watchPipelineExecution(req, ctx) {
      checks().name("pipelineName", req.pipelineName).executionId("pipelineExecutionId", req.pipelineExecutionId).throwIfAny();
      const stored = await existing(req.pipelineName, "pipelineName");
      const declarationOf = declarationsOf(stored);
      const read = async (): Promise<WatchedState> => {
        const state = await runtime.read(req.pipelineName);
        const exec = await findExecution(req.pipelineName, req.pipelineExecutionId, state);
        const declaration = await declarationOf(exec.pipelineVersion);
        const stageStates = executionStageStates(exec, declaration, state);
        linkLogs(stored.name, stageStates, specOrUndefined(declaration));
        return {
          terminal: isTerminal(exec.status),
          snapshot: maskerFor(stored, state, declarationSecrets(declaration))({
            pipelineExecution: executionView(exec, stored.name, modeOf(exec, stored)),
            stageStates,
          }),
        };
      };
      const signal = AbortSignal.any([ctx.signal, deps.shutdown]);
      // Each open watch holds an events consumer and a timer: bounded per caller and in all.
      const release = watchLimits.acquire(ctx.principal.id);
      try {
        const masked = maskerFor(stored);
        yield* watchExecution(
          { read, subscribe: (handler) => deps.subscribeEvents(subjects.eventFilter(req.pipelineName), (event) => handler(masked(event))) },
          req.pipelineExecutionId,
          signal,
          watchResyncMs,
        );
      } finally {
        release();
      }
    },

    async *getActionLog(req, ctx) {
      const c = checks().name("pipelineName", req.pipelineName);
      if (req.actionExecutionId === "") c.add("actionExecutionId", "is required");
      else if (!ACTION_EXECUTION_ID_PATTERN.test(req.actionExecutionId)) c.add("actionExecutionId", "must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
      c.throwIfAny();
      const stored = await existing(req.pipelineName, "pipelineName");
      const state = await runtime.read(req.pipelineName);
      const found = await findActionExecution(req.pipelineName, req.actionExecutionId, state, archive);
      const signal = AbortSignal.any([ctx.signal, deps.shutdown]);
      // Lines were masked by the runner; the pipeline's known secrets are masked once more on the way out.
      const masked = maskerFor(stored, state);
      const declaration = await declarationsOf(stored)(found.exec.pipelineVersion);
      const action = actionSpecOf(specOrUndefined(declaration), found.stageName, found.actionName);
      if (action !== undefined && !hasRunnerLog(action)) {
        yield { lines: [], status: found.status, source: "" };
        return;
      }
      const currentStatus = async (): Promise<string> =>
        (await findActionExecution(req.pipelineName, req.actionExecutionId, await runtime.read(req.pipelineName), archive)).status;
      if (found.status !== "InProgress") {
        const lines = await readStoredLog(deps.artifacts, req.actionExecutionId, found.attempt, signal);
        if (lines !== undefined || deps.logs === undefined) {
          for (const message of storedLogMessages(lines ?? [], found.status)) yield masked(message);
          return;
        }
      }
      if (deps.logs === undefined) {
        yield { lines: [], status: found.status, source: "" };
        return;
      }
      const release = watchLimits.acquire(ctx.principal.id);
      try {
        const messages = streamedLogMessages({
          reader: deps.logs,
          pipelineName: req.pipelineName,
          actionExecutionId: req.actionExecutionId,
          follow: req.follow && found.status === "InProgress",
          status: currentStatus,
          signal,
        });
        for await (const message of messages) yield masked(message);
      } finally {
        release();
      }
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

function isExecutionCursor(value: unknown): value is { t: number; i: string } {
  if (typeof value !== "object" || value === null) return false;
  const v = value as { t?: unknown; i?: unknown };
  return typeof v.t === "number" && Number.isFinite(v.t) && typeof v.i === "string";
}

/**
 * Where a page of ListActionExecutions starts: inside execution `e` (started
 * at `t`), after the action execution `ai` that started at `at`.
 */
interface ActionCursor {
  t: number;
  e: string;
  at: number;
  ai: string;
}

function isActionCursor(value: unknown): value is ActionCursor {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Partial<Record<keyof ActionCursor, unknown>>;
  return typeof v.t === "number" && Number.isFinite(v.t) && typeof v.e === "string" && typeof v.at === "number" && Number.isFinite(v.at) && typeof v.ai === "string";
}

function timestampMsOf(detail: ActionExecutionDetailInit): number {
  const t = detail.startTime;
  return t === undefined ? 0 : Number(t.seconds ?? 0n) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** A detail after the cursor's action in newest-first order (actions started since the previous page come before it and are left out). */
function afterActionCursor(detail: ActionExecutionDetailInit, cursor: ActionCursor): boolean {
  return newestFirst({ startTime: timestampMsOf(detail), actionExecutionId: detail.actionExecutionId ?? "" }, { startTime: cursor.at, actionExecutionId: cursor.ai }) > 0;
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

