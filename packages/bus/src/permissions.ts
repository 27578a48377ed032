import { randomBytes } from "node:crypto";
import type { Catalog } from "./catalog.js";
import { sanitizeToken } from "./catalog.js";

/**
 * Who may do what on the bus: one NATS user per role, with the subjects that role needs and
 * nothing else, generated from the catalog so a test prefix (`t1.sluice.>`, `T1_SLUICE_JOBS`)
 * gets the same model as production. `natsAuthorizationConfig` renders it as the
 * `authorization { users = [...] }` block of a nats-server configuration.
 *
 * JetStream is driven by publishing requests to `$JS.API.*` subjects, so API permissions are
 * publish permissions on those subjects. Replies come back on the requester's own inbox
 * prefix (`inboxPrefixFor`), so no user can read another's replies (pulled jobs included).
 */

/** The role of a bus user. Jobs' processes get no user at all, and the artifact service does not use the bus. */
export type BusRole = "orchestrator" | "runner" | "approval" | "source-poller" | "admin";

/**
 * One principal: a role, and for a runner its pool (which names the user) and any further pools
 * the same user serves (a runner with several RUNNER_POOLS).
 */
export type BusPrincipal =
  | { readonly role: "runner"; readonly pool: string; readonly morePools?: readonly string[] | undefined }
  | { readonly role: Exclude<BusRole, "runner"> };

/** Every pool a runner principal serves: its own, then the others, without duplicates. */
export function runnerPoolsOf(principal: Extract<BusPrincipal, { role: "runner" }>): string[] {
  return [...new Set([principal.pool, ...(principal.morePools ?? [])])];
}

/** Publish and subscribe allow-lists of one user (everything else is denied). */
export interface SubjectPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

/** A password given literally, or as a nats-server environment reference (`$VAR`, resolved by the server). */
export type PasswordSource = string | { readonly env: string };

