/**
 * Variables a git process may take from a service's own environment: where programs are, and
 * how to reach the network (proxies, CA bundles). Nothing else: no `GIT_*` (`GIT_DIR`,
 * `GIT_CONFIG_PARAMETERS` and the like change what git does), no `HOME` (its `.gitconfig` and
 * `.git-credentials` are the service user's), no token.
 */
export const GIT_HOST_ENV: readonly string[] = [
  "PATH",
  "TMPDIR",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
];

/** Where git is looked for when the environment gives no PATH. */
const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

/** The `names` of `env` that are set, with a PATH even when `env` has none. */
export function gitHostEnv(env: Readonly<Record<string, string | undefined>>, names: readonly string[] = GIT_HOST_ENV): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) picked[name] = value;
  }
  picked["PATH"] ??= DEFAULT_PATH;
  return picked;
}

/**
 * The whole environment of a git process: `base` (an allow-listed environment, never a
 * process's own) plus what makes git fail instead of waiting for an answer nobody can give — no
 * terminal prompt, ssh in batch mode unless `base` chose its own `GIT_SSH_COMMAND` — and the C
 * locale, so its messages are the ones logged and matched.
 */
export function gitProcessEnv(base: Readonly<Record<string, string>>): Record<string, string> {
  return {
    ...base,
    GIT_TERMINAL_PROMPT: "0",
    GIT_SSH_COMMAND: base["GIT_SSH_COMMAND"] ?? "ssh -o BatchMode=yes",
    LC_ALL: "C",
  };
}
