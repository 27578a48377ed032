import { tokenRef } from "./token-ref.js";
import type { Logger } from "@sluice/domain";
import { EgressRefusedError, EgressTimeoutError, createEgressPolicy, egressRequest } from "@sluice/service-kit";
import type { EgressPolicy } from "@sluice/service-kit";
import type { ApprovalDoc, ApprovalStore } from "./approval-store.js";

/**
 * Approval notifications: when an approval opens and its action configuration has
 * `NotificationUrl` (an HTTP(S) webhook, Sluice's stand-in for AWS's SNS `NotificationArn`), the
 * service POSTs a JSON body shaped like AWS's SNS approval message. Delivery state lives on the
 * approval document, so retries survive restarts: the intake tries at once, the sweeper retries
 * due attempts with backoff. A notification never blocks or fails the approval; once the approval
 * is answered or expired, pending retries are skipped.
 *
 * Every POST goes through the egress policy (@sluice/service-kit egress.ts): a URL whose host is
 * or resolves to a loopback, link-local or private address is refused before connecting unless
 * `EGRESS_ALLOW` opens it, and the notification fails at once with the reason.
 *
 * Delivery is at least once: an attempt takes a lease (`leaseNotification`) so two sweeps do
 * not send the same attempt, but a crash after the POST and before recording it sends again.
 */

/** Tries per notification before giving up (the first one included). */
export const NOTIFY_MAX_ATTEMPTS = 5;
/** Each POST's timeout. */
export const NOTIFY_TIMEOUT_MS = 5_000;
/** Delay after the first failed attempt; ×3 after each further one (10 s, 30 s, 90 s, 270 s). */
export const NOTIFY_RETRY_BASE_MS = 10_000;
/** How long an attempt holds its lease; longer than any POST, so a crashed attempt is retried after it. */
export const NOTIFY_LEASE_MS = 60_000;
/** Notifications one sweep handles at most. */
export const NOTIFY_SWEEP_BATCH = 50;

/** Delay before attempt `attempt + 1` after attempt `attempt` (1-based) failed. */
export function notifyRetryDelayMs(attempt: number): number {
  return NOTIFY_RETRY_BASE_MS * 3 ** Math.max(0, attempt - 1);
}

/** The body AWS sends to an approval's SNS topic, with Sluice's values. */
export interface ApprovalNotification {
  region: string;
  consoleLink: string;
  approval: {
    pipelineName: string;
    stageName: string;
    actionName: string;
    token: string;
    /** When the approval expires; AWS's format, `2016-07-07T20:22Z` (minutes, UTC). */
    expires: string;
    externalEntityLink: string;
    approvalReviewLink: string;
    customData: string;
  };
}

/** Where links in notifications point; both optional. */
export interface NotificationSettings {
  /** Shown as `region` (Sluice has one, named by configuration). */
  readonly region: string;
  /** Base URL of a console that shows pipelines, or undefined: links are then "". */
  readonly consoleUrl: string | undefined;
  /** Timeout of one POST (default {@link NOTIFY_TIMEOUT_MS}). */
  readonly timeoutMs?: number | undefined;
  /** Where POSTs may go. @default public addresses only (createEgressPolicy()) */
  readonly egress?: EgressPolicy | undefined;
}

/** The notification body of an approval. */
export function notificationOf(doc: ApprovalDoc, settings: NotificationSettings): ApprovalNotification {
  const base = settings.consoleUrl?.replace(/\/+$/, "");
  const pipelineLink = base === undefined ? "" : `${base}/pipelines/${encodeURIComponent(doc.pipelineName)}`;
  return {
    region: settings.region,
    consoleLink: pipelineLink,
    approval: {
      pipelineName: doc.pipelineName,
      stageName: doc.stageName,
      actionName: doc.actionName,
      token: doc._id,
      expires: doc.expiresAt === null ? "" : `${doc.expiresAt.toISOString().slice(0, 16)}Z`,
      externalEntityLink: doc.externalEntityLink,
      approvalReviewLink:
        base === undefined
          ? ""
          : `${pipelineLink}/stages/${encodeURIComponent(doc.stageName)}/actions/${encodeURIComponent(doc.actionName)}/approve?token=${doc._id}`,
      customData: doc.customData,
    },
  };
}

/**
 * Checks a `NotificationUrl`: an absolute http(s) URL. Returns the problem, or undefined when
 * the URL is usable. The domain validator checks pipelines; this guards jobs all the same.
 */
export function notificationUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not an absolute URL";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return `must be an http or https URL, not ${parsed.protocol}`;
  return undefined;
}

/** Sends notifications and retries them from stored state. */
export interface Notifier {
  /** Tries a just-opened approval's notification now, in the background; never throws. */
  kick(token: string): void;
  /** Retries every due notification; resolves with how many were sent. */
  sweep(now: Date): Promise<number>;
  /** Waits for attempts started by `kick`. */
  idle(): Promise<void>;
}

