import { randomBytes } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DomainError, MAX_TAGS, MAX_TAG_KEY_LENGTH, MAX_TAG_VALUE_LENGTH, PIPELINE_NAME_PATTERN, SECRET_MASK, invalid } from "@sluice/domain";
import type { FieldViolation, Logger } from "@sluice/domain";
import type { PermissionTable, ServiceImpl } from "@sluice/grpc";
import type { ListWebhookItemSchema, PutWebhookRequest, SourceService } from "@sluice/proto";
import { parseCidr } from "./cidr.js";
import { jsonPathError } from "./filters.js";
import type { SourceActionStore } from "./source-actions.js";
import type { WebhookAuthentication, WebhookDoc, WebhookStore } from "./webhook-store.js";

/**
 * Managing webhooks is an operator's job. Listing is too: for an UNAUTHENTICATED webhook the
 * URL is the only secret, so viewers do not see it. `admin` passes every check.
 */
export const WEBHOOK_PERMISSIONS: PermissionTable = {
  PutWebhook: ["operator"],
  ListWebhooks: ["operator"],
  DeleteWebhook: ["operator"],
  RegisterWebhookWithThirdParty: ["operator"],
  DeregisterWebhookWithThirdParty: ["operator"],
};

/** AWS quota: webhooks per account and region. */
export const MAX_WEBHOOKS = 300;
/** AWS: at most this many filters per webhook. */
export const MAX_WEBHOOK_FILTERS = 5;
const MAX_JSON_PATH = 150;
const MAX_MATCH_EQUALS = 150;
const MAX_SECRET_TOKEN = 100;
const MAX_LIST_WEBHOOKS = 100;
const AUTHENTICATIONS: readonly WebhookAuthentication[] = ["GITHUB_HMAC", "IP", "UNAUTHENTICATED"];

/** The ARN ListWebhooks reports (the local region and zero account the pipelines' ARNs use). */
export function webhookArn(name: string): string {
  return `arn:sluice:codepipeline:local:000000000000:webhook:${name}`;
}

export interface SourceApiDeps {
  webhooks: WebhookStore;
  sourceActions: SourceActionStore;
  logger: Logger;
  /** The public URL of a webhook from its token. */
  urlOf: (urlToken: string) => string;
  now?: () => Date;
}

/** The webhook methods of `SourceService`. */
export type WebhookApi = Omit<ServiceImpl<typeof SourceService>, "listSourceStates">;

