import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Bus } from "@sluice/bus";
import { stripUserinfo } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import { readDefinition } from "../definition-file.js";
import type { DefinitionFile } from "../definition-file.js";
import type { GitMirrors } from "../git-mirror.js";
import { lsRemoteHead } from "../git-remote.js";
import { parseJsonBody, readBody } from "./body.js";
import { parseCidr } from "./cidr.js";
import type { DeliveryGuard } from "./delivery-guard.js";
import { firstUnmatchedFilter } from "./filters.js";
import { normaliseGitEvent } from "./git-change-event.js";
import type { GitHostProvider } from "./git-change-event.js";
import { publishSourceChange } from "./publish.js";
import { normaliseRepositoryUrl } from "./repository-url.js";
import { sharedTokenEquals, verifyGiteaSignature, verifyGithubSignature } from "./signatures.js";
import { matchesSourceAction } from "./source-action-match.js";
import type { KnownSourceAction, SourceActionStore } from "./source-actions.js";
import type { WebhookStore } from "./webhook-store.js";

/** The receiver's settings (WEBHOOK_* variables). */
export interface WebhookReceiverConfig {
  host: string;
  /** 0: a random free port (tests). */
  port: number;
  /** What webhook URLs start with; empty: `http://<host>:<port>` as bound. */
  publicUrl: string;
  maxBodyBytes: number;
  maxJsonDepth: number;
  /** Secrets of the native endpoints; an empty one turns its endpoint off (404). */
  githubSecret: string;
  gitlabToken: string;
  giteaSecret: string;
  /** How long a delivery id is remembered for the replay guard. */
  deliveryTtlSeconds: number;
}

export interface WebhookReceiverDeps {
  config: WebhookReceiverConfig;
  webhooks: WebhookStore;
  sourceActions: SourceActionStore;
  deliveries: DeliveryGuard;
  bus: Bus;
  logger: Logger;
  gitTimeoutMs: number;
  gitHostEnv: Readonly<Record<string, string>>;
  /** Reads `.sluice/pipeline.json` for pushes of the definition's source; undefined: never read. */
  mirrors?: GitMirrors | undefined;
}

export interface WebhookReceiver {
  readonly port: number;
  /** What webhook URLs start with (no trailing slash). */
  readonly baseUrl: string;
  urlOf(urlToken: string): string;
  stop(): Promise<void>;
}

const COMMIT = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,200}$/;

/**
 * The HTTP receiver: `POST /trigger?t=<token>&v=1` for AWS-style webhooks, and
 * `POST /hooks/github|gitlab|gitea` for the hosts' own push events. Every request is
 * authenticated before its body is parsed; bodies are capped before they are read.
 */