/** Creates the notifier over the store; `now` is the service clock (expiry and retries follow it). */
export function createNotifier(store: ApprovalStore, settings: NotificationSettings, logger: Logger, now: () => Date): Notifier {
  const timeoutMs = settings.timeoutMs ?? NOTIFY_TIMEOUT_MS;
  const egress = settings.egress ?? createEgressPolicy();
  const inFlight = new Set<Promise<void>>();

  // Tokens with an attempt running in this process. The lease below keeps replicas apart on
  // MongoDB, but FerretDB's conditional updates are not atomic, so the intake's immediate attempt
  // and a sweep of this same process could both win it; they are kept apart here.
  const attempting = new Set<string>();

  /** One attempt, if it is due and none runs here already; true when the notification was sent. */
  async function attempt(token: string): Promise<boolean> {
    if (attempting.has(token)) return false;
    attempting.add(token);
    try {
      return await attemptLeased(token);
    } finally {
      attempting.delete(token);
    }
  }

  async function attemptLeased(token: string): Promise<boolean> {
    const at = now();
    const doc = await store.leaseNotification(token, at, new Date(at.getTime() + NOTIFY_LEASE_MS));
    if (doc === null) return false;
    const attempts = doc.notifyAttempts ?? 1;
    const url = doc.notifyUrl ?? "";
    // Only the host is logged: the path of a chat webhook is its secret.
    const log = logger.child({ approval: tokenRef(token), pipelineName: doc.pipelineName, host: hostOf(url), attempt: attempts });
    if (doc.status !== "Pending") {
      await store.setNotification(token, { status: "Skipped", nextAt: null });
      log.info("approval notification skipped: the approval is already closed", { status: doc.status });
      return false;
    }
    const { error, final } = await post(egress, url, notificationOf(doc, settings), timeoutMs);
    if (error === undefined) {
      await store.setNotification(token, { status: "Sent", nextAt: null, sentAt: now(), lastError: "" });
      log.info("approval notification sent");
      return true;
    }
    if (final) {
      await store.setNotification(token, { status: "Failed", nextAt: null, lastError: error });
      log.warn("approval notification refused; not retrying", { err: error });
    } else if (attempts >= NOTIFY_MAX_ATTEMPTS) {
      await store.setNotification(token, { status: "Failed", nextAt: null, lastError: error });
      log.warn("approval notification failed; giving up", { err: error });
    } else {
      const retryInMs = notifyRetryDelayMs(attempts);
      await store.setNotification(token, { status: "Pending", nextAt: new Date(now().getTime() + retryInMs), lastError: error });
      log.warn("approval notification failed; will retry", { err: error, retryInMs });
    }
    return false;
  }

  return {
    kick(token) {
      const running = attempt(token)
        .then(() => undefined)
        .catch((err: unknown) => logger.warn("approval notification attempt failed", { approval: tokenRef(token), err: errorText(err) }))
        .finally(() => inFlight.delete(running));
      inFlight.add(running);
    },

    async sweep(at) {
      const due = await store.dueNotifications(at, NOTIFY_SWEEP_BATCH);
      let sent = 0;
      for (const doc of due) {
        try {
          if (await attempt(doc._id)) sent += 1;
        } catch (err) {
          logger.warn("approval notification attempt failed", { approval: tokenRef(doc._id), err: errorText(err) });
        }
      }
      return sent;
    },

    async idle() {
      await Promise.allSettled([...inFlight]);
    },
  };
}

/**
 * POSTs the body; `error` is undefined on a 2xx answer. `final`: retrying cannot help (the URL is
 * unusable or the egress policy refuses its destination).
 */
async function post(egress: EgressPolicy, url: string, body: ApprovalNotification, timeoutMs: number): Promise<{ error: string | undefined; final: boolean }> {
  const problem = notificationUrlProblem(url);
  if (problem !== undefined) return { error: `NotificationUrl ${problem}`, final: true };
  try {
    // A redirect is an answer we do not follow (egressRequest never does): the URL is what the pipeline author wrote.
    const res = await egressRequest(egress, url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "sluice-approval" },
      body: JSON.stringify(body),
      timeoutMs,
      maxResponseBytes: 0,
    });
    return { error: res.status >= 200 && res.status < 300 ? undefined : `HTTP ${res.status}`, final: false };
  } catch (err) {
    if (err instanceof EgressRefusedError) return { error: `NotificationUrl refused by the egress policy: ${err.message} (EGRESS_ALLOW can open it)`, final: true };
    if (err instanceof EgressTimeoutError) return { error: err.message, final: false };
    return { error: errorText(err), final: false };
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "";
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