/** The gRPC `SourceService` implementation (webhooks). */
export function createWebhookApi(deps: SourceApiDeps): WebhookApi {
  const { webhooks, sourceActions, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const itemOf = (doc: WebhookDoc): MessageInitShape<typeof ListWebhookItemSchema> => ({
    definition: {
      name: doc._id,
      targetPipeline: doc.targetPipeline,
      targetAction: doc.targetAction,
      filters: doc.filters,
      authentication: doc.authentication,
      authenticationConfiguration: { secretToken: doc.secretToken === "" ? "" : SECRET_MASK, allowedIpRange: doc.allowedIpRange },
    },
    url: deps.urlOf(doc.urlToken),
    errorMessage: doc.errorMessage,
    errorCode: doc.errorCode,
    ...(doc.lastTriggered === null ? {} : { lastTriggered: timestampFromDate(doc.lastTriggered) }),
    arn: webhookArn(doc._id),
    tags: doc.tags,
    registeredWithThirdParty: doc.registeredWithThirdParty,
  });

  return {
    async putWebhook(req, ctx) {
      const existing = req.webhook === undefined ? null : await webhooks.get(req.webhook.name);
      const def = checkPutWebhook(req, existing);
      const actions = await sourceActions.ofPipeline(def.targetPipeline);
      if (actions.length === 0) {
        throw new DomainError("PipelineNotFoundException", `webhook.targetPipeline: pipeline ${def.targetPipeline} does not exist`, [
          { field: "webhook.targetPipeline", message: `pipeline ${def.targetPipeline} does not exist` },
        ]);
      }
      if (!actions.some((a) => a.actionName === def.targetAction)) {
        const names = actions.map((a) => a.actionName).join(", ");
        throw invalid("ValidationException", [{ field: "webhook.targetAction", message: `${def.targetAction} is not a source action of ${def.targetPipeline} (its first stage has: ${names})` }]);
      }
      if (existing === null && (await webhooks.count()) >= MAX_WEBHOOKS) {
        throw new DomainError("LimitExceededException", `at most ${MAX_WEBHOOKS} webhooks; delete one first`);
      }
      const doc: WebhookDoc = {
        _id: def.name,
        targetPipeline: def.targetPipeline,
        targetAction: def.targetAction,
        filters: def.filters,
        authentication: def.authentication,
        secretToken: def.secretToken,
        allowedIpRange: def.allowedIpRange,
        // A new URL each time, as AWS: the old one stops working at once.
        urlToken: randomBytes(32).toString("base64url"),
        tags: req.tags.map((t) => ({ key: t.key, value: t.value })),
        registeredWithThirdParty: existing?.registeredWithThirdParty ?? false,
        lastTriggered: null,
        errorMessage: "",
        errorCode: "",
        created: existing?.created ?? now(),
      };
      await webhooks.put(doc);
      logger.info(existing === null ? "webhook created" : "webhook replaced", { webhook: doc._id, pipeline: doc.targetPipeline, action: doc.targetAction, by: ctx.principal.id });
      return { webhook: itemOf(doc) };
    },

    async listWebhooks(req) {
      const v: FieldViolation[] = [];
      const max = req.maxResults ?? MAX_LIST_WEBHOOKS;
      if (!Number.isInteger(max) || max < 1 || max > MAX_LIST_WEBHOOKS) v.push({ field: "MaxResults", message: `must be 1-${MAX_LIST_WEBHOOKS}` });
      if (req.nextToken.length > 2048) v.push({ field: "NextToken", message: "must be at most 2048 characters" });
      if (v.length > 0) throw invalid("ValidationException", v);
      const after = req.nextToken === "" ? "" : decodeToken(req.nextToken);
      const docs = await webhooks.list(after, max + 1);
      const page = docs.slice(0, max);
      const last = page.at(-1);
      return { webhooks: page.map(itemOf), nextToken: docs.length > max && last !== undefined ? Buffer.from(last._id).toString("base64url") : "" };
    },

    async deleteWebhook(req, ctx) {
      checkName("name", req.name);
      await webhooks.delete(req.name);
      logger.info("webhook deleted", { webhook: req.name, by: ctx.principal.id });
      return {};
    },

    async registerWebhookWithThirdParty(req, ctx) {
      await setRegistered(webhooks, req.webhookName, true);
      logger.info("webhook marked registered with third party (Sluice does not call GitHub: add the URL and secret to the repository yourself)", { webhook: req.webhookName, by: ctx.principal.id });
      return {};
    },

    async deregisterWebhookWithThirdParty(req, ctx) {
      await setRegistered(webhooks, req.webhookName, false);
      logger.info("webhook marked deregistered from third party", { webhook: req.webhookName, by: ctx.principal.id });
      return {};
    },
  };
}

async function setRegistered(webhooks: WebhookStore, name: string, registered: boolean): Promise<void> {
  checkName("webhookName", name);
  if (!(await webhooks.setRegistered(name, registered))) {
    throw new DomainError("WebhookNotFoundException", `webhook ${name} does not exist`, [{ field: "webhookName", message: `webhook ${name} does not exist` }]);
  }
}

/** A PutWebhook request's definition, checked; each error names its field. */
type CheckedDefinition = { name: string } & Pick<WebhookDoc, "targetPipeline" | "targetAction" | "filters" | "authentication" | "secretToken" | "allowedIpRange">;

/**
 * Checks a PutWebhook request in AWS's order of kinds: shape (ValidationException), then filter
 * patterns (InvalidWebhookFilterPatternException), then authentication parameters
 * (InvalidWebhookAuthenticationParametersException). A SecretToken of `****` keeps the stored
 * one, so a definition read back from ListWebhooks can be put again as it is.
 */
export function checkPutWebhook(req: PutWebhookRequest, existing: WebhookDoc | null): CheckedDefinition {
  const w = req.webhook;
  if (w === undefined) throw invalid("ValidationException", [{ field: "webhook", message: "is required" }]);
  const v: FieldViolation[] = [];
  const name = (field: string, value: string): void => {
    if (value === "") v.push({ field, message: "is required" });
    else if (!PIPELINE_NAME_PATTERN.test(value)) v.push({ field, message: `"${clip(value)}" must be 1-100 characters of A-Z a-z 0-9 . @ _ -` });
  };
  name("webhook.name", w.name);
  name("webhook.targetPipeline", w.targetPipeline);
  name("webhook.targetAction", w.targetAction);
  if (w.filters.length > MAX_WEBHOOK_FILTERS) v.push({ field: "webhook.filters", message: `must have at most ${MAX_WEBHOOK_FILTERS} filters, got ${w.filters.length}` });
  w.filters.forEach((f, i) => {
    if (f.jsonPath.length < 1 || f.jsonPath.length > MAX_JSON_PATH) v.push({ field: `webhook.filters[${i}].jsonPath`, message: `must be 1-${MAX_JSON_PATH} characters` });
    if (f.matchEquals.length > MAX_MATCH_EQUALS) v.push({ field: `webhook.filters[${i}].matchEquals`, message: `must be at most ${MAX_MATCH_EQUALS} characters` });
  });
  const auth = w.authentication as WebhookAuthentication;
  if (w.authentication === "") v.push({ field: "webhook.authentication", message: "is required (GITHUB_HMAC, IP or UNAUTHENTICATED)" });
  else if (!AUTHENTICATIONS.includes(auth)) v.push({ field: "webhook.authentication", message: `"${clip(w.authentication)}" must be GITHUB_HMAC, IP or UNAUTHENTICATED` });
  if (w.authenticationConfiguration === undefined) v.push({ field: "webhook.authenticationConfiguration", message: "is required (empty for UNAUTHENTICATED)" });
  if (req.tags.length > MAX_TAGS) v.push({ field: "tags", message: `must have at most ${MAX_TAGS} tags` });
  req.tags.forEach((t, i) => {
    if (t.key.length < 1 || t.key.length > MAX_TAG_KEY_LENGTH) v.push({ field: `tags[${i}].key`, message: `must be 1-${MAX_TAG_KEY_LENGTH} characters` });
    if (t.key.toLowerCase().startsWith("aws:")) v.push({ field: `tags[${i}].key`, message: 'must not start with "aws:"' });
    if (t.value.length > MAX_TAG_VALUE_LENGTH) v.push({ field: `tags[${i}].value`, message: `must be at most ${MAX_TAG_VALUE_LENGTH} characters` });
  });
  if (v.length > 0) throw invalid("ValidationException", v);

  const patterns: FieldViolation[] = [];
  w.filters.forEach((f, i) => {
    const error = jsonPathError(f.jsonPath);
    if (error !== undefined) patterns.push({ field: `webhook.filters[${i}].jsonPath`, message: `${JSON.stringify(clip(f.jsonPath))} is not a JSONPath: ${clip(error, 200)}` });
  });
  if (patterns.length > 0) throw invalid("InvalidWebhookFilterPatternException", patterns);

  const cfg = w.authenticationConfiguration ?? { secretToken: "", allowedIpRange: "" };
  const secretToken = cfg.secretToken === SECRET_MASK && existing?.authentication === "GITHUB_HMAC" ? existing.secretToken : cfg.secretToken;
  const a: FieldViolation[] = [];
  const field = (key: string): string => `webhook.authenticationConfiguration.${key}`;
  if (auth === "GITHUB_HMAC") {
    if (secretToken === "" || secretToken === SECRET_MASK) a.push({ field: field("SecretToken"), message: "is required for GITHUB_HMAC" });
    else if (secretToken.length > MAX_SECRET_TOKEN) a.push({ field: field("SecretToken"), message: `must be at most ${MAX_SECRET_TOKEN} characters` });
    if (cfg.allowedIpRange !== "") a.push({ field: field("AllowedIPRange"), message: "is only for IP authentication" });
  } else if (auth === "IP") {
    if (cfg.allowedIpRange === "") a.push({ field: field("AllowedIPRange"), message: "is required for IP (a CIDR such as 192.0.2.0/24)" });
    else if (parseCidr(cfg.allowedIpRange) === undefined) a.push({ field: field("AllowedIPRange"), message: `"${clip(cfg.allowedIpRange)}" is not a CIDR (e.g. 192.0.2.0/24 or 2001:db8::/32)` });
    if (cfg.secretToken !== "") a.push({ field: field("SecretToken"), message: "is only for GITHUB_HMAC authentication" });
  } else {
    if (cfg.secretToken !== "") a.push({ field: field("SecretToken"), message: "must be empty for UNAUTHENTICATED" });
    if (cfg.allowedIpRange !== "") a.push({ field: field("AllowedIPRange"), message: "must be empty for UNAUTHENTICATED" });
  }
  if (a.length > 0) throw invalid("InvalidWebhookAuthenticationParametersException", a);

  return {
    name: w.name,
    targetPipeline: w.targetPipeline,
    targetAction: w.targetAction,
    filters: w.filters.map((f) => ({ jsonPath: f.jsonPath, matchEquals: f.matchEquals })),
    authentication: auth,
    secretToken: auth === "GITHUB_HMAC" ? secretToken : "",
    allowedIpRange: auth === "IP" ? cfg.allowedIpRange : "",
  };
}

function checkName(field: string, value: string): void {
  if (value === "") throw invalid("ValidationException", [{ field, message: "is required" }]);
  if (!PIPELINE_NAME_PATTERN.test(value)) throw invalid("ValidationException", [{ field, message: `"${clip(value)}" must be 1-100 characters of A-Z a-z 0-9 . @ _ -` }]);
}

function decodeToken(token: string): string {
  const name = Buffer.from(token, "base64url").toString("utf8");
  if (!PIPELINE_NAME_PATTERN.test(name)) throw new DomainError("InvalidNextTokenException", "NextToken: is not a token ListWebhooks returned", [{ field: "NextToken", message: "is not a token ListWebhooks returned" }]);
  return name;
}

function clip(value: string, max = 120): string {
  return value.length > max ? `${value.slice(0, max)}...` : value;
}
