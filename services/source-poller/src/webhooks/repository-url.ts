/**
 * The form in which two repository URLs are compared: host (lower case, default port dropped)
 * and path, without credentials, scheme, trailing `/` or `.git`. So `https://user:pw@GitHub.com/o/r.git`,
 * `https://github.com/o/r/` and `git@github.com:o/r.git` are one repository. The path keeps its case
 * (GitLab and Gitea paths are case-sensitive). Undefined for text that is no URL.
 */
export function normaliseRepositoryUrl(raw: string): string | undefined {
  const text = raw.trim();
  if (text === "") return undefined;
  // scp-like `user@host:path` (ssh), which URL() cannot read.
  const scp = /^(?:[^@/:]+@)?([^/:]+):(?!\/\/)(.+)$/.exec(text);
  if (scp?.[1] !== undefined && scp[2] !== undefined) {
    return join(scp[1].toLowerCase(), `/${scp[2]}`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  const defaultPorts: Record<string, string> = { "http:": "80", "https:": "443", "ssh:": "22", "git:": "9418" };
  const port = url.port === "" || url.port === defaultPorts[url.protocol] ? "" : `:${url.port}`;
  return join(`${url.hostname.toLowerCase()}${port}`, decodeURIComponent(url.pathname));
}

function join(host: string, path: string): string {
  let p = path.replace(/\/+$/, "");
  if (p.endsWith(".git")) p = p.slice(0, -".git".length);
  p = p.replace(/\/+$/, "");
  return `${host}${p.startsWith("/") ? p : `/${p}`}`;
}
