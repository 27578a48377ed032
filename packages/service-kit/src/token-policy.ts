/**
 * The one rule for the bearer tokens a service is configured with (`SLUICE_AUTH_TOKENS`,
 * `SLUICE_SERVICE_TOKEN`): outside dev mode a token must be long and not guessable, so a
 * deployment cannot ship with a token from a README, a compose file or a keyboard pattern.
 * `loadConfig` applies it to every service's environment.
 */

/** Set to `true` by `npm start` (packages/dev-cluster) only: weak tokens are then accepted, with a warning at startup. */
export const DEV_MODE_VARIABLE = "SLUICE_DEV_MODE";

/** Shortest token accepted outside dev mode (e.g. `openssl rand -hex 32` gives 64). */
export const MIN_TOKEN_LENGTH = 32;

/**
 * Tokens and words that appear in examples, defaults and guessing lists. A token made only of
 * these (and separators or a short remainder) is refused even when long enough.
 */
export const WELL_KNOWN_TOKENS: readonly string[] = [
  "dev-admin-token",
  "dev-service-token",
  "dev-runner-token",
  "sluice-dev-secret",
  "admin-token",
  "service-token",
  "runner-token",
  "test-token",
  "changeme",
  "change-me",
  "password",
  "passw0rd",
  "secret",
  "token",
  "admin",
  "default",
  "example",
  "sluice",
  "letmein",
  "qwerty",
  "test",
  "dev",
];

/** At least this many different characters: `aaaa…`, `abab…` and `1212…` are refused. */
const MIN_DISTINCT_CHARACTERS = 8;
/** What must remain once the well-known words and separators are taken out. */
const MIN_REMAINDER = 16;

/** Why `token` is too weak outside dev mode, or undefined when it is acceptable. Never echoes the token. */
export function weakTokenReason(token: string): string | undefined {
  if (token.length < MIN_TOKEN_LENGTH) return `is shorter than ${MIN_TOKEN_LENGTH} characters`;
  const lower = token.toLowerCase();
  if (WELL_KNOWN_TOKENS.includes(lower)) return "is a well-known example value";
  if (new Set(token).size < MIN_DISTINCT_CHARACTERS) return `has fewer than ${MIN_DISTINCT_CHARACTERS} different characters (a repeated pattern)`;
  let rest = lower;
  // Longest first, so "dev-admin-token" goes before "admin" and "token" leave pieces of it.
  for (const word of [...WELL_KNOWN_TOKENS].sort((a, b) => b.length - a.length)) rest = rest.split(word).join("");
  rest = rest.replace(/[^a-z0-9]/g, "");
  if (rest.length < MIN_REMAINDER || new Set(rest).size < MIN_DISTINCT_CHARACTERS) return "is made of well-known words and a short or repeated remainder";
  return undefined;
}

/** One refused token: where it came from, never its value. */
export interface WeakToken {
  readonly variable: string;
  readonly message: string;
}

/**
 * The weak tokens of an environment: every entry of the token table (named by position and
 * principal) and the service token. Entries that are not `<principal>=<roles>:<token>` are
 * skipped: the service's own parser (`parseTokenTable`) reports those.
 */
export function weakTokens(env: Readonly<Record<string, string>>, variables: ReadonlySet<string>): WeakToken[] {
  const found: WeakToken[] = [];
  const table = variables.has("SLUICE_AUTH_TOKENS") ? env["SLUICE_AUTH_TOKENS"] : undefined;
  if (table !== undefined) {
    table.split(",").forEach((raw, i) => {
      const part = raw.trim();
      const eq = part.indexOf("=");
      const colon = part.indexOf(":", eq + 1);
      if (eq <= 0 || colon < 0) return;
      const principal = part.slice(0, eq).trim();
      const token = part.slice(colon + 1).trim();
      const reason = token === "" ? undefined : weakTokenReason(token);
      if (reason !== undefined) found.push({ variable: "SLUICE_AUTH_TOKENS", message: `the token of entry ${i} (principal "${principal}") ${reason}` });
    });
  }
  const service = variables.has("SLUICE_SERVICE_TOKEN") ? env["SLUICE_SERVICE_TOKEN"] : undefined;
  if (service !== undefined) {
    const reason = weakTokenReason(service.trim());
    if (reason !== undefined) found.push({ variable: "SLUICE_SERVICE_TOKEN", message: `the token ${reason}` });
  }
  return found;
}
