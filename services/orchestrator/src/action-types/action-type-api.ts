import { ACTION_OWNERS, BUILT_IN_PROVIDERS, DomainError, MAX_TAGS, checkCustomActionType, resolveProvider } from "@sluice/domain";
import type { FieldViolation, Logger } from "@sluice/domain";
import type { PermissionTable, ServiceImpl } from "@sluice/grpc";
import type { ActionTypeService } from "@sluice/proto";
import { checkActionTypeId as checkId, checkTag, checks } from "../api/request-validation.js";
import { decodeToken, encodeToken } from "../paging.js";
import { notFound } from "./action-type-store.js";
import type { ActionTypeCatalog } from "./action-type-store.js";
import {
  JOB_WORKER_EXECUTOR,
  actionTypeOf,
  builtInActionTypeOf,
  builtInDeclarationOf,
  declarationField,
  declarationOf,
  definitionOfCreate,
  definitionOfDeclaration,
} from "./action-type-shapes.js";
import type { ActionTypeInit } from "./action-type-shapes.js";

/** Operators declare types; everyone who reads pipelines, and job workers, may read them. */
export const ACTION_TYPE_PERMISSIONS: PermissionTable = {
  CreateCustomActionType: ["operator"],
  DeleteCustomActionType: ["operator"],
  UpdateActionType: ["operator"],
  ListActionTypes: ["viewer", "operator", "approver", "runner"],
  GetActionType: ["viewer", "operator", "approver", "runner"],
};

/** ListActionTypes answers this many types per page. */
const PAGE_SIZE = 100;

export interface ActionTypeApiDeps {
  catalog: ActionTypeCatalog;
  logger: Logger;
  /** @default () => new Date() */
  clock?: () => Date;
}

function invalid(violations: readonly FieldViolation[], field: (f: string) => string = (f) => f): DomainError {
  const named = violations.map((v) => ({ field: field(v.field), message: v.message }));
  return new DomainError("ValidationException", named.map((v) => `${v.field}: ${v.message}`).join("; "), named);
}

function isCursor(value: unknown): value is { o: number } {
  return typeof value === "object" && value !== null && Number.isInteger((value as { o?: unknown }).o) && (value as { o: number }).o >= 0;
}

/** The ActionTypeService implementation over the `action_types` catalog and the built-in provider table. */
export function createActionTypeApi(deps: ActionTypeApiDeps): ServiceImpl<typeof ActionTypeService> {
  const { catalog } = deps;
  const logger = deps.logger.child({ component: "action-type-api" });
  const clock = deps.clock ?? (() => new Date());

  return {
    async createCustomActionType(req, ctx) {
      const c = checks();
      if (req.inputArtifactDetails === undefined) c.add("inputArtifactDetails", "is required");
      if (req.outputArtifactDetails === undefined) c.add("outputArtifactDetails", "is required");
      req.tags.forEach((t, i) => checkTag(c, `tags[${i}]`, t));
      if (req.tags.length > MAX_TAGS) c.add("tags", `must have at most ${MAX_TAGS} tags`);
      c.throwIfAny();
      const definition = definitionOfCreate(req);
      const violations = checkCustomActionType(definition);
      if (violations.length > 0) throw invalid(violations);
      const { stored, outcome } = await catalog.create(
        definition,
        req.tags.map((t) => ({ key: t.key, value: t.value })),
        clock(),
      );
      logger.info("custom action type declared", { actionType: stored._id, outcome, principal: ctx.principal.id });
      return { actionType: actionTypeOf(stored.definition), tags: stored.tags };
    },

    async deleteCustomActionType(req, ctx) {
      checkId(checks(), "", req).throwIfAny();
      const deleted = await catalog.delete(req, clock());
      if (deleted) logger.info("custom action type deleted", { actionType: `Custom/${req.category}/${req.provider}/${req.version}`, principal: ctx.principal.id });
      return {};
    },

    async listActionTypes(req) {
      const c = checks();
      if (req.actionOwnerFilter !== "") c.oneOf("actionOwnerFilter", req.actionOwnerFilter, ACTION_OWNERS);
      c.throwIfAny();
      const offset = req.nextToken === "" ? 0 : decodeToken(req.nextToken, "nextToken", isCursor).o;
      await catalog.refresh();
      const owner = req.actionOwnerFilter;
      const all: ActionTypeInit[] = [
        ...(owner === "" || owner !== "Custom" ? Object.values(BUILT_IN_PROVIDERS).filter((s) => owner === "" || s.owner === owner).map(builtInActionTypeOf) : []),
        ...(owner === "" || owner === "Custom" ? catalog.listed().map((t) => actionTypeOf(t.definition)) : []),
      ];
      const key = (t: ActionTypeInit): string => [t.id?.owner, t.id?.category, t.id?.provider, t.id?.version].join("/");
      all.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
      const page = all.slice(offset, offset + PAGE_SIZE);
      return { actionTypes: page, nextToken: offset + PAGE_SIZE < all.length ? encodeToken({ o: offset + PAGE_SIZE }) : "" };
    },

    async getActionType(req) {
      const c = checkId(checks(), "", req);
      c.oneOf("owner", req.owner, ACTION_OWNERS).throwIfAny();
      if (req.owner !== "Custom") {
        const spec = resolveProvider(req);
        if (spec === undefined) throw notFound(req);
        return { actionType: builtInDeclarationOf(spec) };
      }
      await catalog.refresh();
      const stored = catalog.find(req);
      if (stored === undefined || stored.deleted) throw notFound(req);
      return { actionType: declarationOf(stored.definition) };
    },

    async updateActionType(req, ctx) {
      const d = req.actionType;
      const c = checks();
      if (d === undefined) c.add("actionType", "is required");
      else if (d.id === undefined) c.add("actionType.id", "is required");
      else {
        checkId(c, "actionType.id.", d.id).oneOf("actionType.id.owner", d.id.owner, ACTION_OWNERS);
        if (d.executor === undefined) c.add("actionType.executor", "is required");
        else if (d.executor.type !== JOB_WORKER_EXECUTOR) c.add("actionType.executor.type", `must be ${JOB_WORKER_EXECUTOR}: custom action types are worked through JobService`);
        if (d.inputArtifactDetails === undefined) c.add("actionType.inputArtifactDetails", "is required");
        if (d.outputArtifactDetails === undefined) c.add("actionType.outputArtifactDetails", "is required");
      }
      c.throwIfAny();
      const decl = d!;
      const id = decl.id!;
      if (id.owner !== "Custom") {
        if (resolveProvider(id) === undefined) throw notFound(id);
        throw new DomainError("RequestFailedException", `${id.owner}/${id.category}/${id.provider}/${id.version} is built into Sluice and cannot be updated`, [
          { field: "actionType.id.owner", message: "built-in action types cannot be updated" },
        ]);
      }
      await catalog.refresh();
      const before = catalog.find(id);
      if (before === undefined || before.deleted) throw notFound(id);
      const definition = definitionOfDeclaration(decl, before.definition);
      const violations = checkCustomActionType(definition);
      if (violations.length > 0) throw invalid(violations, declarationField);
      await catalog.update(definition, clock());
      logger.info("custom action type updated", { actionType: before._id, principal: ctx.principal.id });
      return {};
    },
  };
}