export async function startWebhookReceiver(deps: WebhookReceiverDeps): Promise<WebhookReceiver> {
  const { config, logger } = deps;
  const server = createServer((req, res) => {
    handle(deps, req, res).catch((err: unknown) => {
      logger.error("webhook request failed", { path: pathOf(req), error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) reply(res, 500, { message: "internal error" });
      else res.destroy();
    });
  });
  // A sender that trickles headers or a body must not hold a connection for long.
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const baseUrl = (config.publicUrl === "" ? `http://${hostPart}:${address.port}` : config.publicUrl).replace(/\/+$/, "");
  const enabled = (["github", "gitlab", "gitea"] as const).filter((p) => secretOf(config, p) !== "");
  logger.info("webhook receiver listening", { url: baseUrl, trigger: `${baseUrl}/trigger`, nativeEndpoints: enabled.map((p) => `${baseUrl}/hooks/${p}`) });
  return {
    port: address.port,
    baseUrl,
    urlOf: (urlToken) => `${baseUrl}/trigger?t=${urlToken}&v=1`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

async function handle(deps: WebhookReceiverDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://receiver");
  const native = /^\/hooks\/(github|gitlab|gitea)\/?$/.exec(url.pathname)?.[1] as GitHostProvider | undefined;
  if (url.pathname !== "/trigger" && native === undefined) return reply(res, 404, { message: "not found" });
  if (req.method !== "POST") {
    res.setHeader("allow", "POST");
    return reply(res, 405, { message: "only POST" });
  }
  if (native !== undefined) return handleGitHost(deps, native, req, res);
  return handleTrigger(deps, url.searchParams.get("t") ?? "", req, res);
}

/** An AWS-style webhook call: authentication, filters, then SourceChanged for the target action. */
async function handleTrigger(deps: WebhookReceiverDeps, urlToken: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { config, webhooks, sourceActions } = deps;
  const hook = urlToken === "" || urlToken.length > 100 ? null : await webhooks.byUrlToken(urlToken);
  if (hook === null) return reply(res, 404, { message: "no webhook has this URL (each PutWebhook gives a new one)" });
  const log = deps.logger.child({ webhook: hook._id, pipeline: hook.targetPipeline, action: hook.targetAction });
  // The address is checked before a byte of the body is read.
  if (hook.authentication === "IP") {
    const remote = req.socket.remoteAddress ?? "";
    if (!(parseCidr(hook.allowedIpRange)?.contains(remote) ?? false)) {
      log.warn("webhook call refused: sender outside AllowedIPRange", { remote, allowedIpRange: hook.allowedIpRange });
      return reply(res, 403, { message: "sender address not allowed" });
    }
  }
  const body = await readBody(req, config.maxBodyBytes);
  if (!body.ok) return body.reason === "aborted" ? void res.destroy() : tooLarge(res, log, config.maxBodyBytes);
  if (hook.authentication === "GITHUB_HMAC") {
    const header = headerOf(req, "x-hub-signature-256");
    if (!verifyGithubSignature(hook.secretToken, body.body, header)) {
      log.warn("webhook call refused: bad signature", { reason: header === undefined ? "no X-Hub-Signature-256 header" : "X-Hub-Signature-256 does not match the body" });
      return reply(res, 401, { message: header === undefined ? "missing X-Hub-Signature-256" : "signature does not match" });
    }
  }
  const parsed = parseJsonBody(body.body, config.maxJsonDepth, headerOf(req, "content-type"));
  if (!parsed.ok) {
    log.info("webhook call ignored: body is not acceptable JSON", { reason: parsed.reason });
    return reply(res, 400, { message: parsed.reason });
  }
  const action = await sourceActions.get(hook.targetPipeline, hook.targetAction);
  if (action === null) {
    const reason = `pipeline ${hook.targetPipeline} has no source action ${hook.targetAction} any more (the pipeline was deleted or the action removed); the webhook is kept until DeleteWebhook but starts nothing`;
    log.warn("webhook call started nothing: target gone", { reason });
    await webhooks.recordError(hook.urlToken, "PipelineNotFoundException", reason);
    return reply(res, 204);
  }
  const unmatched = firstUnmatchedFilter(hook.filters, parsed.value, action.configuration);
  if (unmatched !== undefined) {
    log.info("webhook call started nothing: a filter did not match", { filter: unmatched.index, reason: unmatched.reason });
    return reply(res, 204);
  }
  const pushed = pushedRevisionOf(parsed.value);
  const branch = pushed.branch ?? action.git?.branch ?? "";
  let commit = pushed.commit;
  if (commit === undefined) {
    if (action.git === null) {
      const reason = `the payload names no commit (after / head_commit.id), and ${action.actionType} sources cannot be looked up with git ls-remote`;
      log.warn("webhook call started nothing", { reason });
      await webhooks.recordError(hook.urlToken, "ValidationException", reason);
      return reply(res, 204);
    }
    try {
      commit = await lsRemoteHead(action.git.repositoryUrl, action.git.branch, { timeoutMs: deps.gitTimeoutMs, hostEnv: deps.gitHostEnv });
    } catch (err) {
      const reason = `git ls-remote failed: ${stripUserinfo(err instanceof Error ? err.message : String(err))}`;
      log.warn("webhook call started nothing", { reason });
      await webhooks.recordError(hook.urlToken, "SourceUnavailable", reason);
      return reply(res, 502, { message: "the source's branch head could not be read" });
    }
    if (commit === undefined) {
      const reason = `branch ${action.git.branch} does not exist in the repository`;
      log.warn("webhook call started nothing", { reason });
      await webhooks.recordError(hook.urlToken, "SourceUnavailable", reason);
      return reply(res, 204);
    }
  }
  const definition = await definitionOf(deps, action, branch, commit, log);
  const eventId = await publishSourceChange(deps.bus, {
    pipelineName: hook.targetPipeline,
    actionName: hook.targetAction,
    commit,
    branch,
    definition,
    triggerType: "Webhook",
    triggerDetail: `arn:sluice:codepipeline:local:000000000000:webhook:${hook._id}`,
  });
  await webhooks.recordTriggered(hook.urlToken, new Date());
  log.info("webhook call started the pipeline", { revision: commit, branch, eventId });
  return reply(res, 200, { revision: commit });
}

/** A native push / pull-request event of GitHub, GitLab or Gitea/Forgejo. */
async function handleGitHost(deps: WebhookReceiverDeps, provider: GitHostProvider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { config } = deps;
  const secret = secretOf(config, provider);
  if (secret === "") return reply(res, 404, { message: "not found" });
  const log = deps.logger.child({ provider });
  const body = await readBody(req, config.maxBodyBytes);
  if (!body.ok) return body.reason === "aborted" ? void res.destroy() : tooLarge(res, log, config.maxBodyBytes);
  const auth = authenticateGitHost(provider, secret, body.body, req);
  if (auth !== undefined) {
    log.warn("git host event refused", { reason: auth });
    return reply(res, 401, { message: auth });
  }
  const eventName = headerOf(req, provider === "github" ? "x-github-event" : provider === "gitlab" ? "x-gitlab-event" : "x-gitea-event") ?? "";
  const deliveryId =
    provider === "github" ? headerOf(req, "x-github-delivery") : provider === "gitlab" ? (headerOf(req, "x-gitlab-event-uuid") ?? headerOf(req, "idempotency-key")) : headerOf(req, "x-gitea-delivery");
  if (deliveryId === undefined || !DELIVERY_ID.test(deliveryId)) {
    log.warn("git host event refused: no usable delivery id", { event: eventName });
    return reply(res, 400, { message: "missing or malformed delivery id header" });
  }
  const dlog = log.child({ delivery: deliveryId, event: eventName });
  if (provider === "github" && eventName === "ping") return reply(res, 200, { message: "pong" });
  const parsed = parseJsonBody(body.body, config.maxJsonDepth, headerOf(req, "content-type"));
  if (!parsed.ok) {
    dlog.info("git host event ignored: body is not acceptable JSON", { reason: parsed.reason });
    return reply(res, 400, { message: parsed.reason });
  }
  if (!(await deps.deliveries.claim(provider, deliveryId, new Date()))) {
    dlog.warn("git host event refused: delivery id seen before (a replay); nothing started");
    return reply(res, 409, { message: "delivery already received" });
  }
  try {
    const outcome = normaliseGitEvent(provider, eventName, parsed.value);
    if ("ignored" in outcome) {
      dlog.info("git host event started nothing", { reason: outcome.ignored });
      return reply(res, 204);
    }
    const event = outcome.event;
    const keys = [...new Set(event.repositoryUrls.map(normaliseRepositoryUrl).filter((k): k is string => k !== undefined))];
    const candidates = await deps.sourceActions.ofRepositories(keys);
    if (candidates.length === 0) dlog.info("git host event started nothing: no Git source action has this repository", { repositories: keys });
    const started: string[] = [];
    for (const action of candidates) {
      const match = matchesSourceAction(action, event);
      if (!match.matched) {
        dlog.info("git host event does not start this source", { pipeline: action.pipelineName, action: action.actionName, reason: match.reason });
        continue;
      }
      const branch = event.kind === "push" ? (event.branch ?? "") : event.sourceBranch;
      const definition = event.kind === "push" ? await definitionOf(deps, action, branch, event.commit, dlog) : undefined;
      await publishSourceChange(deps.bus, {
        pipelineName: action.pipelineName,
        actionName: action.actionName,
        commit: event.commit,
        branch,
        definition,
        triggerType: "WebhookV2",
        triggerDetail: `${provider} ${event.kind} ${stripUserinfo(event.repositoryUrls[0] ?? "")}#${branch} (delivery ${deliveryId})`,
      });
      dlog.info("git host event started the pipeline", { pipeline: action.pipelineName, action: action.actionName, revision: event.commit, reason: match.reason });
      started.push(`${action.pipelineName}/${action.actionName}`);
    }
    return started.length === 0 ? reply(res, 204) : reply(res, 200, { started, revision: event.commit });
  } catch (err) {
    // The host retries a failed delivery with the same id: let that retry through.
    await deps.deliveries.release(provider, deliveryId).catch(() => undefined);
    throw err;
  }
}

/**
 * The definition file a push to the definition source's own branch carries (as the poller's
 * changes do). A file git cannot read does not hold the push up: the revision starts on the
 * pipeline as it is, which the warning says (the poll's copy of the change, file and all, is
 * then a duplicate JetStream drops).
 */
async function definitionOf(deps: WebhookReceiverDeps, action: KnownSourceAction, branch: string, commit: string, log: Logger): Promise<DefinitionFile | undefined> {
  if (deps.mirrors === undefined || action.carriesDefinition !== true || action.git === null || branch !== action.git.branch) return undefined;
  try {
    return await readDefinition(deps.mirrors, action.git.repositoryUrl, branch, commit);
  } catch (err) {
    log.warn(".sluice/pipeline.json could not be read; the revision starts on the pipeline as it is", {
      pipeline: action.pipelineName,
      action: action.actionName,
      revision: commit,
      error: stripUserinfo(err instanceof Error ? err.message : String(err)),
    });
    return undefined;
  }
}

/** Why a delivery is not authentic, or undefined when it is. */
function authenticateGitHost(provider: GitHostProvider, secret: string, body: Buffer, req: IncomingMessage): string | undefined {
  switch (provider) {
    case "github": {
      const header = headerOf(req, "x-hub-signature-256");
      if (header === undefined) return "missing X-Hub-Signature-256";
      return verifyGithubSignature(secret, body, header) ? undefined : "X-Hub-Signature-256 does not match the body";
    }
    case "gitlab": {
      const header = headerOf(req, "x-gitlab-token");
      if (header === undefined) return "missing X-Gitlab-Token";
      return sharedTokenEquals(secret, header) ? undefined : "X-Gitlab-Token is wrong";
    }
    case "gitea": {
      const header = headerOf(req, "x-gitea-signature");
      if (header === undefined) return "missing X-Gitea-Signature";
      return verifyGiteaSignature(secret, body, header) ? undefined : "X-Gitea-Signature does not match the body";
    }
  }
}

/**
 * The pushed commit and branch of a GitHub-style push payload (`after`, else `head_commit.id`;
 * `ref` refs/heads/<branch>); GitLab's `checkout_sha` too. A zero `after` (a deleted branch) is none.
 */
export function pushedRevisionOf(payload: unknown): { commit?: string; branch?: string } {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return {};
  const p = payload as Record<string, unknown>;
  const headCommit = p["head_commit"];
  const candidates = [p["after"], p["checkout_sha"], typeof headCommit === "object" && headCommit !== null ? (headCommit as Record<string, unknown>)["id"] : undefined];
  const commit = candidates.find((c): c is string => typeof c === "string" && COMMIT.test(c) && !/^0+$/.test(c));
  const ref = p["ref"];
  const branch = typeof ref === "string" && ref.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : undefined;
  return { ...(commit === undefined ? {} : { commit }), ...(branch === undefined ? {} : { branch }) };
}

function secretOf(config: WebhookReceiverConfig, provider: GitHostProvider): string {
  return provider === "github" ? config.githubSecret : provider === "gitlab" ? config.gitlabToken : config.giteaSecret;
}

function tooLarge(res: ServerResponse, log: Logger, maxBytes: number): void {
  log.warn("webhook call refused: body too large", { maxBytes });
  // Closing the connection is what stops the rest of the body from being read.
  res.setHeader("connection", "close");
  reply(res, 413, { message: `body larger than ${maxBytes} bytes` });
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === "string" ? v : Array.isArray(v) ? v[0] : undefined;
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? "").split("?")[0] ?? "";
}

function reply(res: ServerResponse, status: number, body?: Record<string, unknown>): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