/** One user of the generated configuration. */
export interface BusUser {
  readonly principal: BusPrincipal;
  readonly password: PasswordSource;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `runner-<pool>` for runners, the role otherwise. */
export function busUserName(principal: BusPrincipal): string {
  return principal.role === "runner" ? `runner-${sanitizeToken(principal.pool)}` : principal.role;
}

/**
 * The inbox prefix a user must connect with (`BusOptions.inboxPrefix`): `_INBOX_<user>`.
 * Its first token differs per user, so `subscribe: _INBOX_<user>.>` grants exactly one's own replies.
 */
export function inboxPrefixFor(principal: BusPrincipal): string {
  return `_INBOX_${busUserName(principal)}`;
}

/** The durable consumer name of a pool's runners: `runner-<pool>`. */
export function runnerDurableName(pool: string): string {
  return `runner-${sanitizeToken(pool)}`;
}

/** Durable names of the services' consumers that the permission model scopes. */
export const APPROVAL_DURABLE_NAME = "approval";
export const SOURCE_POLLER_DURABLE_NAME = "source-poller-declarations";
/** The source poller's consumer of pipeline execution events, for pipelines' event rules. */
export const SOURCE_POLLER_RULES_DURABLE_NAME = "source-poller-event-rules";

/** Subjects that let a user act on one durable pull consumer and nothing else. */
function ownConsumer(stream: string, durable: string, filters: readonly string[]): string[] {
  return [
    `$JS.API.CONSUMER.INFO.${stream}.${durable}`,
    // The server checks that a filter in the subject equals the configuration's filter, so a
    // single-filter create through this subject cannot widen the consumer.
    ...filters.map((f) => `$JS.API.CONSUMER.CREATE.${stream}.${durable}.${f}`),
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${durable}`,
    // Acks (`+ACK`, `-NAK`, `+WPI`, `+TERM`) go to the message's reply subject; the second form is
    // the server's newer ack subject with domain and account hash.
    `$JS.ACK.${stream}.${durable}.>`,
    `$JS.ACK.*.*.${stream}.${durable}.>`,
  ];
}

/**
 * What every service may do: ask whether JetStream is on, and read the catalog's stream
 * configurations (`ensureStreams` waits for each to exist; stream info holds no messages).
 */
function basics(catalog: Catalog): string[] {
  return ["$JS.API.INFO", ...Object.values(catalog.streams).map((name) => `$JS.API.STREAM.INFO.${name}`)];
}

/** The publish/subscribe allow-lists of one principal under `catalog`; `undefined` for admin (everything). */
export function permissionsFor(catalog: Catalog, principal: BusPrincipal): SubjectPermissions | undefined {
  const s = catalog.subjects;
  const st = catalog.streams;
  const root = s.streamFilter("jobs").slice(0, -"jobs.>".length); // "<prefix.>sluice."
  const inbox = `${inboxPrefixFor(principal)}.>`;
  switch (principal.role) {
    case "admin":
      return undefined;
    case "orchestrator":
      // The orchestrator owns the streams and consumers (creates, updates and watches them), so
      // it has the whole JetStream API of the account; it publishes jobs, cancels and events, and
      // acks the custom action jobs its JobService takes from the jobs stream.
      return {
        publish: [
          "$JS.API.>",
          ...[st.results, st.sources, st.jobs].flatMap((stream) => [`$JS.ACK.${stream}.>`, `$JS.ACK.*.*.${stream}.>`]),
          s.streamFilter("jobs"),
          s.streamFilter("events"),
          s.streamFilter("dlq"),
          `${root}control.>`,
        ],
        subscribe: [inbox],
      };
    case "runner": {
      // Per pool: its consumer, and its result subjects (what the orchestrator checks a result's pool by).
      const perPool = runnerPoolsOf(principal).flatMap((p) => {
        const durable = runnerDurableName(p);
        return [
          ...ownConsumer(st.jobs, durable, [`${root}jobs.${sanitizeToken(p)}.>`]),
          // A runner serving several job kinds keeps one multi-filter consumer, which has no
          // filter-checked create subject (see "Known limits").
          `$JS.API.CONSUMER.DURABLE.CREATE.${st.jobs}.${durable}`,
          s.resultPublisherFilter({ runner: p }),
        ];
      });
      return {
        // Log lines of the jobs it runs (any pipeline: a pool serves every pipeline), nothing else on SLUICE_LOGS.
        publish: [...basics(catalog), ...perPool, s.dlqSubject(st.jobs), s.streamFilter("logs")],
        subscribe: [inbox, s.controlSubject("cancel")],
      };
    }
    case "approval":
      return {
        publish: [
          ...basics(catalog),
          ...ownConsumer(st.jobs, APPROVAL_DURABLE_NAME, [approvalJobFilter(catalog)]),
          s.resultPublisherFilter("approval"),
          s.dlqSubject(st.jobs),
        ],
        subscribe: [inbox],
      };
    case "source-poller":
      return {
        publish: [
          ...basics(catalog),
          ...ownConsumer(st.events, SOURCE_POLLER_DURABLE_NAME, [s.eventKindFilter("declaration")]),
          ...ownConsumer(st.events, SOURCE_POLLER_RULES_DURABLE_NAME, [s.eventKindFilter("pipeline")]),
          `${root}sources.*`,
          s.dlqSubject(st.events),
        ],
        subscribe: [inbox],
      };
  }
}

/** `<root>.jobs.*.Approval.Manual`: approval jobs of every pool, the approval service's filter. */
export function approvalJobFilter(catalog: Catalog): string {
  return `${catalog.subjects.streamFilter("jobs").slice(0, -1)}*.Approval.Manual`;
}

/** The principal of a result, read from its subject (see `Subjects.resultSubject`); undefined for any other shape. */
export function resultPublisherOf(catalog: Catalog, subject: string): ResultPublisherPrincipal | undefined {
  const root = catalog.subjects.streamFilter("results").slice(0, -1); // "<root>.results."
  if (!subject.startsWith(root)) return undefined;
  const tokens = subject.slice(root.length).split(".");
  if (tokens.length === 2 && tokens[1] === "approval") return { kind: "approval" };
  if (tokens.length === 3 && tokens[1] === "runner" && tokens[2] !== undefined && tokens[2] !== "") return { kind: "runner", pool: tokens[2] };
  return undefined;
}

/** Who published a result, as its subject (and so NATS permissions) proves. */
export type ResultPublisherPrincipal = { readonly kind: "runner"; readonly pool: string } | { readonly kind: "approval" };

/** Options of `natsAuthorizationConfig`. */
export interface AuthorizationConfigOptions {
  readonly catalog: Catalog;
  readonly users: readonly BusUser[];
}

/**
 * The `authorization { ... }` block for nats-server: one user per entry, with its permissions.
 * No `no_auth_user` is set, so a connection without credentials is refused.
 */
export function natsAuthorizationConfig(opts: AuthorizationConfigOptions): string {
  const names = new Set<string>();
  const lines = ["authorization {", "  users = ["];
  opts.users.forEach((user, i) => {
    const name = busUserName(user.principal);
    if (names.has(name)) throw new RangeError(`users[${i}]: user ${name} is listed twice`);
    names.add(name);
    const password = passwordLiteral(user.password, `users[${i}].password`);
    const perms = permissionsFor(opts.catalog, user.principal);
    const fields = [`user: ${JSON.stringify(name)}`, `password: ${password}`];
    if (perms !== undefined) {
      fields.push(`permissions: { publish: { allow: ${JSON.stringify(perms.publish)} }, subscribe: { allow: ${JSON.stringify(perms.subscribe)} } }`);
    }
    lines.push(`    { ${fields.join(", ")} }`);
  });
  lines.push("  ]", "}");
  return `${lines.join("\n")}\n`;
}

function passwordLiteral(source: PasswordSource, field: string): string {
  if (typeof source !== "string") {
    if (!ENV_NAME.test(source.env)) throw new RangeError(`${field}: env must be a variable name, got "${source.env}"`);
    return `$${source.env}`;
  }
  // Quoted strings in nats-server configs have no escapes for these; refuse rather than mangle.
  if (source.length < 16 || /["\\\s]/.test(source)) throw new RangeError(`${field}: must be at least 16 characters without quotes, backslashes or whitespace`);
  return JSON.stringify(source);
}

/** A user name and password to connect with. */
export interface BusLogin {
  readonly user: string;
  readonly password: string;
}

/** What `generateBusAuthorization` returns: the server's configuration and each principal's login. */
export interface GeneratedBusAuthorization {
  /** The `authorization` block for nats-server (passwords inline: keep the file private). */
  readonly config: string;
  readonly orchestrator: BusLogin;
  readonly approval: BusLogin;
  readonly sourcePoller: BusLogin;
  readonly admin: BusLogin;
  /** One login per runner user, keyed by its pools joined with "," (one pool: the pool's name). */
  readonly runners: Readonly<Record<string, BusLogin>>;
}

/**
 * Every principal with a fresh random password (test servers and the dev cluster): the
 * orchestrator, approval, source-poller, admin and one runner user per entry of `pools` — a
 * pool's name, or a list of pools served by one user (named after the first).
 */
export function generateBusAuthorization(catalog: Catalog, pools: readonly (string | readonly string[])[] = ["default"]): GeneratedBusAuthorization {
  const login = (principal: BusPrincipal): BusLogin => ({ user: busUserName(principal), password: randomBytes(24).toString("hex") });
  const orchestrator = login({ role: "orchestrator" });
  const approval = login({ role: "approval" });
  const sourcePoller = login({ role: "source-poller" });
  const admin = login({ role: "admin" });
  const runners: Record<string, BusLogin> = {};
  const users: BusUser[] = [
    { principal: { role: "orchestrator" }, password: orchestrator.password },
    { principal: { role: "approval" }, password: approval.password },
    { principal: { role: "source-poller" }, password: sourcePoller.password },
    { principal: { role: "admin" }, password: admin.password },
  ];
  for (const entry of pools) {
    const [pool = "", ...morePools] = typeof entry === "string" ? [entry] : entry;
    const key = [pool, ...morePools].join(",");
    if (Object.hasOwn(runners, key)) continue;
    const principal: BusPrincipal = { role: "runner", pool, morePools };
    const runner = login(principal);
    runners[key] = runner;
    users.push({ principal, password: runner.password });
  }
  return { config: natsAuthorizationConfig({ catalog, users }), orchestrator, approval, sourcePoller, admin, runners };
}

/**
 * The generated authorization as the dev cluster takes it (`startCluster({ busAuthorization })`):
 * one login per service process, the runner being the user of `pool` (a key of `runners`:
 * a pool, or pools joined with ",").
 */
export function clusterBusAuthorization(generated: GeneratedBusAuthorization, pool = "default"): {
  config: string;
  logins: Record<"orchestrator" | "approval" | "source-poller" | "action-runner" | "admin", BusLogin>;
} {
  const runner = generated.runners[pool];
  if (runner === undefined) throw new RangeError(`pool: no runner login for pool "${pool}"`);
  return {
    config: generated.config,
    logins: { orchestrator: generated.orchestrator, approval: generated.approval, "source-poller": generated.sourcePoller, "action-runner": runner, admin: generated.admin },
  };
}
